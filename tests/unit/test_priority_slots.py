"""A host's connections go to the most urgent waiter first; work asked ahead of need says so."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from imageprep.model.urgency import deferred, is_deferred
from imageprep.registry.slots import PrioritySlots


def _queue_waiters(slots: PrioritySlots, priorities: list[int]) -> tuple[list[int], list[threading.Thread]]:
    """One thread per priority, each queued (in this order) behind the held slot; records service order."""
    served: list[int] = []
    threads = []
    for priority in priorities:

        def wait_turn(priority: int = priority) -> None:
            assert slots.acquire(priority, 10)
            served.append(priority)
            slots.release()

        thread = threading.Thread(target=wait_turn)
        thread.start()
        threads.append(thread)
        expected = len(threads)
        _wait_until(lambda expected=expected: slots.waiting() == expected)
    return served, threads


def _wait_until(condition: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the waiter never queued"
        time.sleep(0.005)


def test_a_freed_slot_goes_to_the_most_urgent_waiter_and_equals_in_the_order_they_came() -> None:
    slots = PrioritySlots(1)
    assert slots.acquire(1)
    served, threads = _queue_waiters(slots, [2, 1, 2, 0, 1])
    slots.release()
    for thread in threads:
        thread.join(10)
    assert served == [0, 1, 1, 2, 2]
    assert slots.free() == 1


def test_a_waiter_that_gives_up_holds_no_slot_and_is_passed_over() -> None:
    slots = PrioritySlots(1)
    assert slots.acquire(1)
    assert not slots.acquire(0, timeout=0.05)  # the most urgent, but it gave up
    served, threads = _queue_waiters(slots, [2])
    slots.release()
    threads[0].join(10)
    assert served == [2]
    assert slots.free() == 1


def test_free_slots_are_taken_without_waiting_up_to_the_size() -> None:
    slots = PrioritySlots(3)
    assert all(slots.acquire(2, timeout=0) for _ in range(3))
    assert not slots.acquire(0, timeout=0)
    for _ in range(3):
        slots.release()
    assert slots.free() == 3


def test_many_threads_never_hold_more_slots_than_there_are() -> None:
    slots = PrioritySlots(4)
    holding = 0
    peak = 0
    lock = threading.Lock()

    def use(index: int) -> None:
        nonlocal holding, peak
        assert slots.acquire(index % 3, 10)
        with lock:
            holding += 1
            peak = max(peak, holding)
        time.sleep(0.001)
        with lock:
            holding -= 1
        slots.release()

    with ThreadPoolExecutor(16) as threads:
        list(threads.map(use, range(400)))
    assert peak <= 4
    assert slots.free() == 4


def test_no_slots_is_refused() -> None:
    with pytest.raises(ValueError):
        PrioritySlots(0)


def test_work_run_deferred_is_marked_only_while_it_runs_and_in_its_own_thread() -> None:
    seen: list[bool] = []

    def ask() -> str:
        seen.append(is_deferred())
        return "answer"

    assert deferred(ask)() == "answer"
    assert not is_deferred()
    with ThreadPoolExecutor(1) as threads:
        assert threads.submit(deferred(ask)).result(10) == "answer"
        assert threads.submit(ask).result(10) == "answer"  # the pool thread is not left marked
    assert seen == [True, True, False]
