"""A benchmark stopped by SIGTERM (a timeout, a cancelled job) stops its servers, as Ctrl-C does.

Python's default for SIGTERM ends the process at once, without running ``finally`` blocks or
leaving ``with`` blocks: every registry, web server and image-serve process the benchmark started
would be left running, holding its port and its temporary directory.
"""

from __future__ import annotations

import signal
from types import FrameType


def stop_cleanly_on_sigterm() -> None:
    """From now on SIGTERM raises ``SystemExit`` in the main thread, so servers are stopped on the way out."""

    def leave(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
