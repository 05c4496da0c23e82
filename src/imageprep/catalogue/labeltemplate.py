"""``tag_from_label`` values: a label name, or a template of label names like ``{version}-{release}``."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass

_FIELD = re.compile(r"[A-Za-z0-9_.\-/]+")


class MissingLabel(LookupError):
    """The image lacks a label the template needs."""

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.label = label


@dataclass(frozen=True, slots=True)
class LabelTemplate:
    """Literal text and label names, in order: ``("", "version"), ("-", "release")``."""

    text: str
    pieces: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, text: str) -> LabelTemplate:
        """Parse; raises ``ValueError`` with an operator-readable reason when malformed."""
        if not text:
            raise ValueError("it is empty")
        if "{" not in text and "}" not in text:
            return cls(text, (("", text),))
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ValueError(f"unbalanced braces ({exc})") from exc
        pieces: list[tuple[str, str | None]] = []
        for literal, field, spec, conversion in parsed:
            if field is not None and not _FIELD.fullmatch(field):
                raise ValueError(f"{{{field}}} is not a label name")
            if spec or conversion:
                raise ValueError(f"format specifications are not supported ({{{field}:{spec}}})")
            pieces.append((literal, field))
        if not any(field for _, field in pieces):
            raise ValueError("it names no label")
        return cls(text, tuple(pieces))

    @property
    def labels(self) -> tuple[str, ...]:
        """The label names the template reads."""
        return tuple(field for _, field in self.pieces if field)

    def render(self, labels: Mapping[str, str]) -> str:
        """The tag for an image with these labels; raises :class:`MissingLabel`."""
        out = []
        for literal, field in self.pieces:
            out.append(literal)
            if field is not None:
                if field not in labels or labels[field] is None:
                    raise MissingLabel(field)
                out.append(str(labels[field]))
        return "".join(out)
