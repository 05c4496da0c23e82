"""Compare what a command printed with the output a documentation example shows.

Rules (also told to readers in docs/index.md): the shown lines must appear in the output as
consecutive lines, in order; a line that is only ``...`` stands for any number of lines (so a
block starting with ``...`` may skip the first lines, one ending with it may skip the last ones),
and ``...`` inside a line stands for any text on that line. Trailing spaces do not count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

ELLIPSIS = "..."


def _line_pattern(expected: str) -> re.Pattern[str]:
    pieces = expected.rstrip().split(ELLIPSIS)
    return re.compile(".*?".join(re.escape(piece) for piece in pieces) + r"\Z", re.DOTALL)


def _chunks(expected: Sequence[str]) -> list[list[re.Pattern[str]]]:
    chunks: list[list[re.Pattern[str]]] = [[]]
    for line in expected:
        if line.strip() == ELLIPSIS:
            chunks.append([])
        else:
            chunks[-1].append(_line_pattern(line))
    return chunks


def _chunk_at(chunk: list[re.Pattern[str]], actual: Sequence[str], start: int) -> bool:
    if start + len(chunk) > len(actual):
        return False
    return all(pattern.match(actual[start + offset]) for offset, pattern in enumerate(chunk))


def output_matches(expected: Sequence[str], actual_text: str) -> bool:
    """Whether ``actual_text`` is what the example's ``expected`` lines show."""
    actual = [line.rstrip() for line in actual_text.splitlines()]
    expected = list(expected)
    while expected and not expected[-1].strip():
        expected.pop()  # a blank line before the closing fence is layout, not output
    chunks = _chunks(expected)
    # chunks[0] is anchored at the start, chunks[-1] at the end (each may be empty).
    first, middle, last = chunks[0], chunks[1:-1], chunks[-1] if len(chunks) > 1 else None
    if not _chunk_at(first, actual, 0):
        return False
    position = len(first)
    if last is None:
        return position == len(actual)
    for chunk in middle:
        while position <= len(actual) and not _chunk_at(chunk, actual, position):
            position += 1
        if position > len(actual):
            return False
        position += len(chunk)
    start = len(actual) - len(last)
    return start >= position and _chunk_at(last, actual, start)
