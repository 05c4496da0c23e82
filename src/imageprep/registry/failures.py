"""Reading a library exception chain: its most telling message, and whether a kind of error caused it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what caused it (or what it was raised while handling), and so on inwards."""
    current: BaseException | None = exc
    while current is not None:
        yield current
        current = current.__cause__ or current.__context__


def describe(exc: BaseException) -> str:
    """A one-line cause, from the innermost exception that says something."""
    text = str(exc) or type(exc).__name__
    for cause in itertools.islice(exception_chain(exc), 1, None):
        if str(cause):
            text = str(cause)
    return text


def caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``exc`` or anything in its cause/context chain is a ``kind``."""
    return any(isinstance(current, kind) for current in exception_chain(exc))
