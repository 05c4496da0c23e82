"""Streams that check what they carry: a blob's bytes must hash to its digest and match its size."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from imageprep.model.errors import DigestMismatchError, UnsupportedMediaTypeError
from imageprep.model.manifest import Descriptor


def _hasher(digest: str, where: str) -> hashlib._Hash:
    algorithm, _, _ = digest.partition(":")
    if algorithm not in ("sha256", "sha512"):
        raise UnsupportedMediaTypeError(f"{where}: digest algorithm {algorithm!r} is not supported")
    return hashlib.new(algorithm)


def verified_chunks(chunks: Iterable[bytes], descriptor: Descriptor, where: str) -> Iterator[bytes]:
    """Pass ``chunks`` through, raising :class:`DigestMismatchError` as soon as they cannot match.

    The check on the final digest happens before the stream ends, so an upload fed from this
    iterator is aborted, never committed, when the bytes are wrong.
    """
    hasher = _hasher(descriptor.digest, where)
    seen = 0
    for chunk in chunks:
        if not chunk:
            continue
        seen += len(chunk)
        if descriptor.size >= 0 and seen > descriptor.size:
            raise DigestMismatchError(
                f"{where}: blob {descriptor.digest} is larger than the {descriptor.size} bytes it should have"
            )
        hasher.update(chunk)
        yield chunk
    actual = f"{descriptor.digest.partition(':')[0]}:{hasher.hexdigest()}"
    if descriptor.size >= 0 and seen != descriptor.size:
        raise DigestMismatchError(
            f"{where}: blob {descriptor.digest} has {seen} bytes, {descriptor.size} expected"
        )
    if actual != descriptor.digest:
        raise DigestMismatchError(f"{where}: blob content hashes to {actual}, not {descriptor.digest}")


def rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup a stream into pieces of exactly ``size`` bytes (the last may be shorter)."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)
