"""Choosing the images an entry covers: service filter first, then includes over excludes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from imageprep.catalogue.template import CatalogueImage


def _matches(patterns: Sequence[re.Pattern[str]], reference: str) -> bool:
    return any(pattern.search(reference) for pattern in patterns)


def select_images(
    images: Iterable[CatalogueImage],
    *,
    services: frozenset[str] | None,
    includes: Sequence[re.Pattern[str]],
    excludes: Sequence[re.Pattern[str]],
) -> list[CatalogueImage]:
    """Images to keep, in catalogue order.

    ``services`` is None when no roles file was given (no service filter); otherwise an image is
    kept only when one of its services is enabled, so an image with no services is dropped.
    Patterns are regular-expression searches over the full reference; when ``includes`` is given
    it decides alone and ``excludes`` is not consulted.
    """
    kept = []
    for image in images:
        if services is not None and not (image.services & services):
            continue
        if includes:
            if not _matches(includes, image.reference):
                continue
        elif _matches(excludes, image.reference):
            continue
        kept.append(image)
    return kept
