"""Evaluating one ContainerImagePrepare entry into prepared images and their parameters."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imageprep.catalogue.entries import PrepareEntry
from imageprep.catalogue.selection import select_images
from imageprep.catalogue.template import CatalogueImage, CatalogueTemplate
from imageprep.catalogue.variables import template_variables
from imageprep.model.errors import ConfigurationError, ImageprepError, TransientError
from imageprep.model.location import Location
from imageprep.model.reference import ImageReference
from imageprep.prepare.inspection import ImageFacts, ImageInspector
from imageprep.prepare.tags import discover_tag, inspect_all

LOG = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EvaluationContext:
    """Everything an entry is evaluated against, shared by all entries of a run."""

    template: CatalogueTemplate
    template_defaults: Mapping[str, Any]
    services: frozenset[str] | None
    mechanism_drivers: Any
    default_append_tag: str
    inspector: ImageInspector | None = None
    concurrency: int = 8
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """One image an entry selected: where it comes from, where heat will find it."""

    entry: PrepareEntry
    catalogue: CatalogueImage
    source: ImageReference
    target: ImageReference
    destination: Location | None
    modified: bool
    append_tag: str

    @property
    def params(self) -> tuple[str, ...]:
        """Heat parameters that receive :attr:`target`."""
        return self.catalogue.params

    @property
    def pull_from(self) -> ImageReference:
        """Where to read the source image."""
        return pull_location(self.entry, self.source)


def pull_location(entry: PrepareEntry, source: ImageReference) -> ImageReference:
    """Where an entry's image is read from: ``pull_source`` replaces the reference's host."""
    return source.with_registry(entry.pull_source) if entry.pull_source else source


def _parse_reference(image: CatalogueImage, entry: PrepareEntry) -> ImageReference:
    try:
        return ImageReference.parse(image.reference)
    except ImageprepError as exc:
        raise ConfigurationError(
            f"{entry.origin}: the `set` values make an invalid image reference "
            f"{image.reference!r}: {exc.message}"
        ) from exc


def _is_modified(
    entry: PrepareEntry, image: CatalogueImage, facts: ImageFacts | None, warned: list[bool]
) -> bool:
    if entry.modify_role is None:
        return False
    if entry.modify_only_with_source is not None and image.source not in entry.modify_only_with_source:
        return False
    if entry.modify_only_with_labels is not None:
        if facts is None:
            if not warned:
                LOG.warning(
                    "%s: modify_only_with_labels needs the images' labels, which a dry run without "
                    "registry access cannot read; assuming every image of this entry is modified",
                    entry.origin,
                )
                warned.append(True)
            return True
        return any(label in facts.labels for label in entry.modify_only_with_labels)
    return True


def _facts_for(
    entry: PrepareEntry, references: Sequence[ImageReference], context: EvaluationContext
) -> list[ImageFacts] | None:
    needs_facts = entry.tag_from_label is not None or (
        entry.modify_role is not None and entry.modify_only_with_labels is not None
    )
    if not needs_facts or not references:
        return None
    if context.inspector is None:
        if entry.tag_from_label is not None:
            LOG.warning(
                "%s: dry run without registry access: tag_from_label %r is not evaluated, the template "
                "tags are kept",
                entry.origin,
                entry.tag_from_label.text,
            )
        return None
    try:
        return inspect_all(context.inspector, references, context.concurrency)
    except TransientError as error:
        if not context.dry_run:
            raise
        # A preview should not fail because a registry is out of reach; a real run must.
        LOG.warning(
            "%s: dry run: cannot reach the source registry (%s); the template tags are kept",
            entry.origin,
            error.message,
        )
        return None


def _warn_when_includes_match_nothing(entry: PrepareEntry, images: Sequence[CatalogueImage]) -> None:
    # Checked before the service filter: a role that does not need the images is no mistake,
    # a pattern that names no image at all most likely is.
    if entry.includes and not any(
        pattern.search(image.reference) for image in images for pattern in entry.includes
    ):
        LOG.warning(
            "%s: includes %s match no image of the catalogue, so this entry prepares nothing",
            entry.origin,
            ", ".join(repr(pattern.pattern) for pattern in entry.includes),
        )


def evaluate_entry(entry: PrepareEntry, context: EvaluationContext) -> list[PreparedImage]:
    """The images ``entry`` covers, each with its final reference."""
    if entry.modify_role is not None and not entry.pushes:
        raise ConfigurationError(
            f"{entry.origin}: modify_role needs a push_destination",
            hint="modified images have to be pushed somewhere the deployment can pull them from; "
            "add `push_destination: true` for the local registry",
        )
    variables = template_variables(context.template_defaults, entry.set_values, context.mechanism_drivers)
    rendered = context.template.render(variables, entry.origin)
    _warn_when_includes_match_nothing(entry, rendered)
    selected = select_images(
        rendered, services=context.services, includes=entry.includes, excludes=entry.excludes
    )
    sources = [_parse_reference(image, entry) for image in selected]
    pulls = [pull_location(entry, source) for source in sources]
    facts = _facts_for(entry, pulls, context)
    destination = entry.push_destination
    append_tag = (
        entry.modify_append_tag if entry.modify_append_tag is not None else context.default_append_tag
    )
    warned: list[bool] = []
    prepared = []
    for position, (image, source) in enumerate(zip(selected, sources, strict=True)):
        image_facts = facts[position] if facts is not None else None
        if entry.tag_from_label is not None and image_facts is not None:
            source = source.with_tag(discover_tag(pulls[position], entry.tag_from_label, image_facts))
        modified = _is_modified(entry, image, image_facts, warned)
        target = source.with_registry(destination.host) if destination else source
        if modified:
            target = target.with_tag(f"{target.tag or 'latest'}{append_tag}")
        prepared.append(
            PreparedImage(
                entry=entry,
                catalogue=image,
                source=source,
                target=target,
                destination=destination,
                modified=modified,
                append_tag=append_tag if modified else "",
            )
        )
    return prepared
