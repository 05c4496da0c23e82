"""Work asked ahead of need: its requests let every other request to the same host go first.

An image's attachments are looked up while the image itself is copied, so that their answers are
ready when the copy ends; the copy does not wait on them. Run through :func:`deferred`, such work
is marked for the connection pool, which hands a busy host's next free connection to the other
requests first. A context variable rather than a parameter: the mark is about scheduling only,
and the image-store interface it would otherwise be threaded through stays about images.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_DEFERRED: ContextVar[bool] = ContextVar("imageprep_deferred", default=False)


def deferred(call: Callable[P, R]) -> Callable[P, R]:
    """``call``, with every request it makes marked as asked ahead of need."""

    @functools.wraps(call)
    def run_deferred(*args: P.args, **kwargs: P.kwargs) -> R:
        token = _DEFERRED.set(True)
        try:
            return call(*args, **kwargs)
        finally:
            _DEFERRED.reset(token)

    return run_deferred


def is_deferred() -> bool:
    """Whether the running work was asked ahead of need (see :func:`deferred`)."""
    return _DEFERRED.get()
