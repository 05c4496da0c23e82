"""Reading the tree: what the server, the copy engine (as a source) and list/show need.

Reads take no lock: every file a reader can name was renamed into place whole, so a reader sees
the tree before or after each write, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from imageprep.imageserve.layout import (
    HTACCESS,
    MEDIA_TYPES_BY_EXTENSION,
    TYPE_MAP_SUFFIX,
    TreeLayout,
    digest_of_uri,
    is_repository_directory,
)
from imageprep.imageserve.names import (
    DIGEST,
    RESERVED_COMPONENTS,
    check_digest,
    check_reference,
    check_repository,
    is_digest,
)
from imageprep.imageserve.sidefiles import htaccess_media_type, parse_type_map
from imageprep.lookaside.storage import SignatureDirectory
from imageprep.model.attachments import index_entries
from imageprep.model.blobs import BlobStream
from imageprep.model.errors import DigestMismatchError, ImageServeError, NotFoundError
from imageprep.model.manifest import Descriptor, Manifest
from imageprep.model.reference import DOMAIN, PATH_COMPONENT, TAG

CHUNK_SIZE = 1024 * 1024


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise ImageServeError(f"cannot read {path}: {exc.strerror}") from exc


class TreeReader:
    """Read access to the tree at ``root``; every name is checked before it becomes a path."""

    def __init__(self, root: Path) -> None:
        self.layout = TreeLayout(root)

    @property
    def root(self) -> Path:
        """The tree's root directory (absolute)."""
        return self.layout.root

    @property
    def location(self) -> str:
        """How operators know this store: its root directory."""
        return str(self.layout.root)

    def registry_name(self) -> str | None:
        """The address the tree's images were last published under, if a writer recorded one."""
        try:
            text = self.layout.registry_name.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return text if DOMAIN.fullmatch(text) else None

    def _name(self, repository: str, reference: str) -> str:
        separator = "@" if is_digest(reference) else ":"
        return f"{self.location}/{repository}{separator}{reference}"

    # --- repositories and tags ------------------------------------------------------------------

    def repositories(self) -> list[str]:
        """Every repository in the tree, sorted (found by walking ``v2/``, not from ``_catalog``)."""
        found: list[str] = []
        for directory, subdirectories, _ in os.walk(self.layout.v2):
            path = Path(directory)
            # Never descend into hidden, reserved or ungrammatical names.
            subdirectories[:] = sorted(
                name
                for name in subdirectories
                if name not in RESERVED_COMPONENTS and PATH_COMPONENT.fullmatch(name)
            )
            if path != self.layout.v2 and is_repository_directory(path):
                found.append(path.relative_to(self.layout.v2).as_posix())
        return sorted(found)

    def list_tags(self, repository: str) -> list[str]:
        """Every tag of ``repository``, sorted; empty when the repository does not exist."""
        try:
            names = os.listdir(self.layout.manifests(repository))
        except (FileNotFoundError, NotADirectoryError):
            return []
        tags = (name[: -len(TYPE_MAP_SUFFIX)] for name in names if name.endswith(TYPE_MAP_SUFFIX))
        return sorted(tag for tag in tags if TAG.fullmatch(tag) and tag.isascii())

    def tag_variants(self, repository: str, tag: str) -> dict[str, str]:
        """``{media type: digest}`` a tag offers, the tagged manifest first; empty when no such tag."""
        text = _read(self.layout.type_map(repository, tag))
        return {} if text is None else type_map_variants(text)

    def tag_digest(self, repository: str, tag: str) -> str | None:
        """The digest of the manifest stored under ``tag``, or None."""
        return next(iter(self.tag_variants(repository, tag).values()), None)

    def resolve(self, repository: str, reference: str) -> str | None:
        """The digest a tag or digest reference names, when that manifest is stored."""
        check_reference(reference)
        digest = reference if is_digest(reference) else self.tag_digest(repository, reference)
        if digest is None or not self.layout.manifest(repository, digest).is_file():
            return None
        return digest

    # --- manifests -----------------------------------------------------------------------------

    def manifest_media_type(self, repository: str, digest: str) -> str | None:
        """The media type a stored manifest is served with, or None when it is not stored."""
        directory = self.layout.manifest_directory(repository, digest)
        for extension, media_type in MEDIA_TYPES_BY_EXTENSION.items():
            if (directory / f"manifest.{extension}").is_file():
                return media_type
        text = _read(directory / HTACCESS)
        if text is not None:
            return htaccess_media_type(text.decode("utf-8", "replace"))
        return None

    def manifest_file(self, repository: str, digest: str) -> Path | None:
        """The stored manifest's ``index.json``, or None."""
        path = self.layout.manifest(repository, digest)
        return path if path.is_file() else None

    def read_manifest(self, repository: str, digest: str) -> Manifest:
        """The manifest stored under ``digest``; NotFoundError when absent, an error when damaged."""
        where = self._name(repository, digest)
        raw = _read(self.layout.manifest(repository, digest))
        if raw is None:
            raise NotFoundError(f"manifest {where} is not in the image-serve tree")
        actual = "sha256:" + hashlib.sha256(raw).hexdigest()
        if actual != digest:
            raise DigestMismatchError(
                f"manifest {where} in the image-serve tree has digest {actual}",
                hint="the file was changed on disk; delete the image and copy it again",
            )
        return Manifest.parse(raw, self.manifest_media_type(repository, digest), where)

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest under a tag or digest; NotFoundError when there is none."""
        digest = self.resolve(repository, reference)
        if digest is None:
            raise NotFoundError(f"{self._name(repository, reference)} is not in the image-serve tree")
        return self.read_manifest(repository, digest)

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest a tag points at, or None when the tag (or its manifest) does not exist."""
        return self.resolve(repository, reference)

    # --- blobs ---------------------------------------------------------------------------------

    def blob_file(self, repository: str, digest: str) -> Path | None:
        """The repository's file for a blob, or None when it does not hold that blob."""
        path = self.layout.blob(repository, digest)
        return path if path.is_file() else None

    def has_blob(self, repository: str, digest: str) -> bool:
        """Whether the repository holds the blob."""
        return self.blob_file(repository, digest) is not None

    def read_blob(
        self, repository: str, descriptor: Descriptor, start: int = 0, end: int | None = None
    ) -> AbstractContextManager[BlobStream]:
        """Stream a blob in chunks from byte ``start`` (the caller verifies the digest)."""
        check_repository(repository)
        check_digest(descriptor.digest)
        return self._stream(repository, descriptor, start, end)

    @contextlib.contextmanager
    def _stream(
        self, repository: str, descriptor: Descriptor, start: int, end: int | None
    ) -> Iterator[BlobStream]:
        path = self.layout.blob(repository, descriptor.digest)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise NotFoundError(
                f"blob {descriptor.digest} of {self.location}/{repository} is not in the image-serve tree"
            ) from None
        with handle:
            yield BlobStream.from_file(handle, start, end, CHUNK_SIZE)

    def read_small_blob(self, repository: str, digest: str, limit: int = 16 * 1024 * 1024) -> bytes:
        """A whole blob that is known to be small (an image config), checked against its digest."""
        path = self.blob_file(repository, digest)
        where = f"{self.location}/{repository}"
        if path is None:
            raise NotFoundError(f"blob {digest} of {where} is not in the image-serve tree")
        if path.stat().st_size > limit:
            raise ImageServeError(f"blob {digest} of {where} is larger than {limit} bytes")
        data = path.read_bytes()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise DigestMismatchError(
                f"blob {digest} of {self.location}/{repository} in the image-serve tree is damaged",
                hint="delete the image and copy it again",
            )
        return data

    # --- what hangs on a digest -----------------------------------------------------------------

    def referrer_entries(self, repository: str, digest: str) -> list[dict[str, Any]]:
        """The referrers of ``digest`` as the referrers API lists them (``[]`` when there are none)."""
        raw = _read(self.layout.referrers_index(repository, digest))
        return [] if raw is None else index_entries(raw, self._name(repository, digest))

    def referrers(self, repository: str, digest: str) -> list[Descriptor]:
        """The manifests whose subject is ``digest`` (the tree answers as a referrers API does)."""
        where = self._name(repository, digest)
        return [Descriptor.from_json(entry, where) for entry in self.referrer_entries(repository, digest)]

    def read_signatures(self, repository: str, digest: str) -> list[bytes]:
        """The lookaside signatures the tree holds for ``digest``, in order."""
        check_repository(repository)
        return SignatureDirectory(self.layout.sigstore).read(repository, check_digest(digest))

    # --- index files ---------------------------------------------------------------------------

    def tags_document(self, repository: str) -> dict[str, object] | None:
        """The parsed ``tags/list`` of a repository, or None when it has none."""
        return _json_file(self.layout.tags_list(repository))

    def catalog_document(self) -> dict[str, object] | None:
        """The parsed ``v2/_catalog``, or None when there is none."""
        return _json_file(self.layout.catalog)


def type_map_variants(raw: bytes) -> dict[str, str]:
    """``{media type: digest}`` of a type map's bytes, in file order; only our own variant URIs count."""
    variants: dict[str, str] = {}
    for media_type, uri in parse_type_map(raw.decode("utf-8", "replace")).items():
        digest = digest_of_uri(uri)
        if digest is not None and DIGEST.fullmatch(digest):
            variants[media_type] = digest
    return variants


def _json_file(path: Path) -> dict[str, object] | None:
    raw = _read(path)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
