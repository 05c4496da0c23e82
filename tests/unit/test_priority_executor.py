"""Large blobs are taken largest first, whichever image queued them; small ones beside them."""

from __future__ import annotations

import threading

import pytest

from imageprep.transfer.priority import SMALL_BLOB_BYTES, BlobLanes, PriorityExecutor


def test_the_most_important_task_waiting_runs_first() -> None:
    gate = threading.Event()
    order: list[int] = []
    with PriorityExecutor(1, name="test") as pool:
        blocker = pool.submit(0, gate.wait, 10)
        futures = [pool.submit(-size, order.append, size) for size in (1, 16, 8, 1)]
        gate.set()
        blocker.result(10)
        for future in futures:
            future.result(10)
    assert order == [16, 8, 1, 1]  # largest first; equal ones in the order they came


def test_failures_reach_the_future_and_queued_tasks_can_be_cancelled() -> None:
    gate = threading.Event()
    with PriorityExecutor(1, name="test") as pool:
        pool.submit(0, gate.wait, 10)
        waiting = pool.submit(1, print, "never")
        assert waiting.cancel()
        failing = pool.submit(0, int, "not a number")
        gate.set()
        with pytest.raises(ValueError):
            failing.result(10)
    assert waiting.cancelled()


def test_leaving_on_an_error_cancels_what_had_not_started() -> None:
    gate = threading.Event()
    pool = PriorityExecutor(1, name="test")
    pool.submit(0, gate.wait, 10)
    queued = pool.submit(1, print, "never")
    gate.set()
    with pytest.raises(KeyError), pool:
        raise KeyError("interrupted")
    assert queued.cancelled() or queued.done()
    with pytest.raises(RuntimeError):
        pool.submit(0, print, "after")


def test_small_blobs_do_not_wait_behind_large_ones() -> None:
    # Every large-blob worker is busy: a small blob still starts, in its own lane, and small ones
    # go in the order their images asked (they are round trips, not bytes).
    gate = threading.Event()
    order: list[int] = []
    large = 4 * SMALL_BLOB_BYTES
    with BlobLanes(1, name="test") as lanes:
        busy = lanes.submit(large, gate.wait, 10)
        small = [lanes.submit(size, order.append, size) for size in (3, 1, 2)]
        for future in small:
            future.result(10)  # done while the large lane is still held
        assert not busy.done()
        queued = [lanes.submit(size, order.append, size) for size in (large, 2 * large)]
        gate.set()
        for future in queued:
            future.result(10)
    assert order == [3, 1, 2, 2 * large, large]
