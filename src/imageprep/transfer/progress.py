"""Plain log lines for people: the listener used when stderr is not a terminal.

The engine only calls a :class:`~imageprep.transfer.listener.TransferListener`; on a terminal the
CLI uses :mod:`.richprogress` instead (a module of its own so that runs off a terminal never
import rich). Safe to call from many threads.
"""

from __future__ import annotations

import logging

from imageprep.transfer.jobs import CopyJob
from imageprep.transfer.listener import BlobAction
from imageprep.transfer.report import ImageResult, Outcome, TransferReport

_log = logging.getLogger("imageprep.transfer")


class LoggingListener:
    """Writes the run's summary (INFO), and a line per image and blob (DEBUG).

    An operator sees one summary line by default and every image with ``-v``.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or _log

    def run_started(self, total_images: int) -> None:
        """Log the size of the run."""
        self._log.debug("copying %d images", total_images)

    def image_started(self, job: CopyJob) -> None:
        """Log the image being started (DEBUG)."""
        self._log.debug("copy %s -> %s", job.source_name, job.destination_name)

    def blob_finished(self, job: CopyJob, digest: str, action: BlobAction) -> None:
        """Log how the blob got there (DEBUG)."""
        self._log.debug("%s: blob %s %s", job.destination_name, digest, action.value)

    def bytes_transferred(self, job: CopyJob, count: int) -> None:
        """Byte counts are too fine-grained for a log."""

    def image_finished(self, job: CopyJob, result: ImageResult) -> None:
        """Log the outcome (DEBUG: every image with -v); the run's error tells failures once, grouped."""
        if result.outcome is Outcome.FAILED:
            self._log.debug("failed %s: %s", result.source, result.error)
        elif result.outcome is Outcome.SKIPPED:
            self._log.debug("skipped %s (destination already has %s)", result.destination, result.digest)
        else:
            self._log.debug(
                "copied %s -> %s (%d blobs copied, %d mounted, %d present)",
                result.source,
                result.destination,
                result.blobs.copied,
                result.blobs.mounted,
                result.blobs.present,
            )

    def run_finished(self, report: TransferReport) -> None:
        """Log the one-line summary."""
        self._log.info("%s", report.summary())
