"""Progress callbacks: how the engine tells a front end what it is doing without printing.

Callbacks are made from worker threads, concurrently; implementations must be thread-safe,
quick, and must not raise (an exception would fail the image being copied).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from imageprep.transfer.jobs import CopyJob
from imageprep.transfer.report import ImageResult, TransferReport


class BlobAction(StrEnum):
    """How one blob reached the destination repository."""

    COPIED = "copied"
    MOUNTED = "mounted"
    PRESENT = "present"


class TransferListener(Protocol):
    """Receives progress events from a copy run."""

    def run_started(self, total_images: int) -> None:
        """The run begins with this many jobs."""
        ...

    def image_started(self, job: CopyJob) -> None:
        """Work on one image begins."""
        ...

    def blob_finished(self, job: CopyJob, digest: str, action: BlobAction) -> None:
        """A blob of ``job`` is now in the destination repository."""
        ...

    def bytes_transferred(self, job: CopyJob, count: int) -> None:
        """``count`` more blob bytes were streamed for ``job`` (re-fetches count again)."""
        ...

    def image_finished(self, job: CopyJob, result: ImageResult) -> None:
        """One image is done (copied, skipped or failed)."""
        ...

    def run_finished(self, report: TransferReport) -> None:
        """Every image is done."""
        ...


class NullListener:
    """Ignores every event: the default when nobody is watching."""

    def run_started(self, total_images: int) -> None:
        """Ignored."""

    def image_started(self, job: CopyJob) -> None:
        """Ignored."""

    def blob_finished(self, job: CopyJob, digest: str, action: BlobAction) -> None:
        """Ignored."""

    def bytes_transferred(self, job: CopyJob, count: int) -> None:
        """Ignored."""

    def image_finished(self, job: CopyJob, result: ImageResult) -> None:
        """Ignored."""

    def run_finished(self, report: TransferReport) -> None:
        """Ignored."""
