"""A reduced but representative catalogue for the reliability suite, and how to check a mirror of it.

Fourteen tripleo images with tiny layers: one base layer under all of them, a second shared layer
under the nova and heat families, one layer of their own each, and one image (haproxy) published
as an OCI index with two architectures. Each is tagged ``current-tripleo`` and by the value of its
``rdo_version`` label, so a mirror with ``tag_from_label`` does tag discovery too.

Images are pushed with our own client (much faster than one skopeo call per image); the e2e and
integration suites already pin that skopeo and our client agree on every digest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from imageprep.model import mediatypes
from imageprep.model.blobs import BytesBody
from imageprep.model.manifest import Descriptor, Manifest, sha256_digest
from imageprep.registry import RegistryClient, RegistrySession
from tests.support.imagegen import GeneratedImage, make_image, make_layer
from tests.support.registry_server import RunningRegistry

NAMESPACE = "tripleomaster"
PREFIX = "centos-binary-"
TEMPLATE_TAG = "current-tripleo"
NAMES = (
    "nova-api",
    "nova-conductor",
    "nova-scheduler",
    "nova-compute",
    "keystone",
    "glance-api",
    "heat-api",
    "heat-engine",
    "neutron-server",
    "cinder-api",
    "mariadb",
    "rabbitmq",
    "memcached",
    "haproxy",
)
INDEXED = "haproxy"
BASE = make_layer({"usr/share/base": b"shared base layer " * 32}, oci=True)
FAMILY = {
    "nova": make_layer({"usr/share/nova": b"nova family layer " * 16}, oci=True),
    "heat": make_layer({"usr/share/heat": b"heat family layer " * 16}, oci=True),
}


def rdo_version(name: str) -> str:
    return "v" + hashlib.sha256(name.encode()).hexdigest()[:8]


def repository(name: str) -> str:
    return f"{NAMESPACE}/{PREFIX}{name}"


def _image(name: str, architecture: str = "amd64") -> GeneratedImage:
    layers = [BASE]
    family = FAMILY.get(name.split("-")[0])
    if family is not None:
        layers.append(family)
    layers.append(make_layer({f"etc/{name}/{architecture}": f"{name} {architecture}".encode()}, oci=True))
    labels = {"rdo_version": rdo_version(name), "name": name}
    return make_image(labels, layers, oci=True, architecture=architecture)


@dataclass(frozen=True)
class Published:
    """What the source serves under one repository: the tagged manifest and what the copy should be."""

    repository: str
    tags: tuple[str, ...]
    tagged_digest: str
    copied_digest: str  # the amd64 child for the index (prepare copies this machine's architecture)


def _push_image(client: RegistryClient, repo: str, image: GeneratedImage) -> Manifest:
    for blob in image.blobs:
        if not client.has_blob(repo, blob.digest):
            client.write_blob(
                repo, Descriptor(blob.media_type, blob.digest, len(blob.data)), BytesBody(blob.data)
            )
    return Manifest.parse(image.manifest, image.manifest_media_type, repo)


def seed_catalogue(registry: RunningRegistry) -> dict[str, Published]:
    """Publish every image of :data:`NAMES` into ``registry``; returns what was published."""
    published: dict[str, Published] = {}
    with RegistrySession() as session:
        client = session.client(registry.host)
        for name in NAMES:
            repo = repository(name)
            tags = (TEMPLATE_TAG, rdo_version(name))
            if name == INDEXED:
                children = [_push_image(client, repo, _image(name, arch)) for arch in ("amd64", "arm64")]
                for child in children:
                    client.put_manifest(repo, child.digest, child)
                index_doc = {
                    "schemaVersion": 2,
                    "mediaType": mediatypes.OCI_INDEX,
                    "manifests": [
                        {
                            "mediaType": child.media_type,
                            "digest": child.digest,
                            "size": len(child.raw),
                            "platform": {"os": "linux", "architecture": arch},
                        }
                        for child, arch in zip(children, ("amd64", "arm64"), strict=True)
                    ],
                }
                raw = json.dumps(index_doc, indent=2).encode()
                tagged = Manifest.parse(raw, mediatypes.OCI_INDEX, repo)
                copied = children[0].digest
            else:
                tagged = _push_image(client, repo, _image(name))
                copied = tagged.digest
            for tag in tags:
                client.put_manifest(repo, tag, tagged)
            published[name] = Published(repo, tags, tagged.digest, copied)
    return published


def write_environment(
    path: Path, source: str, destination: str, *, discover: bool = True, **parameters: Any
) -> Path:
    """A heat environment mirroring the catalogue from ``source`` to ``destination`` (HOST:PORT)."""
    entry: dict[str, Any] = {
        "push_destination": destination,
        "includes": [f"{PREFIX}{name}:" for name in NAMES],
        "set": {"namespace": f"{source}/{NAMESPACE}", "name_prefix": PREFIX, "tag": TEMPLATE_TAG},
    }
    if discover:
        entry["tag_from_label"] = "rdo_version"
    document = {"parameter_defaults": {"ContainerImagePrepare": [entry], **parameters}}
    path.write_text(yaml.safe_dump(document))
    return path


def expected_tags(published: dict[str, Published], discover: bool = True) -> dict[str, str]:
    """``repository:tag`` at the destination → the manifest digest it must point at."""
    return {
        f"{item.repository}:{rdo_version(name) if discover else TEMPLATE_TAG}": item.copied_digest
        for name, item in published.items()
    }


def mirrored_tags(registry: RunningRegistry, wanted: dict[str, str]) -> dict[str, str | None]:
    """What ``registry`` holds for each ``repository:tag`` of ``wanted``, every blob verified."""
    found: dict[str, str | None] = {}
    with RegistrySession() as session:
        client = session.client(registry.host)
        for name in wanted:
            repo, _, tag = name.rpartition(":")
            digest = client.manifest_digest(repo, tag)
            found[name] = digest
            if digest is None:
                continue
            manifest = client.get_manifest(repo, digest)  # checked against the digest
            for blob in manifest.blobs:
                client.read_blob_bytes(repo, blob)  # checked against the digest while read
    return found


def corrupt_stored_blobs(registry: RunningRegistry) -> list[str]:
    """Blob files in the registry's storage whose bytes do not hash to the name they are stored under."""
    bad = []
    root = registry.root / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256"
    for data in sorted(root.glob("*/*/data")) if root.is_dir() else []:
        if sha256_digest(data.read_bytes()) != f"sha256:{data.parent.name}":
            bad.append(data.parent.name)
    return bad


def leftover_uploads(registry: RunningRegistry) -> list[Path]:
    """Upload sessions in the registry's storage that still hold bytes (abandoned, never cancelled).

    A cancelled upload whose PUT was cut off mid-body can leave an empty hash-state stub behind
    when docker-registry's PUT handler finishes after the DELETE; that holds no data and is the
    registry's own debris, so only sessions with a ``data`` file count.
    """
    root = registry.root / "data" / "docker" / "registry" / "v2" / "repositories"
    return sorted(root.glob("**/_uploads/*/data")) if root.is_dir() else []
