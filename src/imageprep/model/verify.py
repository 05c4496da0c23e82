"""Check a blob's bytes against its descriptor while they stream, before the destination commits.

The one streaming verifier: the copy engine runs every blob through it, and the registry client
uses it for blobs it reads for itself (image configs).

The digest is checked the moment the last expected byte arrives, before that final chunk is handed
on, so a writer that stops reading after ``size`` bytes still never commits bad data; a stream that
runs long is cut off as soon as it passes the expected size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator

from imageprep.model.errors import DigestMismatchError, RegistryError
from imageprep.model.manifest import Descriptor

_ALGORITHMS = {"sha256", "sha384", "sha512"}


def new_hasher(digest: str, where: str) -> hashlib._Hash:
    """A hasher for ``digest``'s algorithm; an algorithm we do not verify is an error naming ``where``."""
    algorithm, _, _ = digest.partition(":")
    if algorithm not in _ALGORITHMS:
        raise RegistryError(f"blob {digest} of {where} uses an unsupported digest algorithm {algorithm!r}")
    return hashlib.new(algorithm)


def verified_chunks(
    chunks: Iterable[bytes],
    descriptor: Descriptor,
    where: str,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """Yield ``chunks`` unchanged; raise :class:`DigestMismatchError` (naming ``where``) on bad data."""
    hasher = new_hasher(descriptor.digest, where)
    expected = descriptor.size
    received = 0
    verified = False
    for chunk in chunks:
        if not chunk:
            continue
        received += len(chunk)
        if received > expected:
            raise DigestMismatchError(
                f"blob {descriptor.digest} of {where} is longer than the {expected} bytes its manifest says",
                hint="the source registry serves corrupt data; nothing was written",
            )
        hasher.update(chunk)
        if received == expected:
            check_digest(hasher, descriptor, where)
            verified = True
        if on_bytes is not None:
            on_bytes(len(chunk))
        yield chunk
    if received < expected:
        raise DigestMismatchError(
            f"blob {descriptor.digest} of {where} ended after {received} of {expected} bytes",
            hint="the source registry serves truncated data; nothing was written",
        )
    if not verified:
        # Only reachable for an empty blob: no chunk ever reached the expected size of zero.
        check_digest(hasher, descriptor, where)


def check_digest(hasher: hashlib._Hash, descriptor: Descriptor, where: str) -> None:
    """Raise :class:`DigestMismatchError` unless ``hasher`` (fed the whole blob) gives its digest."""
    actual = f"{hasher.name}:{hasher.hexdigest()}"
    if actual != descriptor.digest:
        raise DigestMismatchError(
            f"blob {descriptor.digest} of {where} has digest {actual}",
            hint="the source registry serves corrupt data; nothing was written",
        )
