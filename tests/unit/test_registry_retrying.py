"""Retrying after a failed first attempt: counts, backoff, Retry-After, and no tenacity on success."""

from __future__ import annotations

import pytest

from imageprep.registry.retrying import Retryable, RetryPolicy, retry_after_failure
from tests.support.freshpython import run_python


class Attempts:
    """Fails ``failures`` times with ``retry_after``, then answers ``"ok"``; counts its calls."""

    def __init__(self, failures: int, retry_after: float | None = None) -> None:
        self.failures = failures
        self.retry_after = retry_after
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise Retryable(f"failure {self.calls}", self.retry_after)
        return "ok"


def test_the_first_attempt_counts_and_is_not_made_again() -> None:
    waits: list[float] = []
    attempt = Attempts(failures=1)
    result = retry_after_failure(
        attempt, Retryable("first"), RetryPolicy(attempts=3, backoff=0.01), waits.append
    )
    assert result == "ok"
    assert attempt.calls == 2  # the first attempt was made by the caller; two more here at most
    assert len(waits) == 2


def test_gives_up_after_the_policys_attempts_with_the_last_failure() -> None:
    waits: list[float] = []
    attempt = Attempts(failures=10)
    with pytest.raises(Retryable, match="failure 3"):
        retry_after_failure(attempt, Retryable("first"), RetryPolicy(attempts=4, backoff=0.01), waits.append)
    assert attempt.calls == 3  # 1 (the caller's) + 3 = 4 attempts in all
    assert len(waits) == 3


def test_backoff_grows_and_stays_under_its_cap() -> None:
    waits: list[float] = []
    policy = RetryPolicy(attempts=6, backoff=1.0, max_backoff=3.0)
    with pytest.raises(Retryable):
        retry_after_failure(Attempts(failures=10), Retryable("first"), policy, waits.append)
    assert len(waits) == 5
    assert all(0 <= wait <= 3.0 for wait in waits)


def test_retry_after_replaces_the_backoff_and_is_capped() -> None:
    waits: list[float] = []
    policy = RetryPolicy(attempts=3, backoff=0.01, max_retry_after=2.0)
    retry_after_failure(Attempts(failures=1, retry_after=30.0), Retryable("first", 1.5), policy, waits.append)
    assert waits == [1.5, 2.0]


def test_a_run_whose_requests_succeed_never_imports_tenacity() -> None:
    probe = (
        "import sys\n"
        "from imageprep.registry.transport import Transport\n"
        "from imageprep.registry.session import RegistrySession\n"
        "assert 'tenacity' not in sys.modules\n"
        "from imageprep.registry.retrying import retry_after_failure\n"
        "assert 'tenacity' not in sys.modules\n"
    )
    run_python(probe)
