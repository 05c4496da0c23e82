"""Prepare's modify path: pull, modify, push every image of an entry with ``modify_role``.

The destination tag carries ``modify_append_tag``; when the destination already has it, the
image is not rebuilt (the documented way to force a rebuild is a new append tag). Images are
built one at a time: builds are heavy on disk and CPU, and buildah serialises on its storage lock
anyway. One image failing never stops the others; it is reported like a failed copy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from imageprep.model.errors import ImageprepError
from imageprep.model.reference import ImageReference
from imageprep.modify.buildah import Buildah, BuildahSettings
from imageprep.modify.recipes import check_request, modify
from imageprep.modify.request import ModifyRequest
from imageprep.prepare.evaluate import PreparedImage
from imageprep.prepare.localstorage import fetch_into_storage, local_name, send_from_storage
from imageprep.registry.session import RegistrySession
from imageprep.transfer.report import ImageResult, Outcome
from imageprep.transfer.store import ImageStore

LOG = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModifySettings:
    """How images are modified: buildah's storage, where Ansible roles are, scratch space.

    ``keep_local_images`` leaves the pulled and the modified image in local storage (for
    inspection); by default both are removed once pushed, like the original's full cleanup.
    """

    buildah: BuildahSettings = field(default_factory=BuildahSettings)
    roles_path: tuple[Path, ...] = ()
    work_dir: Path | None = None
    keep_local_images: bool = False


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
        target_image=f"{image.destination}/{base.path}:{base.tag}",
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
    image: PreparedImage,
    session: RegistrySession,
    buildah: Buildah,
    settings: ModifySettings,
    destination: ImageStore | None = None,
) -> ImageResult:
    """Pull, modify and push one image, unless its modified tag is already at the destination.

    ``destination`` is the store behind ``image.destination`` (default: that registry over HTTP).
    """
    assert image.destination is not None
    started = time.monotonic()
    source = image.pull_from
    target = image.target
    destination = destination if destination is not None else session.client(image.destination)
    destination_name = f"{image.destination}/{target.path}:{target.reference}"
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
        made: list[str] = []
        # An image the operator already had under that name is refreshed but not removed after.
        had_source = buildah.image_exists(source_name)
        try:
            fetch_into_storage(
                session.client(source.registry),
                source.repository,
                source.reference,
                buildah,
                source_name,
                work_dir=settings.work_dir,
            )
            if not had_source:
                made.append(source_name)
            result_name = modify(buildah, request, roles_path=settings.roles_path)
            made.append(result_name)
            pushed = send_from_storage(
                buildah,
                result_name,
                destination,
                target.repository,
                target.reference,
                work_dir=settings.work_dir,
            )
        finally:
            if not settings.keep_local_images:
                for name in reversed(made):  # the modified image first, then its base
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
    session: RegistrySession,
    settings: ModifySettings | None = None,
    buildah: Buildah | None = None,
    store_for: Callable[[PreparedImage], ImageStore] | None = None,
) -> list[ImageResult]:
    """Modify every image marked ``modified`` that has a destination (each destination once).

    ``store_for`` gives the store an image is pushed into (default: its destination registry).
    """
    settings = settings or ModifySettings()
    builder = buildah or Buildah(settings.buildah)
    results: list[ImageResult] = []
    seen: set[tuple[str, str]] = set()
    for image in images:
        if not image.modified or not image.destination:
            continue
        key = (image.destination, str(image.target))
        if key in seen:
            continue
        seen.add(key)
        store = store_for(image) if store_for is not None else None
        result = modify_one(image, session, builder, settings, store)
        LOG.info("%s -> %s: %s", result.source, result.destination, result.outcome.value)
        results.append(result)
    return results
