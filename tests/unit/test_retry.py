"""The one retry policy: attempts, backoff, Retry-After, the deadline, and each host's budget."""

from __future__ import annotations

import pytest

from imageprep.model.control import RunControl
from imageprep.model.errors import DigestMismatchError, NotFoundError, TransientError
from imageprep.model.retry import Retrier, RetryPolicy


class Flaky:
    """Fails ``failures`` times (with ``error``), then answers ``"ok"``; counts its calls."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or TransientError("busy", cause="HTTP 503")
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def retrier(waits: list[float], **policy: float) -> Retrier:
    return Retrier(RetryPolicy(**policy), sleep=waits.append, draw=lambda: 0.999)  # type: ignore[arg-type]


def test_a_success_at_once_waits_for_nothing() -> None:
    waits: list[float] = []
    assert retrier(waits).call(Flaky(0), key="h") == "ok"
    assert waits == []


def test_transient_failures_are_retried_until_one_succeeds() -> None:
    waits: list[float] = []
    operation = Flaky(3)
    assert retrier(waits, attempts=5).call(operation, key="h") == "ok"
    assert operation.calls == 4 and len(waits) == 3


def test_gives_up_after_the_policys_attempts_saying_how_many_were_made() -> None:
    waits: list[float] = []
    operation = Flaky(10)
    with pytest.raises(TransientError, match=r"busy \(gave up after 4 attempts\)"):
        retrier(waits, attempts=4).call(operation, key="h")
    assert operation.calls == 4 and len(waits) == 3


def test_backoff_doubles_under_its_cap_with_full_jitter() -> None:
    waits: list[float] = []
    with pytest.raises(TransientError):
        retrier(waits, attempts=6, backoff=1.0, max_backoff=5.0).call(Flaky(10), key="h")
    assert waits == pytest.approx([0.999, 1.998, 3.996, 4.995, 4.995])
    drawn = Retrier(RetryPolicy(backoff=1.0), draw=lambda: 0.0)
    assert drawn.delay(3, TransientError("x")) == 0.0  # the jitter reaches down to no wait at all


def test_retry_after_replaces_the_backoff_and_is_capped() -> None:
    waits: list[float] = []
    asked = TransientError("slow down", retry_after=1.5)
    policy = {"attempts": 3, "max_retry_after": 2.0}
    retrier(waits, **policy).call(Flaky(1, asked), key="h")
    assert waits == [1.5]
    retrier(waits, **policy).call(Flaky(1, TransientError("x", retry_after=30.0)), key="h")
    assert waits == [1.5, 2.0]


def test_errors_that_are_not_transient_are_raised_at_once() -> None:
    waits: list[float] = []
    operation = Flaky(1, NotFoundError("no such tag"))
    with pytest.raises(NotFoundError, match="no such tag$"):
        retrier(waits).call(operation, key="h")
    assert operation.calls == 1 and waits == []


def test_other_kinds_are_retried_when_the_caller_says_so() -> None:
    waits: list[float] = []
    damaged = Flaky(2, DigestMismatchError("bytes damaged"))
    assert retrier(waits).call(damaged, key="h", retry_on=(DigestMismatchError,), attempts=3) == "ok"


def test_a_failing_host_drains_its_budget_and_then_fails_at_the_first_failure() -> None:
    waits: list[float] = []
    budgeted = retrier(waits, attempts=100, reserve=5, refill=0.5)
    first = Flaky(1000)
    with pytest.raises(TransientError):
        budgeted.call(first, key="dead")
    assert first.calls == 6  # the reserve of 5 retries, then no more
    later = Flaky(1000)
    with pytest.raises(TransientError):
        budgeted.call(later, key="dead")
    assert later.calls == 1
    other = Flaky(2)
    assert budgeted.call(other, key="alive") == "ok"  # every host has a budget of its own


def test_successes_pay_into_the_budget_so_a_flaky_host_keeps_getting_through() -> None:
    waits: list[float] = []
    budgeted = retrier(waits, attempts=10, reserve=2, refill=0.5, ceiling=100)
    for _ in range(200):  # every request fails once, then works: half a retry's pay per success
        budgeted.call(Flaky(1), key="flaky")
        budgeted.call(Flaky(0), key="flaky")
    stats = budgeted.stats()
    assert stats.retries == 200 and stats.failures == 200


def test_waits_the_server_asked_for_cost_no_budget() -> None:
    waits: list[float] = []
    budgeted = retrier(waits, attempts=50, reserve=0, refill=0)
    assert budgeted.call(Flaky(20, TransientError("429", retry_after=0.0)), key="h") == "ok"


def test_a_host_that_cannot_be_reached_is_remembered_as_down_once_its_budget_is_gone() -> None:
    waits: list[float] = []
    budgeted = retrier(waits, attempts=10, reserve=2)
    refused = TransientError("connection refused", unreachable=True, cause="connect")
    with pytest.raises(TransientError):
        budgeted.call(Flaky(100, refused), key="gone")
    never = Flaky(0)
    with pytest.raises(TransientError, match="connection refused"):
        budgeted.call(never, key="gone")
    assert never.calls == 0  # not even tried


def test_an_operation_that_progresses_gets_its_count_of_tries_back() -> None:
    waits: list[float] = []
    tries = retrier(waits, attempts=3).attempts("h")
    for _ in range(10):  # ten failures, each followed by progress: never given up
        tries.failed(TransientError("cut", cause="cut"))
        tries.progressed()
    tries.failed(TransientError("cut"))
    tries.failed(TransientError("cut"))
    with pytest.raises(TransientError, match="gave up after 3 attempts"):
        tries.failed(TransientError("cut"))


def test_no_retry_and_no_wait_outlives_the_deadline() -> None:
    now = [0.0]
    control = RunControl(10.0, clock=lambda: now[0])
    waits: list[float] = []
    policy = RetryPolicy(backoff=100.0, max_backoff=100.0)
    capped = Retrier(policy, control=control, sleep=waits.append, draw=lambda: 0.5)
    assert capped.delay(1, TransientError("x")) == 10.0
    now[0] = 11.0
    with pytest.raises(TransientError):
        capped.call(Flaky(5), key="h")


def test_a_host_that_refuses_connections_gets_fewer_attempts() -> None:
    waits: list[float] = []
    refused = Flaky(100, TransientError("connection refused", unreachable=True, cause="connect"))
    with pytest.raises(TransientError, match="gave up after 3 attempts"):
        retrier(waits, attempts=8, connect_attempts=3).call(refused, key="h")
    assert refused.calls == 3
