"""Manifest answers kept in memory, checked against their file before every use.

A pull starts with manifest requests (by tag, then often a child by digest): the small requests
whose latency every node waits on. Answering one from disk means reading a type map, finding
the manifest's media type (up to five ``stat`` calls) and reading its bytes; here that is done
once per version of a file. Every use first ``stat``\\s the file the answer came from (the type
map for a tag, ``index.json`` for a digest) and compares inode, size and modification time. The
tree only ever replaces a file by renaming a new one into place, so any change is a new inode,
and a deleted file fails the ``stat``: a cached answer is never staler than the tree. On a miss
the file is opened first and its descriptor ``fstat``\\ed, so the signature always belongs to
the bytes read.

Not thread-safe: one event loop owns one cache.
"""

from __future__ import annotations

import os
import stat
from collections import OrderedDict
from dataclasses import dataclass, field

from imageprep.imageserve.http1 import field_lines
from imageprep.imageserve.layout import MANIFEST_FILE, TYPE_MAP_SUFFIX
from imageprep.imageserve.negotiation import choose_variant
from imageprep.imageserve.reader import TreeReader, type_map_variants
from imageprep.model.errors import ImageServeError

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_CACHED_BYTES = 32 * 1024 * 1024
MAX_TAGS = 8192
MAX_CHOICES = 32  # distinct Accept headers remembered per tag (real clients send a handful)

Signature = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class CachedManifest:
    """A manifest's bytes, media type, and the header lines every answer with it carries."""

    path: str
    signature: Signature
    digest: str
    media_type: str
    body: bytes
    fields: bytes


@dataclass(slots=True)
class CachedTag:
    """What a tag's type map offers, and which variant each ``Accept`` header seen got."""

    path: str
    signature: Signature
    variants: dict[str, str]
    choices: dict[str, str | None] = field(default_factory=dict)

    def choose(self, accept: str) -> str | None:
        """The media type to serve a client sending ``accept`` (``""``: no Accept header)."""
        try:
            return self.choices[accept]
        except KeyError:
            chosen = choose_variant(list(self.variants), [accept] if accept else [])
            if len(self.choices) < MAX_CHOICES:
                self.choices[accept] = chosen
            return chosen


def _signature(info: os.stat_result) -> Signature:
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def _current(path: str) -> Signature | None:
    try:
        return _signature(os.stat(path))
    except (FileNotFoundError, NotADirectoryError):
        return None


def _read_whole(path: str, limit: int) -> tuple[Signature, bytes] | None:
    """The file's signature and bytes, or None when it is not there (or not a regular file)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            return None
        if info.st_size > limit:
            raise ImageServeError(f"{path} is larger than {limit} bytes")
        chunks = []
        remaining = info.st_size
        while remaining > 0:
            chunk = os.read(descriptor, remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return _signature(info), b"".join(chunks)
    finally:
        os.close(descriptor)


class AnswerCache:
    """Manifests by digest and tags' variants for one tree; names must be checked by the caller."""

    def __init__(self, tree: TreeReader) -> None:
        self._tree = tree
        self._v2 = str(tree.layout.v2)
        self._manifests: OrderedDict[tuple[str, str], CachedManifest] = OrderedDict()
        self._tags: OrderedDict[tuple[str, str], CachedTag] = OrderedDict()
        self._bytes = 0

    def tag(self, repository: str, tag: str) -> CachedTag | None:
        """The variants of ``repository:tag``, or None when the tag does not exist."""
        key = (repository, tag)
        cached = self._tags.get(key)
        if cached is not None:
            if _current(cached.path) == cached.signature:
                self._tags.move_to_end(key)
                return cached
            del self._tags[key]
        path = f"{self._v2}/{repository}/manifests/{tag}{TYPE_MAP_SUFFIX}"
        found = _read_whole(path, MAX_MANIFEST_BYTES)
        if found is None:
            return None
        entry = CachedTag(path, found[0], type_map_variants(found[1]))
        self._tags[key] = entry
        if len(self._tags) > MAX_TAGS:
            self._tags.popitem(last=False)
        return entry

    def manifest(self, repository: str, digest: str) -> CachedManifest | None:
        """The manifest stored under ``digest``, or None when it is not stored."""
        key = (repository, digest)
        cached = self._manifests.get(key)
        if cached is not None:
            if _current(cached.path) == cached.signature:
                self._manifests.move_to_end(key)
                return cached
            self._forget(key)
        path = f"{self._v2}/{repository}/manifests/{digest}/{MANIFEST_FILE}"
        found = _read_whole(path, MAX_MANIFEST_BYTES)
        if found is None:
            return None
        media_type = self._tree.manifest_media_type(repository, digest)
        if media_type is None:
            return None
        signature, body = found
        fields = field_lines(
            {
                "Content-Type": media_type,
                "Content-Length": str(len(body)),
                "Docker-Content-Digest": digest,
                "ETag": f'"{digest}"',
            }
        )
        entry = CachedManifest(path, signature, digest, media_type, body, fields)
        self._remember(key, entry)
        return entry

    def _remember(self, key: tuple[str, str], entry: CachedManifest) -> None:
        if len(entry.body) > MAX_CACHED_BYTES // 8:
            return  # a huge manifest is served, not kept
        self._manifests[key] = entry
        self._bytes += len(entry.body)
        while self._bytes > MAX_CACHED_BYTES:
            _, evicted = self._manifests.popitem(last=False)
            self._bytes -= len(evicted.body)

    def _forget(self, key: tuple[str, str]) -> None:
        entry = self._manifests.pop(key)
        self._bytes -= len(entry.body)
