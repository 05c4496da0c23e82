"""One blob on its way from a source store to a destination: downloaded once, sent as often as needed.

The destination pulls the bytes (:meth:`SpooledBlob.open`) in order; they are kept in a spool
(memory for small blobs, an anonymous temporary file for the rest) as they arrive, so:

- a download cut mid-body resumes with a ``Range`` request from the byte where it was cut, the
  running hash carrying on; a source that ignores ``Range`` is read from the start again and the
  bytes already held are skipped (and counted as fetched twice);
- a large blob is fetched as several ``Range`` parts over parallel connections (as containerd
  fetches layers), each written in place in the spool, read back in order and hashed as one
  stream; a part that fails is retried alone, and a source that ignores ``Range`` gets one stream;
- an upload the destination dropped is retried from the spool, with nothing downloaded again;
- the digest is checked the moment the last byte arrives, before that last piece is handed on, so
  a destination never commits damaged bytes.

Every resume draws on the run's :class:`~imageprep.model.retry.Retrier`; a resume that brought
bytes counts as progress, so a long transfer over a link that keeps cutting is not given up on.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import dataclass
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
CHUNK_SIZE = 256 * 1024
# Blobs of two parts or more are fetched in parts of this size, this many at once.
PART_SIZE = 4 * 1024 * 1024
PARALLEL_PARTS = 4


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """How a large blob is fetched: ``parallel`` parts of ``part_size`` bytes at once (1: one stream)."""

    part_size: int = PART_SIZE
    parallel: int = PARALLEL_PARTS


class _Spool:
    """The bytes of one blob, written at any offset, read back at any offset."""

    def __init__(self, size: int, directory: Path | None) -> None:
        self._memory: bytearray | None = bytearray() if size <= MEMORY_LIMIT else None
        # Anonymous (unlinked at once): a killed run leaves nothing behind. Closed by close().
        self._file = None if self._memory is not None else tempfile.TemporaryFile(dir=directory)  # noqa: SIM115

    def write(self, offset: int, data: bytes) -> None:
        if self._memory is not None:
            if offset != len(self._memory):
                raise AssertionError("the memory spool is written in order")
            self._memory += data
        else:
            assert self._file is not None
            os.pwrite(self._file.fileno(), data, offset)

    def read(self, offset: int, count: int) -> bytes:
        if self._memory is not None:
            return bytes(self._memory[offset : offset + count])
        assert self._file is not None
        return os.pread(self._file.fileno(), count, offset)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._memory = None


class _Part:
    """Bytes ``start`` to ``end`` of the blob, of which the first ``filled`` have arrived."""

    __slots__ = ("end", "error", "filled", "start")

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end
        self.filled = 0
        self.error: BaseException | None = None

    @property
    def complete(self) -> bool:
        return self.start + self.filled >= self.end


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
        fetch: FetchPolicy | None = None,
    ) -> None:
        self._source = source
        self._repository = repository
        self._descriptor = descriptor
        self._retrier = retrier
        self._where = where
        self._on_bytes = on_bytes
        self._fetch_policy = fetch or FetchPolicy()
        self._hasher = new_hasher(descriptor.digest, where)
        self._hashed = 0  # bytes hashed so far, in order from the first
        self._verified = False
        self._lock = threading.Condition()
        self._closing = False
        self.downloaded = 0
        # One stream, pulled by the reader (small blobs, and sources that ignore Range)...
        self._pulled = 0
        self._stream: BlobStream | None = None
        self._streams = ExitStack()
        self._attempts: Attempts | None = None
        self._resumed = False
        # ... or parts, fetched by threads of their own.
        self._parts: list[_Part] | None = None
        self._fetchers: ThreadPoolExecutor | None = None
        self._decided = False  # whether the first part's answer said how to fetch the rest
        try:
            self._spool = _Spool(descriptor.size, directory)
        except OSError as exc:
            raise self._no_room(exc) from exc

    # --- the body --------------------------------------------------------------------------------

    def open(self) -> Iterator[bytes]:
        """The blob's bytes from the first one: what is spooled, then what is still to come."""
        size = self._descriptor.size
        position = 0
        while position < size:
            piece = self._piece_at(position)
            self._hash(position, piece)
            position += len(piece)
            if position == size and not self._verified:
                self._verify()  # before the last piece goes out: nothing bad is ever committed
            yield piece
        if size == 0 and not self._verified:
            self._verify()

    def _hash(self, position: int, piece: bytes) -> None:
        """Hash what of ``piece`` is new (a replay of the spool hashes nothing twice)."""
        end = position + len(piece)
        if end > self._hashed >= position:
            self._hasher.update(piece[self._hashed - position :])
            self._hashed = end

    def _piece_at(self, position: int) -> bytes:
        if self._parts is not None:
            return self._part_piece(position)
        if position < self._pulled:
            return self._spool.read(position, min(CHUNK_SIZE, self._pulled - position))
        return self._pull()

    def _verify(self) -> None:
        check_digest(self._hasher, self._descriptor, self._where)
        # Read the (empty) rest, so the answer ends cleanly and its connection is kept alive.
        if self._stream is not None and any(self._stream):
            raise self._too_long()
        self._verified = True
        if self._attempts is not None:
            self._attempts.succeeded()
        self._drop_stream()

    def _count(self, count: int) -> None:
        with self._lock:
            self.downloaded += count
        if self._on_bytes is not None:
            self._on_bytes(count)

    def _write(self, offset: int, piece: bytes) -> None:
        if offset + len(piece) > self._descriptor.size:
            raise self._too_long()
        try:
            self._spool.write(offset, piece)
        except OSError as exc:
            raise self._no_room(exc) from exc

    def _no_room(self, exc: OSError) -> TransferError:
        return TransferError(
            f"cannot keep blob {self._descriptor.digest} of {self._where} while it is copied: "
            f"{exc.strerror or exc}",
            hint="set TMPDIR to a directory with room for the largest layer",
        )

    def _too_long(self) -> DigestMismatchError:
        return DigestMismatchError(
            f"blob {self._descriptor.digest} of {self._where} is longer than the "
            f"{self._descriptor.size} bytes its manifest says",
            hint="the source registry serves corrupt data; nothing was written",
        )

    def _cut(self, received: int) -> TransientError:
        return TransientError(
            f"blob {self._descriptor.digest} of {self._where} ended after {received} of "
            f"{self._descriptor.size} bytes",
            hint="the source registry serves truncated data; nothing was written",
            cause="cut",
        )

    # --- one stream, pulled by the reader ------------------------------------------------------------

    def _pull(self) -> bytes:
        """The next piece from the source (spooled), resuming after failures."""
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
            self._stream = self._open_stream(self._pulled, None, self._streams)
        for piece in self._stream:
            if piece:
                self._write(self._pulled, piece)
                self._pulled += len(piece)
                self._count(len(piece))
                if self._resumed and self._attempts is not None:
                    self._attempts.progressed()  # bytes came after a failure: the transfer is moving
                    self._resumed = False
                return piece
        raise self._cut(self._pulled)

    def _open_stream(self, start: int, end: int | None, streams: ExitStack) -> BlobStream:
        """A stream of the bytes from ``start`` (those a source that ignores Range sends again are
        dropped here, and counted)."""
        stream = streams.enter_context(self._source.read_blob(self._repository, self._descriptor, start, end))
        if stream.start == start:
            return stream
        if stream.start > start:
            raise RegistryError(
                f"blob {self._descriptor.digest} of {self._where}: asked for the bytes from {start} on, "
                f"the source sent them from {stream.start}"
            )
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

    def _drop_stream(self) -> None:
        self._stream = None
        with suppress(ImageprepError):  # a broken stream may fail again as it closes
            self._streams.close()
        self._streams = ExitStack()

    # --- parts, fetched at once ----------------------------------------------------------------------

    def _wants_parts(self) -> bool:
        policy = self._fetch_policy
        return policy.parallel > 1 and self._descriptor.size >= 2 * policy.part_size

    def _start_parts(self) -> None:
        """Fetch the first part; once the source has shown it serves ranges, the others too."""
        size, step = self._descriptor.size, self._fetch_policy.part_size
        self._parts = [_Part(start, min(start + step, size)) for start in range(0, size, step)]
        self._fetchers = ThreadPoolExecutor(self._fetch_policy.parallel, thread_name_prefix="imageprep-part")
        self._fetchers.submit(self._fetch_part, self._parts[0])

    def _start_other_parts(self) -> None:
        assert self._parts is not None and self._fetchers is not None
        with self._lock:
            if self._closing:
                return
            for part in self._parts[1:]:
                self._fetchers.submit(self._fetch_part, part)

    def _part_piece(self, position: int) -> bytes:
        """What has arrived from ``position`` on, waiting for it when the part is still coming."""
        assert self._parts is not None
        part = next(p for p in self._parts if p.start <= position < p.end)
        with self._lock:
            while position >= part.start + part.filled and part.error is None:
                self._lock.wait(1.0)
            if position >= part.start + part.filled:
                assert part.error is not None
                raise part.error
            available = part.start + part.filled - position
        return self._spool.read(position, min(CHUNK_SIZE, available))

    def _fetch_part(self, part: _Part) -> None:
        """Download one part (resuming it where it was cut); the first answer to come decides
        whether the other parts are fetched at all."""
        attempts = self._retrier.attempts(self._source.location)
        resumed = False
        try:
            while not part.complete:
                if self._closing:
                    return
                try:
                    self._receive(part, resumed, attempts)
                except TransientError as failure:
                    attempts.failed(failure)  # waits, or raises when there is no try left
                    resumed = True
        except BaseException as failure:
            with self._lock:
                part.error = failure
                self._lock.notify_all()
            raise

    def _receive(self, part: _Part, resumed: bool, attempts: Attempts) -> None:
        with ExitStack() as streams:
            offset = part.start + part.filled
            stream = self._open_stream(offset, part.end, streams)
            if not self._decided:
                self._decided = True
                if stream.stop is None:
                    # The source ignores Range: this one stream carries the whole blob.
                    assert self._parts is not None
                    with self._lock:
                        part.end = self._descriptor.size
                        self._parts = [part]
                else:
                    self._start_other_parts()
            for piece in stream:
                if self._closing:
                    return
                piece = piece[: part.end - (part.start + part.filled)]
                if not piece:
                    continue
                self._write(part.start + part.filled, piece)
                self._count(len(piece))
                with self._lock:
                    part.filled += len(piece)
                    self._lock.notify_all()
                if resumed:
                    attempts.progressed()
                    resumed = False
            # The loop ends with the answer, not with the part's last byte: a connection whose
            # answer was read to its end goes back to the pool instead of being closed.
        if not part.complete:
            raise self._cut(part.start + part.filled)

    # --- lifetime --------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every download of the blob and free the spool."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        self._drop_stream()
        if self._fetchers is not None:
            self._fetchers.shutdown(wait=True, cancel_futures=True)
        self._spool.close()

    def __enter__(self) -> SpooledBlob:
        # A large blob's first part is asked for now, while the destination opens its upload (a
        # request of its own, slow when a run's first answers all arrive at once), not after it.
        if self._wants_parts():
            self._start_parts()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
