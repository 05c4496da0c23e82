"""What evaluation needs to know about a source image, behind an interface.

Tag discovery and the label filter of modifications read an image's labels and its repository's
tags. The registry client provides them for real runs; a dry run without registry access
provides nothing, and evaluation then keeps the template tags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from imageprep.model.reference import ImageReference


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """Labels of one image (under its template tag) and every tag of its repository."""

    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    tags: tuple[str, ...] = ()


class ImageInspector(Protocol):
    """Reads :class:`ImageFacts` from wherever the source image lives."""

    def inspect(self, reference: ImageReference) -> ImageFacts:
        """Facts of ``reference``; raises an ``ImageprepError`` when it cannot be read."""
        ...
