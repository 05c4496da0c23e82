"""What hangs on an image's digests goes along with the image: signatures, attestations, SBOMs.

For each digest the destination now holds (the tagged manifest, and each child of a list copied
whole), three places are looked at (see :mod:`imageprep.model.attachments`):

- cosign's tags ``sha256-HEX.sig/.att/.sbom``, found in the source repository's tag list;
- OCI referrers: the source's referrers API when the image is being copied, else (and where the
  source has no such API) its ``sha256-HEX`` fallback tag;
- lookaside signatures, read from the source's lookaside and added to the destination's.

The tag list is one request per repository, so a re-run that finds the image in place costs one
request more than the image's own check, and still brings signatures added since (the referrers
API, one request per digest, is asked only when the image itself is copied). Attachments are
manifests copied by the engine's own copy of one image, so they are checked, skipped when present
and written byte for byte like any image; one that cannot be copied is a problem reported with the
image, never a failure of it. Each question to the source is asked as soon as it can be (the tag
list when the image's copy begins, the rest once its digests are known), beside the image's own
requests rather than after them, and deferred: the image's own requests go first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import replace

from imageprep.model.attachments import cosign_tags, digest_tag
from imageprep.model.errors import ImageprepError
from imageprep.model.manifest import Descriptor
from imageprep.model.urgency import deferred
from imageprep.transfer.jobs import CopyJob
from imageprep.transfer.report import AttachmentCounts, Outcome
from imageprep.transfer.store import ImageStore

# Copies one manifest (and what it needs) as the engine copies an image: copied, or found present.
CopyOne = Callable[[CopyJob], Outcome]


def find_referrers(
    store: ImageStore, repository: str, digest: str, tags: frozenset[str], listed: Sequence[Descriptor] | None
) -> Sequence[Descriptor]:
    """The referrers of ``digest``: what the referrers API ``listed``, else (``None``: not asked, or
    no such API) the index under its fallback tag, where ``tags`` has one."""
    if listed is not None:
        return listed
    fallback = digest_tag(digest)
    if fallback not in tags:
        return ()
    return store.get_manifest(repository, fallback).manifests


class AttachmentLookups:
    """The source's answers about one image's attachments, asked ahead on ``executor``.

    Nothing is asked before the image's own manifest has answered (the first :meth:`digests_known`):
    the first round trip of a run then carries manifests, each of which starts blob transfers,
    rather than tag lists half of it, which are needed only when the image's copy ends.
    """

    def __init__(self, job: CopyJob, executor: Executor) -> None:
        self._job = job
        self._executor = executor
        self._lock = threading.Lock()
        self._tags: Future[list[str]] | None = None
        self._referrers: dict[str, Future[list[Descriptor] | None]] = {}
        self._signatures: dict[str, Future[list[bytes]]] = {}

    @property
    def tags(self) -> Future[list[str]]:
        """The source repository's tags (asked now if they were not asked ahead)."""
        with self._lock:
            return self._ask_tags()

    def _ask_tags(self) -> Future[list[str]]:
        if self._tags is None:
            self._tags = self._executor.submit(
                deferred(self._job.source.list_tags), self._job.source_repository
            )
        return self._tags

    def digests_known(self, digests: Sequence[str], *, copying: bool) -> None:
        """Ask about ``digests`` now; the referrers API only for an image being copied."""
        source, repository = self._job.source, self._job.source_repository
        with self._lock:
            self._ask_tags()
            for digest in digests:
                if digest not in self._signatures:
                    self._signatures[digest] = self._executor.submit(
                        deferred(source.read_signatures), repository, digest
                    )
                if copying and digest not in self._referrers:
                    self._referrers[digest] = self._executor.submit(
                        deferred(source.referrers), repository, digest
                    )

    def referrers(self, digest: str) -> list[Descriptor] | None:
        """What the referrers API listed (``None``: not asked, or no such API)."""
        with self._lock:
            future = self._referrers.get(digest)
        return future.result() if future is not None else None

    def signatures(self, digest: str) -> list[bytes]:
        """The lookaside signatures of ``digest`` (asked now if they were not asked ahead)."""
        self.digests_known((digest,), copying=False)
        with self._lock:
            future = self._signatures[digest]
        return future.result()


class AttachmentCopier:
    """Brings the attachments of one image's digests from its source to its destination."""

    def __init__(self, copy_one: CopyOne) -> None:
        self._copy_one = copy_one

    def copy(self, job: CopyJob, digests: Sequence[str], lookups: AttachmentLookups) -> AttachmentCounts:
        """Copy what hangs on ``digests`` (the image's, at the destination now)."""
        listed, counts = self._source_tags(job, lookups.tags)
        for digest in digests:
            counts = counts + self._tagged(job, digest, listed)
            counts = counts + self._referrers(job, digest, listed, lookups)
            counts = counts + self._signatures(job, digest, lookups)
        return counts

    @staticmethod
    def _source_tags(job: CopyJob, tags: Future[list[str]]) -> tuple[frozenset[str], AttachmentCounts]:
        try:
            return frozenset(tags.result()), AttachmentCounts()
        except ImageprepError as exc:
            problem = f"the tags of {job.source_name} could not be listed to find its signatures: {exc}"
            return frozenset(), AttachmentCounts(problems=(problem,))

    def _attached(self, job: CopyJob, reference: str, kind: str) -> AttachmentCounts:
        """Copy the manifest ``reference`` of the source repository under the same name."""
        attachment = replace(
            job,
            source_reference=reference,
            destination_tag=reference,
            all_architectures=True,
            attachments=False,
        )
        try:
            outcome = self._copy_one(attachment)
        except ImageprepError as exc:
            return AttachmentCounts(problems=(f"{kind} {attachment.source_name} was not copied: {exc}",))
        if outcome is Outcome.SKIPPED:
            return AttachmentCounts(present=1)
        return AttachmentCounts(tags=1) if kind == "signature tag" else AttachmentCounts(referrers=1)

    def _tagged(self, job: CopyJob, digest: str, tags: frozenset[str]) -> AttachmentCounts:
        counts = AttachmentCounts()
        for tag in cosign_tags(digest):
            if tag in tags:
                counts = counts + self._attached(job, tag, "signature tag")
        return counts

    def _referrers(
        self, job: CopyJob, digest: str, tags: frozenset[str], lookups: AttachmentLookups
    ) -> AttachmentCounts:
        try:
            found = find_referrers(job.source, job.source_repository, digest, tags, lookups.referrers(digest))
        except ImageprepError as exc:
            return AttachmentCounts(
                problems=(f"the referrers of {job.source_name} could not be read: {exc}",)
            )
        counts = AttachmentCounts()
        for referrer in found:
            counts = counts + self._attached(job, referrer.digest, "referrer")
        return counts

    @staticmethod
    def _signatures(job: CopyJob, digest: str, lookups: AttachmentLookups) -> AttachmentCounts:
        try:
            signatures = lookups.signatures(digest)
            if not signatures:
                return AttachmentCounts()
            added = job.destination.write_signatures(job.destination_repository, digest, signatures)
        except ImageprepError as exc:  # NoSignatureStorageError among them: nowhere to write
            return AttachmentCounts(problems=(f"the signatures of {job.source_name} were not copied: {exc}",))
        return AttachmentCounts(signatures=added, present=len(signatures) - added)
