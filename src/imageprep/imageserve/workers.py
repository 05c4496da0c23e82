"""Several processes serving one listening socket: ``imageprep serve --workers N``.

Why processes: one event loop is one thread, and CPython runs one thread at a time. With a worker
per core, blobs go out on every core at once, a worker busy with a TLS handshake or a cold file
does not delay the others, and on a machine whose cores are also busy (the benchmark's clients,
or prepare running next to the server) the server keeps its share of them. The workers share
only the socket: the kernel hands each new connection to one waiting worker (``EPOLLEXCLUSIVE``),
and each keeps its own manifest cache.

The parent only supervises. It forks the workers, restarts one that dies (at most
:data:`MAX_RESTARTS` within :data:`RESTART_WINDOW` seconds, then it gives up with an error), and
when it is stopped (SIGTERM, or Ctrl-C, which it raises as usual) it stops them all and waits,
even when the stop comes while it is still forking them. A worker whose parent is gone (killed
with SIGKILL) stops by itself within a second.
Workers die on SIGTERM and ignore SIGINT: a Ctrl-C reaches the whole process group, and only the
parent should act on it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections import deque

from imageprep.imageserve.server import ImageServeServer
from imageprep.model.errors import ImageServeError

LOG = logging.getLogger("imageprep.serve")
MAX_RESTARTS = 10
RESTART_WINDOW = 60.0
STOP_TIMEOUT = 10.0


def default_workers() -> int:
    """One worker per core the process may use, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def _start_worker(server: ImageServeServer, poll_interval: float, children: set[int]) -> None:
    """Fork one worker and add it to ``children`` before a stop signal can reach the parent."""
    # Stop signals wait until the child has its own handlers (the parent's would raise in the
    # child) and until the parent has recorded the child (or a stop would miss it).
    stopping = {signal.SIGTERM, signal.SIGINT}
    parent = os.getpid()
    signal.pthread_sigmask(signal.SIG_BLOCK, stopping)
    try:
        pid = os.fork()
        if pid:
            children.add(pid)
            return
    finally:
        if os.getpid() == parent:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stopping)
    code = 0
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stopping)
        server.serve_forever(poll_interval, parent=parent)
    except BaseException as exc:
        LOG.warning("server worker %d failed: %s", os.getpid(), exc or type(exc).__name__)
        LOG.debug("server worker %d failed", os.getpid(), exc_info=True)
        code = 1
    finally:
        os._exit(code)


def serve_in_workers(server: ImageServeServer, workers: int, poll_interval: float = 0.5) -> None:
    """Serve with ``workers`` forked processes until a signal handler raises in the parent."""
    children: set[int] = set()
    restarts: deque[float] = deque()
    try:
        for _ in range(workers):
            _start_worker(server, poll_interval, children)
        while True:
            pid, status = os.wait()
            if pid not in children:
                continue
            children.discard(pid)
            LOG.warning("a server worker stopped (%s); starting another", _describe(status))
            now = time.monotonic()
            restarts.append(now)
            while restarts and restarts[0] < now - RESTART_WINDOW:
                restarts.popleft()
            if len(restarts) > MAX_RESTARTS:
                raise ImageServeError(
                    f"server workers stopped {len(restarts)} times within {RESTART_WINDOW:.0f} s; giving up",
                    hint="see the warnings above, or run imageprep --debug serve --workers 1",
                )
            _start_worker(server, poll_interval, children)
    finally:
        _stop_all(children)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _stop_all(children: set[int]) -> None:
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while children and time.monotonic() < deadline:
        for pid in list(children):
            with contextlib.suppress(ChildProcessError):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if not done:
                    continue
            children.discard(pid)
        if children:
            time.sleep(0.02)
    for pid in children:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
