"""The one retry policy of a run: jittered exponential backoff, ``Retry-After``, a deadline, a budget.

Every retry imageprep makes (a request that failed to connect or was answered 429/5xx, a blob
download cut mid-body, an upload the registry dropped, bytes that arrived damaged) goes through a
:class:`Retrier`, so they all wait the same way, stop at the same deadline (``--timeout``) and
draw on the same budget.

The budget is per host and works like a bank account: it opens with :attr:`RetryPolicy.reserve`
retries, each success pays in :attr:`RetryPolicy.refill`, each retry takes one out. A registry that
fails one request in five keeps a healthy balance and every request gets through; a registry that
answers nothing drains it within a few requests, after which requests fail at their first
failure instead of each waiting through its own backoff. A host that could not even be connected
to once its budget is gone is remembered as down, and later requests to it fail at once with the
same cause. Waits the server asked for (``Retry-After``) take nothing from the budget: the server
is alive and said when to come back.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from imageprep.model.control import RunControl
from imageprep.model.errors import ImageprepError, TransientError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How patiently transient failures are retried.

    ``attempts`` counts the first one. The wait before attempt *n + 1* is drawn uniformly from
    ``[0, min(max_backoff, backoff * 2**(n-1)))`` (full jitter, so threads that failed together do
    not come back together), or is the server's ``Retry-After`` capped by ``max_retry_after``.
    ``reserve``, ``refill`` and ``ceiling`` shape each host's budget (see the module docstring).
    A host that cannot be connected to at all rarely can a few seconds later, and an operator
    with a mistyped address should hear of it at once: such failures get ``connect_attempts``.
    """

    attempts: int = 8
    connect_attempts: int = 4
    backoff: float = 0.25
    max_backoff: float = 8.0
    max_retry_after: float = 30.0
    reserve: float = 30.0
    refill: float = 0.5
    ceiling: float = 200.0


@dataclass(frozen=True, slots=True)
class RetryStats:
    """What a run's retries amounted to (for reports and the reliability figures)."""

    failures: int = 0
    retries: int = 0
    by_cause: tuple[tuple[str, int], ...] = ()


class _Budget:
    """One host's retry balance (changed under the retrier's lock)."""

    __slots__ = ("balance", "down")

    def __init__(self, reserve: float) -> None:
        self.balance = reserve
        self.down: TransientError | None = None


class Attempts:
    """The tries of one operation: report each failure, and this waits before the next or raises.

    For operations that make progress between failures (a download resumed where it was cut),
    :meth:`progressed` starts the count afresh: a transfer that keeps moving is not given up on.
    """

    def __init__(
        self, retrier: Retrier, key: str, retry_on: tuple[type[ImageprepError], ...], limit: int
    ) -> None:
        self._retrier = retrier
        self._key = key
        self._retry_on = retry_on
        self._limit = max(1, limit)
        self.made = 1

    def failed(self, failure: ImageprepError) -> None:
        """After a failed try: wait for the next one, or raise ``failure`` when there is none."""
        if not isinstance(failure, self._retry_on):
            raise failure
        retrier = self._retrier
        control = retrier.control
        limit = self._limit
        if isinstance(failure, TransientError) and failure.unreachable:
            limit = min(limit, retrier.policy.connect_attempts)
        allowed = (
            self.made < limit
            and retrier.may_retry(self._key, failure)
            and not (control is not None and control.expired)
        )
        if not allowed:
            if self.made == 1:
                raise failure
            raise _with_attempts(failure, self.made) from failure
        retrier.pause(self.made, failure)
        self.made += 1
        if control is not None:
            control.check("retrying")

    def progressed(self) -> None:
        """The operation moved forward since its last failure: count its tries afresh."""
        self._retrier.succeeded(self._key)
        self.made = 1

    def succeeded(self) -> None:
        """The operation is done."""
        self._retrier.succeeded(self._key)


class Retrier:
    """Runs operations under the policy; shared by every thread of a run (thread-safe).

    ``sleep`` is injectable so that tests can check the waits without waiting; by default a wait
    ends early when the run is interrupted. ``draw`` gives the jitter, in [0, 1).
    """

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        control: RunControl | None = None,
        sleep: Callable[[float], None] | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.control = control
        self._sleep = sleep or (control.sleep if control is not None else time.sleep)
        self._draw = draw
        self._lock = threading.Lock()
        self._budgets: dict[str, _Budget] = {}
        self._failures: Counter[str] = Counter()
        self._retries = 0

    # --- the budget ------------------------------------------------------------------------------

    def _budget(self, key: str) -> _Budget:
        budget = self._budgets.get(key)
        if budget is None:
            budget = self._budgets[key] = _Budget(self.policy.reserve)
        return budget

    def succeeded(self, key: str) -> None:
        """Pay a success into ``key``'s budget."""
        with self._lock:
            budget = self._budget(key)
            budget.balance = min(self.policy.ceiling, budget.balance + self.policy.refill)
            budget.down = None

    def may_retry(self, key: str, failure: ImageprepError) -> bool:
        """Whether ``key``'s budget allows a retry after ``failure``; takes the retry's cost from it."""
        asked = isinstance(failure, TransientError) and failure.retry_after is not None
        with self._lock:
            self._failures[_cause(failure)] += 1
            budget = self._budget(key)
            if not asked:
                if budget.balance < 1.0:
                    if isinstance(failure, TransientError) and failure.unreachable:
                        budget.down = failure
                    return False
                budget.balance -= 1.0
            self._retries += 1
            return True

    def check_reachable(self, key: str) -> None:
        """Raise the remembered failure when ``key`` is known to be down (no attempt is made)."""
        budget = self._budgets.get(key)
        failure = budget.down if budget is not None else None
        if failure is not None:
            raise TransientError(failure.message, hint=failure.hint, unreachable=True, cause=failure.cause)

    def stats(self) -> RetryStats:
        """Failures met and retries made so far."""
        with self._lock:
            return RetryStats(
                sum(self._failures.values()), self._retries, tuple(sorted(self._failures.items()))
            )

    # --- waiting ---------------------------------------------------------------------------------

    def delay(self, attempt: int, failure: BaseException) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), within the deadline."""
        if isinstance(failure, TransientError) and failure.retry_after is not None:
            wait = min(max(0.0, failure.retry_after), self.policy.max_retry_after)
        else:
            wait = self._draw() * min(self.policy.max_backoff, self.policy.backoff * 2 ** (attempt - 1))
        return self.control.cap(wait) if self.control is not None else wait

    def pause(self, attempt: int, failure: BaseException) -> None:
        """Wait before the attempt after ``attempt``."""
        self._sleep(self.delay(attempt, failure))

    # --- running ---------------------------------------------------------------------------------

    def attempts(
        self,
        key: str,
        *,
        retry_on: tuple[type[ImageprepError], ...] = (TransientError,),
        limit: int | None = None,
    ) -> Attempts:
        """A counter for the tries of one operation against ``key`` (a registry host)."""
        return Attempts(self, key, retry_on, limit or self.policy.attempts)

    def call(
        self,
        operation: Callable[[], T],
        *,
        key: str,
        retry_on: tuple[type[ImageprepError], ...] = (TransientError,),
        attempts: int | None = None,
    ) -> T:
        """``operation()``, attempted again after any ``retry_on`` failure while policy and budget allow.

        The last failure is raised, its message saying how many attempts were made.
        """
        self.check_reachable(key)
        tries = self.attempts(key, retry_on=retry_on, limit=attempts)
        while True:
            try:
                result = operation()
            except retry_on as failure:
                tries.failed(failure)
                continue
            tries.succeeded()
            return result


def _cause(failure: ImageprepError) -> str:
    """A short name for what failed, for the statistics."""
    if isinstance(failure, TransientError):
        return failure.cause or "transient"
    return type(failure).__name__


def _with_attempts(failure: ImageprepError, made: int) -> ImageprepError:
    """The same error, its message saying how often it was tried."""
    message = f"{failure.message} (gave up after {made} attempts)"
    if isinstance(failure, TransientError):
        return TransientError(
            message,
            hint=failure.hint,
            retry_after=failure.retry_after,
            unreachable=failure.unreachable,
            cause=failure.cause,
        )
    return type(failure)(message, hint=failure.hint)
