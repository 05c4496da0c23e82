"""A blob's bytes on the move: what a store hands out when read, and what it is given to write.

Reading may start part-way and stop part-way (``start``, ``end``): a download cut mid-body resumes
where it stopped, and a large blob is fetched as several parts at once. A store that cannot serve
part of a blob (a registry that ignores ``Range``) hands out the whole blob and says so
(:attr:`BlobStream.start` is then 0 and :attr:`BlobStream.stop` ``None``).

Writing takes a :class:`BlobBody` rather than a stream, because a store may have to send the
bytes twice: an upload the registry dropped is retried as an upload, from the first byte, and the
body (a spool of what was downloaded) can be read again without downloading anything again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO, Protocol

from imageprep.model.errors import TransferError


class BlobStream:
    """An iterator of a blob's bytes from offset :attr:`start` to :attr:`stop` (exclusive;
    ``None``: to the blob's end)."""

    __slots__ = ("_chunks", "start", "stop")

    def __init__(self, chunks: Iterable[bytes], start: int = 0, stop: int | None = None) -> None:
        self._chunks = iter(chunks)
        self.start = start
        self.stop = stop

    @classmethod
    def from_file(cls, handle: BinaryIO, start: int, end: int | None, chunk: int) -> BlobStream:
        """The bytes of an open blob file from ``start`` to ``end`` (``None``: its end), ``chunk``
        at a time: how every store that keeps blobs as files hands them out."""
        handle.seek(start)
        return cls(_file_pieces(handle, start, end, chunk), start, end)

    def __iter__(self) -> BlobStream:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)


class BlobBody(Protocol):
    """Bytes to store as one blob; every :meth:`open` streams them again from the first byte."""

    def open(self) -> Iterator[bytes]:
        """A new stream of the blob's bytes (raises if the bytes cannot be had, or are wrong)."""
        ...


class BytesBody:
    """A blob already in memory (configs, small test blobs)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def open(self) -> Iterator[bytes]:
        """The bytes, in one piece."""
        return iter((self.data,) if self.data else ())


class StreamBody:
    """A stream that can be read once; a store wanting it a second time gets an error.

    For callers whose bytes come from somewhere that cannot replay them; stores that do not retry
    (the image-serve tree, a directory) need nothing more.
    """

    __slots__ = ("_chunks",)

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterable[bytes] | None = chunks

    def open(self) -> Iterator[bytes]:
        """The stream, the first time only."""
        chunks, self._chunks = self._chunks, None
        if chunks is None:
            raise TransferError("the blob's bytes could be sent only once, and sending them failed")
        return iter(chunks)


def _file_pieces(handle: BinaryIO, start: int, end: int | None, chunk: int) -> Iterator[bytes]:
    left = None if end is None else max(0, end - start)
    while left is None or left > 0:
        piece = handle.read(chunk if left is None else min(chunk, left))
        if not piece:
            return
        if left is not None:
            left -= len(piece)
        yield piece
