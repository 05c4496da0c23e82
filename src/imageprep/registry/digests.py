"""Cutting an upload stream into the pieces a chunked upload sends, without holding any of them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class Slicer:
    """Hands out a stream as consecutive slices of given lengths, each itself a stream.

    A slice yields the stream's pieces as they come (split where a slice ends), so a chunked
    upload sends each PATCH body straight from its source: nothing is gathered in memory.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._carry = b""

    def take(self, length: int) -> Iterator[bytes]:
        """The next ``length`` bytes; raises ``EOFError`` if the stream ends before them."""
        left = length
        while left > 0:
            piece, self._carry = (self._carry, b"") if self._carry else (next(self._chunks, b""), b"")
            if not piece:
                raise EOFError(f"the stream ended {left} bytes before the end of its slice")
            if len(piece) > left:
                piece, self._carry = piece[:left], piece[left:]
            left -= len(piece)
            yield piece

    def rest(self) -> bytes:
        """Whatever the stream still holds (a correct stream holds nothing more)."""
        return self._carry + b"".join(self._chunks)
