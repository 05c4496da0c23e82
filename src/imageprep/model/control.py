"""Stopping a run from outside: a total deadline, and an interruption (Ctrl-C).

One :class:`RunControl` is shared by everything a run does. Work checks it before each request
and between the chunks of a stream, so a run stops within one request of being told to, and the
deadline also caps each request's own timeouts so a stalled server cannot hold a run past it.
Cleanup (cancelling an upload) is still allowed after a stop, so nothing is left half-done.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, wait
from typing import Any

from imageprep.model.errors import DeadlineExceededError, RunInterruptedError


class RunControl:
    """A deadline (``seconds`` from now; ``None`` for none) and a stop flag, shared across threads."""

    def __init__(self, seconds: float | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.seconds = seconds
        self._deadline = clock() + seconds if seconds is not None else None
        self._stopped = threading.Event()
        self._on_stop: list[Callable[[], None]] = []

    def when_stopped(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (quick, and safe in a signal handler) when the run is stopped."""
        self._on_stop.append(callback)
        if self.stopped:
            callback()

    def stop(self) -> None:
        """Ask every part of the run to stop at its next check (safe from a signal handler);
        what registered with :meth:`when_stopped` (open sockets) is cut now."""
        self._stopped.set()
        for callback in list(self._on_stop):
            callback()

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopped.is_set()

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), ``None`` without one."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - self._clock())

    @property
    def expired(self) -> bool:
        """Whether the deadline has passed."""
        remaining = self.remaining()
        return remaining is not None and remaining <= 0.0

    def check(self, doing: str, *, cleanup: bool = False) -> None:
        """Raise if the run must stop; ``doing`` says what was about to happen, for the message.

        ``cleanup`` work (cancelling what was started) goes ahead after an interruption or the
        deadline: stopping must not leave more behind than finishing would.
        """
        if cleanup:
            return
        if self._stopped.is_set():
            raise RunInterruptedError(f"interrupted before {doing}")
        if self.expired:
            raise DeadlineExceededError(
                f"the time limit of {self.seconds:g}s for this run ran out before {doing}",
                hint="allow more time, or check why the registries are slow",
            )

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less when the run is stopped meanwhile (a retry's backoff)."""
        self._stopped.wait(max(0.0, seconds))

    def cap(self, seconds: float) -> float:
        """``seconds``, or less so as not to go past the deadline (at least a moment, to fail cleanly)."""
        remaining = self.remaining()
        return seconds if remaining is None else max(0.01, min(seconds, remaining))


SIGNAL_CHECK_SECONDS = 0.2


def wait_interruptibly(futures: Iterable[Future[Any]]) -> None:
    """Wait until every future is done, back in Python code at least every :data:`SIGNAL_CHECK_SECONDS`.

    A signal (Ctrl-C) can be delivered to any thread of the process, and Python runs its handler
    in the main thread only once that thread runs Python code again: blocked on one image's result,
    the main thread would hear of a Ctrl-C only when that image was done.
    """
    pending = set(futures)
    while pending:
        _, pending = wait(pending, timeout=SIGNAL_CHECK_SECONDS)
