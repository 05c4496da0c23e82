"""What an image store holds, for the ``list`` and ``show`` commands.

Written against the image-store interface, so listing the local image-serve tree on disk and
listing a registry over HTTP (``--registry-url``) are the same code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from imageprep.model.attachments import cosign_tags, is_attachment_tag
from imageprep.model.errors import ImageprepError, NotFoundError, RegistryError
from imageprep.model.manifest import Descriptor, Manifest
from imageprep.model.platforms import select_child
from imageprep.model.verify import verified_chunks
from imageprep.transfer.attachments import find_referrers
from imageprep.transfer.inventory import ListsRepositories
from imageprep.transfer.jobs import is_digest
from imageprep.transfer.store import ImageStore

# An image config is a small JSON document; refuse to buffer anything claiming to be much larger.
CONFIG_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImageSummary:
    """One tag of a store, as ``list`` prints it."""

    repository: str
    tag: str
    digest: str
    media_type: str
    size: int


@dataclass(frozen=True, slots=True)
class ImageDetails:
    """One image, as ``show`` prints it.

    For a manifest list, ``architecture``, ``labels`` and ``size`` describe the child this host
    would pull, and ``platforms`` names every child.
    """

    name: str
    digest: str
    media_type: str
    tags: tuple[str, ...]
    size: int
    layers: int
    architecture: str
    os: str
    created: str
    labels: dict[str, str]
    platforms: tuple[str, ...]
    # What hangs on the digest: cosign tags, referrers, lookaside signatures (one line each).
    signatures: tuple[str, ...] = ()


def list_images(store: ImageStore) -> list[ImageSummary]:
    """Every tag of every repository, sorted; raises when the store cannot list its repositories."""
    repositories = store.repositories() if isinstance(store, ListsRepositories) else None
    if repositories is None:
        raise RegistryError(
            f"{store.location} does not list its repositories",
            hint="the registry refuses its catalog to us; show named images instead",
        )
    images = []
    for repository in sorted(repositories):
        for tag in sorted(store.list_tags(repository)):
            if is_attachment_tag(tag):
                continue  # a signature or a referrers index, not an image: `show` lists them
            try:
                manifest = store.get_manifest(repository, tag)
            except NotFoundError:
                continue  # deleted between listing and reading
            images.append(
                ImageSummary(
                    repository, tag, manifest.digest, manifest.media_type, _size(store, repository, manifest)
                )
            )
    return images


def show_image(store: ImageStore, repository: str, reference: str, architecture: str) -> ImageDetails:
    """The details of ``repository:reference`` (a tag or a digest)."""
    top = store.get_manifest(repository, reference)
    image = top
    platforms: tuple[str, ...] = ()
    if top.is_index:
        platforms = tuple(_platform(d) for d in top.manifests)
        name = f"{store.location}/{repository}:{reference}"
        image = store.get_manifest(repository, select_child(top.manifests, architecture, name).digest)
    config = _config(store, repository, image)
    tags = sorted(store.list_tags(repository))
    section = config.get("config")
    labels = section.get("Labels") if isinstance(section, dict) else None
    separator = "@" if is_digest(reference) else ":"
    return ImageDetails(
        name=f"{store.location}/{repository}{separator}{reference}",
        digest=top.digest,
        media_type=top.media_type,
        tags=tuple(_tags_of(store, repository, top.digest, tags)),
        size=_size(store, repository, image),
        layers=len(image.layers),
        architecture=str(config.get("architecture", "")),
        os=str(config.get("os", "")),
        created=str(config.get("created", "")),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        platforms=platforms,
        signatures=tuple(_attachments_of(store, repository, top.digest, frozenset(tags))),
    )


def _size(store: ImageStore, repository: str, manifest: Manifest) -> int:
    """Bytes a pull of this manifest moves: itself and its blobs (children's too, for a list)."""
    if not manifest.is_index:
        return len(manifest.raw) + sum(blob.size for blob in manifest.blobs)
    total = len(manifest.raw)
    for child in manifest.manifests:
        try:
            total += _size(store, repository, store.get_manifest(repository, child.digest))
        except NotFoundError:
            continue  # only the host's child was copied
    return total


def _tags_of(store: ImageStore, repository: str, digest: str, tags: list[str]) -> Iterator[str]:
    for tag in tags:
        if not is_attachment_tag(tag) and store.manifest_digest(repository, tag) == digest:
            yield tag


_COSIGN_KINDS = {".sig": "signature", ".att": "attestation", ".sbom": "SBOM"}


def _attachments_of(store: ImageStore, repository: str, digest: str, tags: frozenset[str]) -> Iterator[str]:
    """One line per thing attached to ``digest``; a lookup that fails says so instead."""
    for tag in cosign_tags(digest):
        if tag in tags:
            yield f"cosign {_COSIGN_KINDS[tag[tag.rindex('.') :]]}: {tag}"
    try:
        listed = store.referrers(repository, digest)
        for referrer in find_referrers(store, repository, digest, tags, listed):
            yield f"referrer {referrer.artifact_type or referrer.media_type}: {referrer.digest}"
    except ImageprepError as exc:
        yield f"referrers could not be read: {exc}"
    try:
        count = len(store.read_signatures(repository, digest))
    except ImageprepError as exc:
        yield f"lookaside signatures could not be read: {exc}"
        return
    if count:
        yield f"lookaside signatures: {count}"


def _platform(descriptor: Descriptor) -> str:
    platform = descriptor.platform
    if platform is None:
        return "unknown"
    variant = f"/{platform.variant}" if platform.variant else ""
    return f"{platform.os}/{platform.architecture}{variant}"


def _config(store: ImageStore, repository: str, manifest: Manifest) -> dict[str, Any]:
    """The image config document, or ``{}`` for a manifest without a readable one."""
    descriptor = manifest.config
    if descriptor is None or descriptor.size > CONFIG_LIMIT:
        return {}
    where = f"{store.location}/{repository}"
    try:
        with store.read_blob(repository, descriptor) as chunks:
            raw = b"".join(verified_chunks(chunks, descriptor, where))
        document = json.loads(raw)
    except (ImageprepError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}
