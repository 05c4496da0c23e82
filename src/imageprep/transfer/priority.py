"""A fixed set of worker threads taking the most important task first (the largest blob).

Blob work is queued by every image as its manifest arrives; taken in arrival order, a run would
start its big shared layers whenever their first image happened to come, and could end on one
large layer downloading alone. Taken largest first, the big layers start at once and the small
ones fill the link around them.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")


class PriorityExecutor:
    """Like a ``ThreadPoolExecutor``, but :meth:`submit` takes a priority: lower runs first."""

    def __init__(self, workers: int, *, name: str) -> None:
        self._queue: list[tuple[float, int, Future[Any], Callable[[], Any]]] = []
        self._order = itertools.count()
        self._ready = threading.Condition()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}_{index}", daemon=True)
            for index in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, priority: float, call: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``call(*args)`` when its turn comes; its future (cancellable until it starts)."""
        future: Future[T] = Future()
        with self._ready:
            if self._stopping:
                raise RuntimeError("the executor is shut down")
            heapq.heappush(self._queue, (priority, next(self._order), future, lambda: call(*args)))
            self._ready.notify()
        return future

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._stopping:
                    self._ready.wait()
                if not self._queue:
                    return
                _, _, future, task = heapq.heappop(self._queue)
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(task())
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

    def shutdown(self, *, cancel_futures: bool = False) -> None:
        """Let the workers finish what is queued (or cancel it), then wait for them."""
        with self._ready:
            self._stopping = True
            if cancel_futures:
                for _, _, future, _ in self._queue:
                    future.cancel()
                self._queue.clear()
            self._ready.notify_all()
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> PriorityExecutor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown(cancel_futures=exc is not None)


# A blob below this size costs more in round trips than in bytes on a far-away link (at 200 Mbit/s
# 1 MiB takes about one 40 ms round trip), so it needs a free worker more than a share of the link.
SMALL_BLOB_BYTES = 1024 * 1024


class BlobLanes:
    """Two sets of blob workers: large blobs largest first, small ones in the order they come.

    Largest first alone ends a run with every small blob (configs, thin top layers) queued behind
    the big ones, each then paying its round trip with only ``workers`` in flight: the link idles
    for most of a second at 40 ms. In a lane of their own, small blobs go as their images ask,
    while the large ones keep the link busy, and images finish as the run goes.
    """

    def __init__(self, workers: int, *, name: str, small_bytes: int = SMALL_BLOB_BYTES) -> None:
        self._small_bytes = small_bytes
        self._large = PriorityExecutor(workers, name=f"{name}-large")
        self._small = PriorityExecutor(workers, name=f"{name}-small")

    def submit(self, size: int, call: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``call(*args)`` for a blob of ``size`` bytes in its lane."""
        if size < self._small_bytes:
            return self._small.submit(0, call, *args)
        return self._large.submit(-size, call, *args)

    def shutdown(self, *, cancel_futures: bool = False) -> None:
        """Shut both lanes down (see :meth:`PriorityExecutor.shutdown`)."""
        self._small.shutdown(cancel_futures=cancel_futures)
        self._large.shutdown(cancel_futures=cancel_futures)

    def __enter__(self) -> BlobLanes:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown(cancel_futures=exc is not None)
