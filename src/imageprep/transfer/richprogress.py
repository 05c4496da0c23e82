"""A live progress display on stderr, for runs on a terminal; safe to call from many threads."""

from __future__ import annotations

import threading
import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from imageprep.transfer.jobs import CopyJob
from imageprep.transfer.listener import BlobAction
from imageprep.transfer.report import ImageResult, Outcome, TransferReport, format_bytes


class RichProgressListener:
    """A live display on stderr: images done of total, bytes streamed, average transfer rate.

    Use it as a context manager around the run so the display is always closed, even on errors.
    """

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]copying"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("images{task.fields[failed]}  {task.fields[transferred]}  {task.fields[rate]}"),
            TimeElapsedColumn(),
            console=self._console,
        )
        self._lock = threading.Lock()
        self._task: TaskID | None = None
        self._bytes = 0
        self._failed = 0
        self._started = time.monotonic()

    def __enter__(self) -> RichProgressListener:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def run_started(self, total_images: int) -> None:
        """Create the images bar."""
        self._started = time.monotonic()
        self._task = self._progress.add_task(
            "images", total=total_images, transferred="0 B", rate="", failed=""
        )
        self._failed = 0

    def image_started(self, job: CopyJob) -> None:
        """Nothing to show per image start; the bar moves on finish."""

    def blob_finished(self, job: CopyJob, digest: str, action: BlobAction) -> None:
        """Blobs are summarised by the byte counter."""

    def bytes_transferred(self, job: CopyJob, count: int) -> None:
        """Update the byte counter and the average rate."""
        with self._lock:
            self._bytes += count
            total = self._bytes
        if self._task is None:
            return
        elapsed = max(time.monotonic() - self._started, 1e-6)
        self._progress.update(
            self._task, transferred=format_bytes(total), rate=f"{format_bytes(int(total / elapsed))}/s"
        )

    def image_finished(self, job: CopyJob, result: ImageResult) -> None:
        """Advance the bar; failures are counted on it (the run's error says what they were)."""
        if self._task is None:
            return
        if result.outcome is Outcome.FAILED:
            with self._lock:
                self._failed += 1
                failed = self._failed
            self._progress.update(self._task, failed=f", [bold red]{failed} failed[/]")
        self._progress.advance(self._task, 1)

    def run_finished(self, report: TransferReport) -> None:
        """Print the summary line under the bar."""
        self._progress.console.print(report.summary(), markup=False, highlight=False, soft_wrap=True)
