"""Tag discovery: the versioned tag an image's labels point at (``tag_from_label``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from imageprep.catalogue.labeltemplate import LabelTemplate, MissingLabel
from imageprep.model.control import wait_interruptibly
from imageprep.model.errors import NotFoundError, RegistryError
from imageprep.model.reference import TAG, ImageReference
from imageprep.prepare.inspection import ImageFacts, ImageInspector

LOG = logging.getLogger(__name__)


def discover_tag(reference: ImageReference, template: LabelTemplate, facts: ImageFacts) -> str:
    """The tag for ``reference`` from its labels, or its own tag when a label is missing."""
    fallback = reference.tag or "latest"
    try:
        tag = template.render(facts.labels)
    except MissingLabel as missing:
        available = ", ".join(sorted(facts.labels)) or "none"
        LOG.warning(
            "%s has no label %r (its labels: %s); keeping tag %s",
            reference,
            missing.label,
            available,
            fallback,
        )
        tag = fallback
    if not TAG.fullmatch(tag):
        # Labels come from the registry: a value like "../x" must not become a path or a parameter.
        raise RegistryError(
            f"{reference}: labels {template.text!r} give {tag[:200]!r}, which is not a valid tag"
        )
    if tag not in facts.tags:
        shown = ", ".join(facts.tags[-20:]) or "none"
        raise NotFoundError(
            f"{reference}: the tag {tag!r} found from labels {template.text!r} does not exist in "
            f"{reference.name}",
            hint=f"available tags: {shown}",
        )
    return tag


def inspect_all(
    inspector: ImageInspector, references: Sequence[ImageReference], concurrency: int
) -> list[ImageFacts]:
    """Inspect every reference concurrently, in order; the first error is raised."""
    if not references:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(references)))) as pool:
        futures = [pool.submit(inspector.inspect, reference) for reference in references]
        wait_interruptibly(futures)
        return [future.result() for future in futures]
