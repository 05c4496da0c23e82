"""Prepare's modify path: pull, modify, push every image of an entry with ``modify_role``.

The destination tag carries ``modify_append_tag``; when the destination already has it, the
image is not rebuilt (the documented way to force a rebuild is a new append tag). Images are
built one at a time: builds are heavy on disk and CPU, and buildah serialises on its storage lock
anyway. One image failing never stops the others; it is reported like a failed copy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from imageprep.model.errors import ImageprepError
from imageprep.model.location import Location
from imageprep.model.reference import ImageReference
from imageprep.modify.buildah import Buildah, BuildahSettings
from imageprep.modify.recipes import check_request, modify
from imageprep.modify.request import ModifyRequest
from imageprep.prepare.evaluate import PreparedImage
from imageprep.transfer.report import ImageResult, Outcome
from imageprep.usecases.cleanup import Cleanup
from imageprep.usecases.localstorage import fetch_into_storage, local_name, send_from_storage
from imageprep.usecases.session import Session

LOG = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModifySettings:
    """How images are modified: buildah's storage, where Ansible roles are, scratch space, and
    which of the images pulled and built stay in local storage (``cleanup``)."""

    buildah: BuildahSettings = field(default_factory=BuildahSettings)
    roles_path: tuple[Path, ...] = ()
    work_dir: Path | None = None
    cleanup: Cleanup = Cleanup.FULL


def _unmodified_target(image: PreparedImage) -> ImageReference:
    tag = image.target.tag or "latest"
    if image.append_tag and tag.endswith(image.append_tag):
        tag = tag[: -len(image.append_tag)] or "latest"
    return image.target.with_tag(tag)


def _request(image: PreparedImage, source_name: str) -> ModifyRequest:
    assert image.destination is not None and image.entry.modify_role is not None
    base = _unmodified_target(image)
    return ModifyRequest(
        source_image=source_name,
        append_tag=image.append_tag,
        role=image.entry.modify_role,
        variables=dict(image.entry.modify_vars or {}),
        target_image=f"{image.destination.host}/{base.path}:{base.tag}",
    )


def check_modifiable(images: Sequence[PreparedImage]) -> None:
    """Fail before anything is copied when an entry's modification cannot work (bad inputs, no tool).

    Checked once per entry, on its first modified image: the inputs are the entry's, not the image's.
    """
    checked: set[int] = set()
    for image in images:
        if image.modified and image.destination and id(image.entry) not in checked:
            checked.add(id(image.entry))
            check_request(_request(image, local_name(image.pull_from)))


def modify_one(
    image: PreparedImage, session: Session, buildah: Buildah, settings: ModifySettings
) -> ImageResult:
    """Pull, modify and push one image, unless its modified tag is already at the destination."""
    assert image.destination is not None
    started = time.monotonic()
    source = image.pull_from
    target = image.target
    destination = session.store(image.destination)
    destination_name = f"{image.destination.host}/{target.path}:{target.reference}"
    try:
        present = destination.manifest_digest(target.repository, target.reference)
        if present is not None:
            LOG.info("%s is already there; not modifying %s again", destination_name, source)
            return ImageResult(
                str(source),
                destination_name,
                Outcome.SKIPPED,
                digest=present,
                seconds=time.monotonic() - started,
            )
        source_name = local_name(source)
        request = _request(image, source_name)
        check_request(request)  # a bad rpms_path fails before a large image is pulled
        made: list[tuple[str, bool]] = []  # (name, whether it is the modified image)
        # An image the operator already had under that name is refreshed but not removed after.
        had_source = buildah.image_exists(source_name)
        try:
            fetch_into_storage(
                session.store(Location.registry(source.registry)),
                source.repository,
                source.reference,
                buildah,
                source_name,
                retrier=session.retrier,
                work_dir=settings.work_dir,
            )
            if not had_source:
                made.append((source_name, False))
            result_name = modify(buildah, request, roles_path=settings.roles_path)
            made.append((result_name, True))
            pushed = send_from_storage(
                buildah,
                result_name,
                destination,
                target.repository,
                target.reference,
                retrier=session.retrier,
                work_dir=settings.work_dir,
            )
        finally:
            for name, modified in reversed(made):  # the modified image first, then its base
                if settings.cleanup.removes(modified=modified):
                    buildah.remove_image(name)
        return replace(
            pushed, source=str(source), destination=destination_name, seconds=time.monotonic() - started
        )
    except ImageprepError as exc:
        return ImageResult(
            str(source), destination_name, Outcome.FAILED, error=str(exc), seconds=time.monotonic() - started
        )


def modify_prepared(
    images: Sequence[PreparedImage],
    session: Session,
    settings: ModifySettings | None = None,
    buildah: Buildah | None = None,
) -> list[ImageResult]:
    """Modify every image marked ``modified`` that has a destination (each destination once)."""
    settings = settings or ModifySettings()
    builder = buildah or Buildah(settings.buildah)
    results: list[ImageResult] = []
    seen: set[tuple[Location, str]] = set()
    for image in images:
        if not image.modified or not image.destination:
            continue
        key = (image.destination, str(image.target))
        if key in seen:
            continue
        seen.add(key)
        result = modify_one(image, session, builder, settings)
        LOG.info("%s -> %s: %s", result.source, result.destination, result.outcome.value)
        results.append(result)
    return results
