"""Get one blob into a destination repository the cheapest way that is correct.

In order: this run already put it in another repository of the same store (mount it, without
asking first whether it is there); it is already there; another image is uploading it right now
(wait, then mount); otherwise stream it from the source through a spool (:mod:`.spool`), which
resumes a download cut mid-body, lets a dropped upload be sent again without downloading again,
and checks the digest before the destination commits. Bytes that arrive damaged are fetched again
from the start, a few times, through the run's retrier.
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path

from imageprep.model.errors import DigestMismatchError, ImageprepError, TransferError
from imageprep.model.manifest import Descriptor
from imageprep.model.retry import Retrier
from imageprep.transfer.jobs import CopyJob
from imageprep.transfer.ledger import BlobLedger, Claim, InFlight, Known
from imageprep.transfer.listener import BlobAction, TransferListener
from imageprep.transfer.report import BlobCounts
from imageprep.transfer.spool import FetchPolicy, SpooledBlob

# Bytes damaged in transit fail the digest check; fetching again cures that, while a source that
# really serves bad bytes fails the same way every time, so a few fetches are enough.
FETCHES = 3
# Images that mount a blob at once after waiting for another image's upload of it. When a run's
# shared base layer lands, every image waiting for it mounts it in the same instant: ~90 mount
# requests within 0.2 s, during which the destination registry took 110-160% of a core on a
# 2-core machine and the blob uploads behind them stalled (the 40 ms bench's link idled 0.1-0.9 s
# mid-run). Four at a time about halved that idle time; a mount takes a few milliseconds, so the
# waiters are through in well under a second while the other blobs keep moving.
LANDED_MOUNTS_AT_ONCE = 4


@dataclass(frozen=True, slots=True)
class BlobPolicy:
    """How long to wait for another image's upload of a shared blob, how often to take over, where
    blobs are spooled, and how a large one is fetched."""

    wait_timeout: float = 3600.0
    # An upload we waited on may fail; we then try ourselves, at most this many times in all.
    claim_rounds: int = 3
    spool_directory: Path | None = None
    fetch: FetchPolicy = FetchPolicy()


class ImageTally:
    """Thread-safe blob counters for one image (its blobs are handled by several threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = BlobCounts()

    def add(self, action: BlobAction, size: int = 0, refetched: int = 0) -> None:
        """Count one blob that reached the destination by ``action`` (``size`` bytes downloaded,
        ``refetched`` of them a second time)."""
        delta = BlobCounts(
            copied=int(action is BlobAction.COPIED),
            mounted=int(action is BlobAction.MOUNTED),
            present=int(action is BlobAction.PRESENT),
            bytes_transferred=size,
            bytes_refetched=refetched,
        )
        with self._lock:
            self._counts = self._counts + delta

    def counts(self) -> BlobCounts:
        """The counts so far."""
        with self._lock:
            return self._counts


class BlobCopier:
    """Puts blobs into destination repositories for every image of one run."""

    def __init__(
        self, ledger: BlobLedger, listener: TransferListener, policy: BlobPolicy, retrier: Retrier
    ) -> None:
        self._ledger = ledger
        self._listener = listener
        self._policy = policy
        self._retrier = retrier
        self._landed_mounts = threading.BoundedSemaphore(LANDED_MOUNTS_AT_ONCE)

    def ensure(self, job: CopyJob, descriptor: Descriptor, tally: ImageTally) -> BlobAction:
        """Make ``descriptor``'s blob available in the job's destination repository (blocking)."""
        outcome = self._ensure(job, descriptor, defer=False)
        assert not isinstance(outcome, InFlight)
        return self._count(job, descriptor, tally, outcome)

    def start(
        self, job: CopyJob, descriptor: Descriptor, tally: ImageTally, fresh: bool = False
    ) -> InFlight | None:
        """Do the blob's work, unless another image is uploading it right now: then return that upload.

        Meant for blob workers: a worker must not sit waiting on someone else's upload while other
        blobs queue behind it, so the caller waits for the returned upload on its own thread and
        then calls :meth:`finish`. ``fresh`` says the destination repository did not exist before
        this run, so it cannot hold the blob unless this run put it there (which the ledger knows).
        """
        outcome = self._ensure(job, descriptor, defer=True, fresh=fresh)
        if isinstance(outcome, InFlight):
            return outcome
        self._count(job, descriptor, tally, outcome)
        return None

    def finish(
        self, job: CopyJob, descriptor: Descriptor, pending: InFlight, tally: ImageTally
    ) -> BlobAction:
        """Wait (bounded) for the upload :meth:`start` returned, then mount the blob (or copy it)."""
        outcome = self._ensure(job, descriptor, defer=False, pending=pending)
        assert not isinstance(outcome, InFlight)
        return self._count(job, descriptor, tally, outcome)

    def _count(self, job: CopyJob, descriptor: Descriptor, tally: ImageTally, done: _Done) -> BlobAction:
        # Whatever was downloaded beyond one copy of the blob was fetched twice.
        tally.add(
            done.action, done.downloaded, max(0, done.downloaded - descriptor.size) if done.downloaded else 0
        )
        self._listener.blob_finished(job, descriptor.digest, done.action)
        return done.action

    def _ensure(
        self,
        job: CopyJob,
        descriptor: Descriptor,
        *,
        defer: bool,
        pending: InFlight | None = None,
        fresh: bool = False,
    ) -> _Done | InFlight:
        store = job.destination.location
        repository = job.destination_repository
        digest = descriptor.digest
        last_error: ImageprepError | None = None
        for _ in range(self._policy.claim_rounds):
            if pending is None:
                earlier = self._ledger.known(store, digest)
                if earlier is not None:
                    # Mounting a blob the repository already has is harmless, so one request does
                    # what a HEAD and then a mount would.
                    return self._mount_or_copy(job, descriptor, earlier)
                if not fresh and job.destination.has_blob(repository, digest):
                    self._ledger.record(store, digest, repository)
                    return _Done(BlobAction.PRESENT)
                state = self._ledger.claim(store, digest)
                if isinstance(state, Claim):
                    return self._copy_claimed(job, descriptor, state)
                if isinstance(state, Known):
                    return self._mount_or_copy(job, descriptor, state.repository)
                if defer:
                    return state
                pending = state
            holder = self._wait(job, descriptor, pending)
            pending = None
            if isinstance(holder, ImageprepError):
                # The upload we waited for failed (perhaps a bad read of a shared source); try ourselves.
                last_error = holder
                continue
            return self._mount_or_copy(job, descriptor, holder, landed=True)
        raise TransferError(
            f"blob {digest} of {job.source_name} could not be copied after {self._policy.claim_rounds} "
            f"attempts: {last_error}"
        )

    def _wait(self, job: CopyJob, descriptor: Descriptor, state: InFlight) -> str | ImageprepError:
        """The repository the other upload put the blob in, or the error it failed with."""
        try:
            return state.future.result(timeout=self._policy.wait_timeout)
        except ImageprepError as exc:
            return exc
        except FutureTimeout:
            raise TransferError(
                f"blob {descriptor.digest} of {job.source_name}: gave up after waiting "
                f"{self._policy.wait_timeout:.0f}s for another image's upload of it to "
                f"{job.destination.location}",
                hint="the destination or source is very slow; run again (finished blobs are skipped)",
            ) from None

    def _copy_claimed(self, job: CopyJob, descriptor: Descriptor, claim: Claim) -> _Done:
        try:
            downloaded = self._stream(job, descriptor)
        except BaseException as exc:
            self._ledger.abandon(claim, exc)
            raise
        self._ledger.finish(claim, job.destination_repository)
        return _Done(BlobAction.COPIED, downloaded)

    def _mount_or_copy(
        self, job: CopyJob, descriptor: Descriptor, holder: str, *, landed: bool = False
    ) -> _Done:
        """``landed``: the blob's upload was just waited for, as other images may have waited too,
        so the mount takes its turn (see :data:`LANDED_MOUNTS_AT_ONCE`); a blob worker's mount of
        a blob that landed earlier does not wait, so the workers never stall behind the waiters."""
        repository = job.destination_repository
        if holder == repository:
            return _Done(BlobAction.PRESENT)
        with self._landed_mounts if landed else contextlib.nullcontext():
            mounted = job.destination.mount_blob(repository, descriptor.digest, holder)
        if mounted:
            self._ledger.record(job.destination.location, descriptor.digest, repository)
            return _Done(BlobAction.MOUNTED)
        # The store cannot mount (or refused this once): copying is slower but still correct.
        return _Done(BlobAction.COPIED, self._stream(job, descriptor))

    def _stream(self, job: CopyJob, descriptor: Descriptor) -> int:
        """Copy the blob's bytes from the job's source; how many bytes that downloaded.

        Bytes that arrive damaged are fetched again, whole (a source that really serves bad bytes
        fails the same way every time, so only a few times).
        """
        attempts = self._retrier.attempts(job.source.location, retry_on=(DigestMismatchError,), limit=FETCHES)
        downloaded = 0

        def on_bytes(count: int) -> None:
            self._listener.bytes_transferred(job, count)

        while True:
            with SpooledBlob(
                job.source,
                job.source_repository,
                descriptor,
                self._retrier,
                where=job.source_name,
                on_bytes=on_bytes,
                directory=self._policy.spool_directory,
                fetch=self._policy.fetch,
            ) as body:
                try:
                    job.destination.write_blob(job.destination_repository, descriptor, body)
                    return downloaded + body.downloaded
                except DigestMismatchError as exc:
                    downloaded += body.downloaded
                    attempts.failed(exc)


@dataclass(frozen=True, slots=True)
class _Done:
    """How a blob got there, and how many bytes were downloaded for it."""

    action: BlobAction
    downloaded: int = 0
