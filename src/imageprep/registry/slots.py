"""A fixed number of slots, handed to waiters by priority: lower first, then in the order they came.

A host's connections are its slots. A semaphore wakes its waiters in no particular order, so at
the start of a run the questions nobody waits on yet (an image's attachments, asked ahead of its
copy) hold connections while the first layers, which keep the link busy, wait behind them.
Handed out by priority, a freed slot goes to the most urgent waiter.
"""

from __future__ import annotations

import heapq
import itertools
import threading


class _Waiter:
    __slots__ = ("cancelled", "granted", "woken")

    def __init__(self) -> None:
        self.woken = threading.Event()
        self.granted = False
        self.cancelled = False


class PrioritySlots:
    """``size`` slots; :meth:`acquire` waits for one, :meth:`release` hands it to the next waiter."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("there must be at least one slot")
        self._free = size
        self._lock = threading.Lock()
        self._waiting: list[tuple[int, int, _Waiter]] = []
        self._order = itertools.count()

    def acquire(self, priority: int, timeout: float | None = None) -> bool:
        """Take a slot, waiting at most ``timeout`` seconds (``None``: as long as it takes).

        False when none was free in time; a waiter that gave up never holds a slot.
        """
        with self._lock:
            if self._free > 0:
                self._free -= 1
                return True
            waiter = _Waiter()
            heapq.heappush(self._waiting, (priority, next(self._order), waiter))
        if waiter.woken.wait(timeout):
            return True
        with self._lock:
            if waiter.granted:  # handed a slot just as it gave up: it is this waiter's
                return True
            waiter.cancelled = True  # left in the heap, skipped when its turn comes
            return False

    def release(self) -> None:
        """Give a slot back: to the most urgent waiter, else to the free ones."""
        with self._lock:
            while self._waiting:
                _, _, waiter = heapq.heappop(self._waiting)
                if not waiter.cancelled:
                    waiter.granted = True
                    waiter.woken.set()
                    return
            self._free += 1

    def free(self) -> int:
        """How many slots nobody holds (for tests)."""
        with self._lock:
            return self._free

    def waiting(self) -> int:
        """How many are waiting for a slot, those that gave up not counted (for tests)."""
        with self._lock:
            return sum(1 for _, _, waiter in self._waiting if not waiter.cancelled)
