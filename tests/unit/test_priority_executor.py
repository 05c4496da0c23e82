"""Blob work is taken largest first, whichever image queued it."""

from __future__ import annotations

import threading

import pytest

from imageprep.transfer.priority import PriorityExecutor


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
