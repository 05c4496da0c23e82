"""Retrying transient failures: jittered exponential backoff that honours ``Retry-After``.

The retry loop itself is tenacity's, and it is entered only after a first attempt has failed: a
run whose requests all succeed at once (nearly every request of nearly every run) never builds
a retry loop, and never imports tenacity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import tenacity

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried.

    ``attempts`` counts the first one. ``backoff`` is the exponential multiplier and
    ``max_backoff`` its cap; a server's ``Retry-After`` replaces the computed wait but is capped
    by ``max_retry_after`` so one answer cannot stall a run.
    """

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 10.0
    max_retry_after: float = 60.0


class Retryable(Exception):
    """One attempt failed transiently: a new attempt may succeed."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def retry_after_failure(
    attempt: Callable[[], T], first_failure: Retryable, policy: RetryPolicy, sleep: Callable[[float], None]
) -> T:
    """Go on from a failed first attempt as if the retry loop had made it: wait, try again, ...

    Raises the last :class:`Retryable` once ``policy.attempts`` attempts (the first included) failed.
    """
    import tenacity

    backoff = tenacity.wait_random_exponential(multiplier=policy.backoff, max=policy.max_backoff)

    def wait(retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None else None
        if isinstance(failure, Retryable) and failure.retry_after is not None:
            return min(failure.retry_after, policy.max_retry_after)
        return float(backoff(retry_state))

    replayed = [first_failure]

    def next_attempt() -> T:
        if replayed:
            raise replayed.pop()  # the attempt that was already made
        return attempt()

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max(1, policy.attempts)),
        wait=wait,
        retry=tenacity.retry_if_exception_type(Retryable),
        sleep=sleep,
        reraise=True,
    )
    return retrying(next_attempt)
