"""One image in a containers-image ``dir:`` layout, as an image store.

This is how images cross between local containers storage and registries with the one copy
engine: ``buildah push IMAGE dir:PATH`` then the engine copies from here; or the engine copies
into here and ``buildah pull dir:PATH`` loads it. Unlike an OCI layout, ``dir:`` keeps Docker
manifests as they are, so digests survive both ways. The layout: ``manifest.json`` (the image,
or a manifest list), ``<hex>.manifest.json`` per list child, one file per blob named by its
sha256 hex digest, and a ``version`` file. Repository and tag arguments are ignored: the
directory holds one image.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from imageprep.model.blobs import BlobBody, BlobStream
from imageprep.model.errors import ModificationError, NoSignatureStorageError, NotFoundError
from imageprep.model.manifest import Descriptor, Manifest, sha256_digest

VERSION_TEXT = "Directory Transport Version: 1.1\n"
MANIFEST = "manifest.json"
_CHUNK = 1024 * 1024


def _hex(digest: str) -> str:
    algorithm, _, hex_digest = digest.partition(":")
    if algorithm != "sha256" or not hex_digest or not hex_digest.isalnum():
        raise ModificationError(f"the dir: layout holds only sha256 blobs, not {digest}")
    return hex_digest


class DirImageStore:
    """A ``dir:`` layout directory (created on first write); ``location`` names it in messages."""

    def __init__(self, path: Path, location: str, tag: str = "latest") -> None:
        self.path = path
        self._location = location
        self._tag = tag

    @property
    def location(self) -> str:
        """How messages name this store (``containers-storage:HOST``)."""
        return self._location

    def _read(self, name: str) -> bytes | None:
        try:
            return (self.path / name).read_bytes()
        except FileNotFoundError:
            return None

    def _write_atomically(self, name: str, chunks: Iterable[bytes]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        version = self.path / "version"
        if not version.exists():
            version.write_text(VERSION_TEXT, encoding="ascii")
        handle, temporary = tempfile.mkstemp(dir=self.path, prefix=".partial-")
        try:
            with os.fdopen(handle, "wb") as output:
                for chunk in chunks:
                    output.write(chunk)
            os.replace(temporary, self.path / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """``manifest.json``, or for a digest the list child stored under it."""
        where = f"{self.location}/{repository}"
        top = self._read(MANIFEST)
        if ":" in reference:
            if top is not None and sha256_digest(top) == reference:
                return Manifest.parse(top, None, where)
            child = self._read(f"{_hex(reference)}.{MANIFEST}")
            if child is None:
                raise NotFoundError(f"{where}@{reference} is not in {self.path}")
            return Manifest.parse(child, None, where)
        if top is None:
            raise NotFoundError(f"{where}:{reference} is not in {self.path} (no {MANIFEST})")
        return Manifest.parse(top, None, where)

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest of ``manifest.json`` (``None`` before anything was written)."""
        top = self._read(MANIFEST)
        return sha256_digest(top) if top is not None else None

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        """A tag writes ``manifest.json``; a digest writes a list child."""
        name = f"{_hex(reference)}.{MANIFEST}" if ":" in reference else MANIFEST
        self._write_atomically(name, [manifest.raw])

    def has_blob(self, repository: str, digest: str) -> bool:
        """Whether the blob file is there."""
        return (self.path / _hex(digest)).is_file()

    def read_blob(
        self, repository: str, descriptor: Descriptor, start: int = 0, end: int | None = None
    ) -> AbstractContextManager[BlobStream]:
        """Stream a blob file from byte ``start``; the caller verifies the digest."""
        return self._read_blob(repository, descriptor, start, end)

    @contextmanager
    def _read_blob(
        self, repository: str, descriptor: Descriptor, start: int, end: int | None
    ) -> Iterator[BlobStream]:
        path = self.path / _hex(descriptor.digest)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise NotFoundError(
                f"blob {descriptor.digest} of {self.location}/{repository} is missing"
            ) from None
        with handle:
            yield BlobStream.from_file(handle, start, end, _CHUNK)

    def write_blob(self, repository: str, descriptor: Descriptor, body: BlobBody) -> None:
        """Write a blob file; nothing is left behind if the stream raises."""
        try:
            self._write_atomically(_hex(descriptor.digest), body.open())
        except OSError as exc:
            raise ModificationError(
                f"cannot write {descriptor.digest} into {self.path}: {exc.strerror}"
            ) from exc

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """One image per directory: there is nothing to mount from."""
        return False

    def list_tags(self, repository: str) -> list[str]:
        """The one tag this directory stands for, once it holds an image."""
        return [self._tag] if (self.path / MANIFEST).is_file() else []

    def referrers(self, repository: str, digest: str) -> list[Descriptor] | None:
        """A directory built for a modification holds one image and nothing about it."""
        return None

    def read_signatures(self, repository: str, digest: str) -> list[bytes]:
        """No signatures: what is built here gets a new digest, which nobody has signed."""
        return []

    def write_signatures(self, repository: str, digest: str, signatures: Sequence[bytes]) -> int:
        """Refused: a modification's input needs no signatures (its output would not match them)."""
        raise NoSignatureStorageError(f"{self.location} keeps no signatures")
