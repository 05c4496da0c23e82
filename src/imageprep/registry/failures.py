"""Reading a library exception chain: its most telling message, and whether a kind of error caused it."""

from __future__ import annotations


def describe(exc: BaseException) -> str:
    """A one-line cause, from the innermost exception that says something."""
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        if str(cause):
            text = str(cause)
        cause = cause.__cause__ or cause.__context__
    return text


def caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``exc`` or anything in its cause/context chain is a ``kind``."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, kind):
            return True
        current = current.__cause__ or current.__context__
    return False
