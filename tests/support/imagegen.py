"""Generate small, real container images in code (never downloaded).

An image is a gzip'd tar layer or two, a config with labels, and a Docker schema 2 or OCI
manifest. ``write_oci_layout`` lays one out as an OCI image layout directory that skopeo can
copy from (``oci:DIR:TAG``).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from imageprep.model import mediatypes
from imageprep.model.manifest import sha256_digest


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @cached_property
    def digest(self) -> str:
        return sha256_digest(self.data)

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}


@dataclass(frozen=True)
class GeneratedImage:
    manifest: bytes
    manifest_media_type: str
    config: Blob
    layers: tuple[Blob, ...] = field(default=())

    @cached_property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return (self.config, *self.layers)


def make_layer(files: dict[str, bytes], *, oci: bool = False) -> Blob:
    """A gzip'd tar holding ``files``; deterministic (fixed mtime) so equal input gives equal digests."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    compressed = gzip.compress(raw.getvalue(), mtime=0, compresslevel=1)
    return Blob(mediatypes.OCI_LAYER_GZIP if oci else mediatypes.DOCKER_LAYER_GZIP, compressed)


def random_layer(size: int, seed: str, *, oci: bool = False) -> Blob:
    """A layer with one incompressible file of about ``size`` bytes, fixed by ``seed``."""
    import hashlib

    chunks = []
    counter = 0
    produced = 0
    while produced < size:
        block = hashlib.sha512(f"{seed}:{counter}".encode()).digest()
        chunks.append(block)
        produced += len(block)
        counter += 1
    return make_layer({f"data/{seed}.bin": b"".join(chunks)[:size]}, oci=oci)


def make_image(
    labels: dict[str, str] | None = None,
    layers: list[Blob] | None = None,
    *,
    oci: bool = False,
    architecture: str = "amd64",
) -> GeneratedImage:
    """An image with the given labels and layers (one small default layer when none are given)."""
    if layers is None:
        layers = [make_layer({"etc/imageprep-test": json.dumps(labels or {}).encode()}, oci=oci)]
    config_doc = {
        "architecture": architecture,
        "os": "linux",
        "config": {"Labels": labels or {}, "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(gzip.decompress(b.data)) for b in layers]},
        "history": [{"created_by": "imageprep test generator"} for _ in layers],
    }
    config = Blob(
        mediatypes.OCI_CONFIG if oci else mediatypes.DOCKER_CONFIG,
        json.dumps(config_doc, sort_keys=True).encode(),
    )
    manifest_type = mediatypes.OCI_MANIFEST if oci else mediatypes.DOCKER_MANIFEST
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": config.descriptor(),
        "layers": [b.descriptor() for b in layers],
    }
    manifest = json.dumps(manifest_doc, indent=3).encode()
    return GeneratedImage(
        manifest=manifest, manifest_media_type=manifest_type, config=config, layers=tuple(layers)
    )


def write_oci_layout(directory: Path, images: dict[str, GeneratedImage]) -> None:
    """Write ``{tag: image}`` as one OCI image layout (``skopeo copy oci:DIR:TAG ...``).

    Only OCI-typed images are usable this way: skopeo skips Docker-typed index entries.
    """
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    entries = []
    for tag, image in images.items():
        for blob in (*image.blobs, Blob(image.manifest_media_type, image.manifest)):
            path = blobs / blob.digest.split(":", 1)[1]
            if not path.exists():
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(blob.data)
                os.replace(tmp, path)
        entries.append(
            {
                "mediaType": image.manifest_media_type,
                "digest": image.digest,
                "size": len(image.manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        )
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))


EMPTY_CONFIG = Blob("application/vnd.oci.empty.v1+json", b"{}")


def make_artifact(
    payload: bytes, *, subject: GeneratedImage | None = None, artifact_type: str | None = None
) -> GeneratedImage:
    """An OCI 1.1 artifact manifest (the empty config, one payload layer, an annotation naming the
    payload), a referrer of ``subject`` when one is given."""
    layer = Blob("application/octet-stream", payload)
    document: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": EMPTY_CONFIG.descriptor(),
        "layers": [layer.descriptor()],
        "annotations": {"org.example.payload": payload.decode()},
    }
    if artifact_type is not None:
        document["artifactType"] = artifact_type
    if subject is not None:
        document["subject"] = {
            "mediaType": subject.manifest_media_type,
            "digest": subject.digest,
            "size": len(subject.manifest),
        }
    return GeneratedImage(json.dumps(document).encode(), mediatypes.OCI_MANIFEST, EMPTY_CONFIG, (layer,))
