"""One blob on its way from a source store to a destination: downloaded once, sent as often as needed.

The destination pulls the bytes (:meth:`SpooledBlob.open`); whatever it asks for beyond what has
arrived is downloaded then and there, and kept in a spool (memory for small blobs, an anonymous
temporary file for the rest), so:

- a download cut mid-body resumes with a ``Range`` request from the byte where it was cut, the
  running hash carrying on; a source that ignores ``Range`` is read from the start again and the
  bytes already held are skipped (and counted as fetched twice);
- an upload the destination dropped is retried from the spool, with nothing downloaded again;
- the digest is checked the moment the last byte arrives, before that last piece is handed on, so
  a destination never commits damaged bytes.

Every resume draws on the run's :class:`~imageprep.model.retry.Retrier`; a resume that brought
bytes counts as progress, so a long transfer over a link that keeps cutting is not given up on.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from types import TracebackType

from imageprep.model.blobs import BlobStream
from imageprep.model.errors import (
    DigestMismatchError,
    ImageprepError,
    RegistryError,
    TransferError,
    TransientError,
)
from imageprep.model.manifest import Descriptor
from imageprep.model.retry import Attempts, Retrier
from imageprep.model.verify import check_digest, new_hasher
from imageprep.transfer.store import ImageStore

# Blobs up to this size are spooled in memory; larger ones in a temporary file.
MEMORY_LIMIT = 1024 * 1024
CHUNK_SIZE = 1024 * 1024


class _Spool:
    """The bytes received so far, in order; appendable and readable at any offset."""

    def __init__(self, size: int, directory: Path | None) -> None:
        self._memory: bytearray | None = bytearray() if size <= MEMORY_LIMIT else None
        # Anonymous (unlinked at once): a killed run leaves nothing behind. Closed by close().
        self._file = None if self._memory is not None else tempfile.TemporaryFile(dir=directory)  # noqa: SIM115
        self.length = 0

    def append(self, data: bytes) -> None:
        if self._memory is not None:
            self._memory += data
        else:
            assert self._file is not None
            os.pwrite(self._file.fileno(), data, self.length)
        self.length += len(data)

    def read(self, offset: int, count: int) -> bytes:
        if self._memory is not None:
            return bytes(self._memory[offset : offset + count])
        assert self._file is not None
        return os.pread(self._file.fileno(), count, offset)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._memory = None


class SpooledBlob:
    """A :class:`~imageprep.model.blobs.BlobBody` for one blob of a source store (use ``with``).

    ``on_bytes`` is told of every byte downloaded (a re-downloaded one too, so progress shows the
    network's real work); :attr:`downloaded` counts them.
    """

    def __init__(
        self,
        source: ImageStore,
        repository: str,
        descriptor: Descriptor,
        retrier: Retrier,
        *,
        where: str,
        on_bytes: Callable[[int], None] | None = None,
        directory: Path | None = None,
    ) -> None:
        self._source = source
        self._repository = repository
        self._descriptor = descriptor
        self._retrier = retrier
        self._where = where
        self._on_bytes = on_bytes
        self._hasher = new_hasher(descriptor.digest, where)
        self._verified = False
        self._stream: BlobStream | None = None
        self._streams = ExitStack()
        self._attempts: Attempts | None = None
        self._resumed = False
        self.downloaded = 0
        try:
            self._spool = _Spool(descriptor.size, directory)
        except OSError as exc:
            raise TransferError(
                f"cannot keep blob {descriptor.digest} of {where} while it is copied: {exc.strerror or exc}",
                hint="set TMPDIR to a directory with room for the largest layer",
            ) from exc

    # --- the body --------------------------------------------------------------------------------

    def open(self) -> Iterator[bytes]:
        """The blob's bytes from the first one: what is spooled, then what is still to come."""
        size = self._descriptor.size
        position = 0
        while position < size:
            if position < self._spool.length:
                piece = self._spool.read(position, min(CHUNK_SIZE, self._spool.length - position))
            else:
                piece = self._fetch()
            position += len(piece)
            if position == size and not self._verified:
                self._verify()  # before the last piece goes out: nothing bad is ever committed
            yield piece
        if size == 0 and not self._verified:
            self._verify()

    # --- downloading -----------------------------------------------------------------------------

    def _fetch(self) -> bytes:
        """The next piece from the source (appended to the spool), resuming after failures."""
        if self._attempts is None:
            self._attempts = self._retrier.attempts(self._source.location)
        while True:
            try:
                return self._next_piece()
            except TransientError as failure:
                self._drop_stream()
                self._attempts.failed(failure)  # waits, or raises when there is no try left
                self._resumed = True
            except BaseException:
                self._drop_stream()
                raise

    def _next_piece(self) -> bytes:
        if self._stream is None:
            self._stream = self._open_stream()
        for piece in self._stream:
            if piece:
                return self._take(piece)
        raise TransientError(
            f"blob {self._descriptor.digest} of {self._where} ended after {self._spool.length} of "
            f"{self._descriptor.size} bytes",
            hint="the source registry serves truncated data; nothing was written",
            cause="cut",
        )

    def _open_stream(self) -> BlobStream:
        start = self._spool.length
        stream = self._streams.enter_context(
            self._source.read_blob(self._repository, self._descriptor, start)
        )
        if stream.start == start:
            return stream
        if stream.start > start:
            raise RegistryError(
                f"blob {self._descriptor.digest} of {self._where}: asked for the bytes from {start} on, "
                f"the source sent them from {stream.start}"
            )
        # The source sent from an earlier byte (it ignores Range): skip what the spool holds.
        return BlobStream(self._skipping(stream, start - stream.start), start)

    def _skipping(self, stream: BlobStream, skip: int) -> Iterator[bytes]:
        for piece in stream:
            if skip:
                dropped = min(skip, len(piece))
                self._count(dropped)
                skip -= dropped
                piece = piece[dropped:]
            if piece:
                yield piece

    def _take(self, piece: bytes) -> bytes:
        size = self._descriptor.size
        if self._spool.length + len(piece) > size:
            raise DigestMismatchError(
                f"blob {self._descriptor.digest} of {self._where} is longer than the {size} bytes its "
                "manifest says",
                hint="the source registry serves corrupt data; nothing was written",
            )
        try:
            self._spool.append(piece)
        except OSError as exc:
            raise TransferError(
                f"cannot keep blob {self._descriptor.digest} of {self._where} while it is copied: "
                f"{exc.strerror or exc}",
                hint="set TMPDIR to a directory with room for the largest layer",
            ) from exc
        self._hasher.update(piece)
        self._count(len(piece))
        if self._resumed and self._attempts is not None:
            self._attempts.progressed()  # bytes came after a failure: the transfer is moving
            self._resumed = False
        return piece

    def _count(self, count: int) -> None:
        self.downloaded += count
        if self._on_bytes is not None:
            self._on_bytes(count)

    def _verify(self) -> None:
        check_digest(self._hasher, self._descriptor, self._where)
        # Read the (empty) rest, so the answer ends cleanly and its connection is kept alive.
        if self._stream is not None and any(self._stream):
            raise DigestMismatchError(
                f"blob {self._descriptor.digest} of {self._where} is longer than the "
                f"{self._descriptor.size} bytes its manifest says",
                hint="the source registry serves corrupt data; nothing was written",
            )
        self._verified = True
        if self._attempts is not None:
            self._attempts.succeeded()
        self._drop_stream()

    def _drop_stream(self) -> None:
        self._stream = None
        with suppress(ImageprepError):  # a broken stream may fail again as it closes
            self._streams.close()
        self._streams = ExitStack()

    # --- lifetime --------------------------------------------------------------------------------

    def close(self) -> None:
        """Close any open download and free the spool."""
        self._drop_stream()
        self._spool.close()

    def __enter__(self) -> SpooledBlob:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
