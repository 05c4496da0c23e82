"""Generated multi-architecture images and Docker-typed images, seeded into a registry with skopeo."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from imageprep.model import mediatypes
from imageprep.model.manifest import sha256_digest
from tests.support.imagegen import GeneratedImage, write_oci_layout
from tests.support.imageserve_servers import skopeo
from tests.support.registry_server import RunningRegistry


@dataclass(frozen=True)
class GeneratedIndex:
    """An OCI image index over per-architecture images."""

    children: dict[str, GeneratedImage]

    @cached_property
    def raw(self) -> bytes:
        entries = [
            {
                "mediaType": image.manifest_media_type,
                "digest": image.digest,
                "size": len(image.manifest),
                "platform": {"architecture": architecture, "os": "linux"},
            }
            for architecture, image in self.children.items()
        ]
        document = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": entries}
        return json.dumps(document, indent=2).encode()

    @property
    def digest(self) -> str:
        return sha256_digest(self.raw)


def write_index_layout(directory: Path, tag: str, index: GeneratedIndex) -> None:
    """An OCI layout whose ``tag`` is the index (children stored as blobs)."""
    write_oci_layout(directory, {f"{tag}-{arch}": image for arch, image in index.children.items()})
    blob = directory / "blobs" / "sha256" / index.digest.split(":", 1)[1]
    blob.write_bytes(index.raw)
    entry = {
        "mediaType": mediatypes.OCI_INDEX,
        "digest": index.digest,
        "size": len(index.raw),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))


def seed_index(registry: RunningRegistry, repository: str, tag: str, index: GeneratedIndex) -> None:
    """Push the whole index (every architecture) as ``repository:tag``, digests preserved."""
    with tempfile.TemporaryDirectory(prefix="imageprep-index-") as layout:
        write_index_layout(Path(layout), tag, index)
        skopeo(
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            f"oci:{layout}:{tag}",
            f"docker://{registry.host}/{repository}:{tag}",
        )


def seed_docker_image(registry: RunningRegistry, repository: str, tag: str, image: GeneratedImage) -> None:
    """Push an (OCI-typed) generated image converted to a Docker schema 2 manifest."""
    with tempfile.TemporaryDirectory(prefix="imageprep-layout-") as layout:
        write_oci_layout(Path(layout), {tag: image})
        skopeo(
            "copy",
            "--format",
            "v2s2",
            "--dest-tls-verify=false",
            f"oci:{layout}:{tag}",
            f"docker://{registry.host}/{repository}:{tag}",
        )


def tree_is_world_readable(root: Path) -> bool:
    """Whether every directory above ``root`` lets other users through (web server workers)."""
    return all(os.stat(parent).st_mode & 0o005 == 0o005 for parent in [root, *root.parents])
