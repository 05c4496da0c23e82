"""Which blobs this run has put where, per destination store, and which are being put right now.

A blob shared by many images (a base layer) must cross the network once per destination store;
after that every other repository of the store mounts it. Images run concurrently, so the first
image to need a blob claims it and the others wait for that one upload instead of starting their
own. Only a thread that is already copying ever holds a claim, so a waiter always waits on
running work and the wait cannot deadlock the pool.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass

_Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Claim:
    """The caller owns the upload now and must end it with ``finish`` or ``abandon``."""

    key: _Key
    future: Future[str]


@dataclass(frozen=True, slots=True)
class Known:
    """This run already put the blob in ``repository`` of the same store."""

    repository: str


@dataclass(frozen=True, slots=True)
class InFlight:
    """Another image is uploading the blob; its future yields the repository once it is there."""

    future: Future[str]


class BlobLedger:
    """Thread-safe record of blob uploads for one run, keyed by (store location, digest)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[_Key, str] = {}
        self._in_flight: dict[_Key, Future[str]] = {}

    def claim(self, store: str, digest: str) -> Claim | Known | InFlight:
        """Where the blob stands; when nobody has it or is fetching it, the caller gets the claim."""
        key = (store, digest)
        with self._lock:
            repository = self._known.get(key)
            if repository is not None:
                return Known(repository)
            future = self._in_flight.get(key)
            if future is not None:
                return InFlight(future)
            future = Future()
            self._in_flight[key] = future
            return Claim(key, future)

    def known(self, store: str, digest: str) -> str | None:
        """A repository of ``store`` this run already put the blob in, if any (no claim taken)."""
        with self._lock:
            return self._known.get((store, digest))

    def record(self, store: str, digest: str, repository: str) -> None:
        """Remember that ``repository`` of ``store`` holds the blob (found there or mounted)."""
        with self._lock:
            self._known.setdefault((store, digest), repository)

    def finish(self, claim: Claim, repository: str) -> None:
        """The claimed upload landed in ``repository``; wake the waiters."""
        with self._lock:
            self._known.setdefault(claim.key, repository)
            del self._in_flight[claim.key]
        claim.future.set_result(repository)

    def abandon(self, claim: Claim, error: BaseException) -> None:
        """The claimed upload failed; waiters are told and may try themselves."""
        with self._lock:
            del self._in_flight[claim.key]
        claim.future.set_exception(error)
