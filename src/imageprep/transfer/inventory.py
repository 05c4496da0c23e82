"""Which repositories a destination store already has, asked once per run.

Copying into an empty registry is the common first run. Asking the destination, image by image,
whether it has the tag and each blob costs a request per question and, on a registry, noticeably
more of the registry's CPU than the bytes do. A store that can list its repositories in a few
requests (the registry catalog) answers every one of those questions for a repository it does not
have: nothing is there. Stores that cannot list cheaply (a catalog that needs rights we lack) are
asked image by image as before, so the answer is only ever an optimisation, never needed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from typing import Protocol, runtime_checkable

from imageprep.model.errors import ImageprepError
from imageprep.transfer.store import ImageStore

_log = logging.getLogger(__name__)


@runtime_checkable
class ListsRepositories(Protocol):
    """An image store that can name all its repositories."""

    def repositories(self) -> Collection[str] | None:
        """Every repository the store holds, or ``None`` when it cannot tell cheaply."""
        ...


class DestinationInventory:
    """Thread-safe, per-run memory of which repositories each destination store held at the start.

    The snapshot is taken before this run writes anything, so "absent" means "absent before this
    run": anything this run puts there is tracked by the blob ledger instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listed: dict[str, frozenset[str] | None] = {}

    def lacks(self, store: ImageStore, repository: str) -> bool:
        """Whether ``store`` certainly had no ``repository`` when the run started."""
        with self._lock:
            if store.location not in self._listed:
                self._listed[store.location] = _list(store)
            listed = self._listed[store.location]
        return listed is not None and repository not in listed


def _list(store: ImageStore) -> frozenset[str] | None:
    if not isinstance(store, ListsRepositories):
        return None
    try:
        listed = store.repositories()
    except ImageprepError as exc:
        _log.debug("cannot list the repositories of %s (%s); asking image by image", store.location, exc)
        return None
    return None if listed is None else frozenset(listed)
