"""Copy many images between image stores, concurrently, sending each shared blob once.

Two thread pools keep the run from deadlocking. Blob workers never wait: a blob another image is
uploading right now is handed back to the image's own thread, which waits for that upload (it is
already running, see :mod:`.ledger`) and then mounts. Image threads wait only on blob tasks and on
running uploads, so no task ever waits on work queued behind it. Manifests are pushed as the exact
bytes fetched, so digests at the destination equal the source's, and so do the signatures and
other attachments that go along with each image (:mod:`.attachments`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass

from imageprep.model.control import wait_interruptibly
from imageprep.model.errors import DigestMismatchError, ImageprepError, UnsupportedMediaTypeError
from imageprep.model.manifest import Descriptor, Manifest
from imageprep.model.platforms import host_architecture, select_child
from imageprep.model.retry import Retrier
from imageprep.transfer.attachments import AttachmentCopier, AttachmentLookups
from imageprep.transfer.blobs import BlobCopier, BlobPolicy, ImageTally
from imageprep.transfer.inventory import DestinationInventory
from imageprep.transfer.jobs import CopyJob, is_digest
from imageprep.transfer.ledger import BlobLedger
from imageprep.transfer.listener import NullListener, TransferListener
from imageprep.transfer.priority import BlobLanes
from imageprep.transfer.report import AttachmentCounts, ImageResult, Outcome, TransferReport

DEFAULT_CONCURRENCY = 8
# Images in flight per blob worker. An image thread mostly waits (for its blobs, or for a shared
# layer another image is uploading), and the blobs of an image not yet started are not known to
# anyone. With 4 per worker, the 32 first images of a TripleO set all waited for the same base
# layer while the next images' own layers were still unasked: the link idled for most of a second
# mid-run each time a wave finished at 40 ms. With 12, the large layers of most of a run are
# queued (largest first) from its start.
IMAGES_PER_WORKER = 12
# Threads asking about attachments. Each asks one short question and waits a round trip; a
# registry answers a few dozen at once over its connections, so more threads than that only cost
# their start-up and the interpreter's switching (a warm run of 95 images spent ~15% more CPU
# with one per image).
LOOKUP_THREADS = 32
# Indexes inside indexes are copied whole; deeper than this is refused rather than followed.
MAX_INDEX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to write for one image: children by digest first, then ``tagged`` under the tag."""

    tagged: Manifest
    children: tuple[Manifest, ...] = ()

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        seen: dict[str, Descriptor] = {}
        for manifest in (*self.children, self.tagged):
            for blob in manifest.blobs:
                seen.setdefault(blob.digest, blob)
        return tuple(seen.values())


@dataclass(frozen=True, slots=True)
class _Written:
    """The digests an image has at the destination: the tagged manifest's first, then its children
    (those copied this time: an image found in place is not read further)."""

    digests: tuple[str, ...]


class TransferEngine:
    """Runs copy jobs and reports what happened; never prints (progress goes to the listener)."""

    def __init__(
        self,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        image_concurrency: int | None = None,
        listener: TransferListener | None = None,
        architecture: str | None = None,
        policy: BlobPolicy | None = None,
        retrier: Retrier | None = None,
        attachments: bool = True,
    ) -> None:
        if concurrency < 1 or (image_concurrency is not None and image_concurrency < 1):
            raise ValueError("concurrency must be at least 1")
        self._concurrency = concurrency
        self._image_concurrency = image_concurrency or concurrency * IMAGES_PER_WORKER
        self._listener: TransferListener = listener if listener is not None else NullListener()
        self._architecture = architecture or host_architecture()
        self._policy = policy or BlobPolicy()
        self._retrier = retrier or Retrier()
        self._attachments = attachments

    def run(self, jobs: Sequence[CopyJob]) -> TransferReport:
        """Copy every job; one image failing never stops the others (it is listed as failed)."""
        started = time.monotonic()
        self._listener.run_started(len(jobs))
        copier = BlobCopier(BlobLedger(), self._listener, self._policy, self._retrier)
        inventory = DestinationInventory()
        # Blob pool first so it shuts down last: image tasks submit into it until they finish.
        with (
            BlobLanes(self._concurrency, name="imageprep-blob") as blob_pool,
            ThreadPoolExecutor(self._image_concurrency, thread_name_prefix="imageprep-image") as image_pool,
            ThreadPoolExecutor(
                min(self._image_concurrency, LOOKUP_THREADS), thread_name_prefix="imageprep-lookup"
            ) as lookups,
        ):
            futures = [
                image_pool.submit(self._copy_image, job, copier, blob_pool, inventory, lookups)
                for job in jobs
            ]
            wait_interruptibly(futures)
            results = [future.result() for future in futures]
        report = TransferReport.from_results(results, time.monotonic() - started, self._retrier.stats())
        self._listener.run_finished(report)
        return report

    def _copy_image(
        self,
        job: CopyJob,
        copier: BlobCopier,
        blob_pool: BlobLanes,
        inventory: DestinationInventory,
        lookups: ThreadPoolExecutor,
    ) -> ImageResult:
        started = time.monotonic()
        self._listener.image_started(job)
        tally = ImageTally()
        # Asked as soon as the image's manifest has answered, rather than after its copy.
        ahead = AttachmentLookups(job, lookups) if job.attachments and self._attachments else None
        try:
            outcome, plan = self._transfer(job, copier, blob_pool, tally, inventory, ahead)
            attached = AttachmentCounts()
            if ahead is not None:

                def copy_one(attachment: CopyJob) -> Outcome:
                    return self._transfer(attachment, copier, blob_pool, tally, inventory)[0]

                attached = AttachmentCopier(copy_one).copy(job, plan.digests, ahead)
            result = ImageResult(
                source=job.source_name,
                destination=job.destination_name,
                outcome=outcome,
                digest=plan.digests[0],
                blobs=tally.counts(),
                seconds=time.monotonic() - started,
                attachments=attached,
            )
        except ImageprepError as exc:
            result = ImageResult(
                source=job.source_name,
                destination=job.destination_name,
                outcome=Outcome.FAILED,
                error=str(exc),
                blobs=tally.counts(),
                seconds=time.monotonic() - started,
            )
        self._listener.image_finished(job, result)
        return result

    def _transfer(
        self,
        job: CopyJob,
        copier: BlobCopier,
        blob_pool: BlobLanes,
        tally: ImageTally,
        inventory: DestinationInventory,
        ahead: AttachmentLookups | None = None,
    ) -> tuple[Outcome, _Written]:
        """Copy one image (or find it already in place); what the destination now holds.

        ``ahead`` is told each digest as soon as it is known, to ask about its attachments.
        """
        top = job.source.get_manifest(job.source_repository, job.source_reference)
        # Asked after the source answered: the first image lists the destination while the others
        # already fetch their manifests. No image writes before it has asked, so the listing still
        # shows the destination as it was before this run.
        fresh = inventory.lacks(job.destination, job.destination_repository)
        if is_digest(job.source_reference):
            _check_digest(top, job.source_reference, job.source_name)
        wanted: Descriptor | None = None
        if top.is_index and not job.all_architectures:
            wanted = select_child(top.manifests, self._architecture, job.source_name)
        target_digest = wanted.digest if wanted is not None else top.digest
        if ahead is not None:
            ahead.digests_known((target_digest,), copying=False)
        # The cheap check first: an image already in place costs one HEAD and touches no blob.
        if not fresh and job.destination.manifest_digest(job.destination_repository, job.destination_tag) == (
            target_digest
        ):
            return Outcome.SKIPPED, _Written((target_digest,))
        plan = self._plan(job, top, wanted)
        written = _Written((plan.tagged.digest, *(child.digest for child in plan.children)))
        if ahead is not None:
            ahead.digests_known(written.digests, copying=True)
        self._copy_blobs(job, plan.blobs, copier, blob_pool, tally, fresh)
        for child in plan.children:
            job.destination.put_manifest(job.destination_repository, child.digest, child)
        job.destination.put_manifest(job.destination_repository, job.destination_tag, plan.tagged)
        return Outcome.COPIED, written

    def _plan(self, job: CopyJob, top: Manifest, wanted: Descriptor | None) -> _Plan:
        tagged = self._fetch_child(job, wanted) if wanted is not None else top
        children: dict[str, Manifest] = {}
        self._collect_children(job, tagged, children, depth=1)
        return _Plan(tagged=tagged, children=tuple(children.values()))

    def _collect_children(
        self, job: CopyJob, manifest: Manifest, found: dict[str, Manifest], *, depth: int
    ) -> None:
        """Every manifest an index refers to, at any depth, each after its own children.

        OCI allows an index inside an index; stores refuse an index whose children are missing,
        so the order of ``found`` (by digest, each once) is the order to write them in.
        """
        if not manifest.is_index:
            return
        if depth > MAX_INDEX_DEPTH:
            raise UnsupportedMediaTypeError(
                f"manifest list of {job.source_name} nests other manifest lists more than "
                f"{MAX_INDEX_DEPTH} deep, which imageprep does not copy"
            )
        for descriptor in manifest.manifests:
            if descriptor.digest in found:
                continue
            child = self._fetch_child(job, descriptor)
            self._collect_children(job, child, found, depth=depth + 1)
            found[descriptor.digest] = child

    def _fetch_child(self, job: CopyJob, descriptor: Descriptor) -> Manifest:
        child = job.source.get_manifest(job.source_repository, descriptor.digest)
        _check_digest(child, descriptor.digest, job.source_name)
        return child

    def _copy_blobs(
        self,
        job: CopyJob,
        blobs: tuple[Descriptor, ...],
        copier: BlobCopier,
        blob_pool: BlobLanes,
        tally: ImageTally,
        fresh: bool,
    ) -> None:
        # Blob workers hand back uploads that another image is running; this image's own thread
        # waits for those, so the workers stay free for blobs nobody is copying yet.
        # Large blobs largest first, whichever image asks; small ones beside them (see BlobLanes).
        futures = [blob_pool.submit(blob.size, copier.start, job, blob, tally, fresh) for blob in blobs]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        if pending:
            # One blob failed: the image is lost, so do not start its queued blobs; let running ones end.
            for future in pending:
                future.cancel()
            wait(pending)
        for future in futures:
            if not future.cancelled() and future.exception() is not None:
                future.result()
        for blob, future in zip(blobs, futures, strict=True):
            in_flight = future.result()
            if in_flight is not None:
                copier.finish(job, blob, in_flight, tally)


def _check_digest(manifest: Manifest, expected: str, where: str) -> None:
    if manifest.digest != expected:
        raise DigestMismatchError(
            f"manifest {expected} of {where} has digest {manifest.digest}",
            hint="the source registry serves a different manifest than the one referenced",
        )


def copy_images(
    jobs: Sequence[CopyJob],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    image_concurrency: int | None = None,
    listener: TransferListener | None = None,
    architecture: str | None = None,
    policy: BlobPolicy | None = None,
    retrier: Retrier | None = None,
    attachments: bool = True,
) -> TransferReport:
    """Copy ``jobs`` with a new :class:`TransferEngine`; see there for the rules."""
    engine = TransferEngine(
        concurrency=concurrency,
        image_concurrency=image_concurrency,
        listener=listener,
        architecture=architecture,
        policy=policy,
        retrier=retrier,
        attachments=attachments,
    )
    return engine.run(jobs)
