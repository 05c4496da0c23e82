"""``hotfix``: install a directory of RPMs into images, each result kept in local storage.

Each image is hotfixed on its own: one failing (not found, RPM conflict) never stops the
others. An image not yet in local storage is fetched from its registry first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from imageprep.model.errors import ImageprepError, ModificationError
from imageprep.model.location import Location
from imageprep.model.reference import ImageReference
from imageprep.modify.buildah import Buildah
from imageprep.modify.recipes import modify
from imageprep.modify.request import ModifyRequest
from imageprep.modify.rpms import find_rpms
from imageprep.settings import Settings
from imageprep.usecases.localstorage import fetch_into_storage
from imageprep.usecases.session import Session

LOG = logging.getLogger(__name__)
DEFAULT_HOTFIX_TAG = "latest"


@dataclass(frozen=True, slots=True)
class HotfixResult:
    """One image: the local name of its hotfixed copy, or why there is none."""

    image: str
    result: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the image was hotfixed."""
        return self.error is None


def local_image_name(image: str) -> str:
    """The image as given, with ``docker://`` dropped and the implicit ``latest`` tag written out."""
    reference = ImageReference.parse(image)
    if reference.digest:
        raise ModificationError(
            f"{image} is pinned by digest; hotfix needs a tagged image to append the tag to"
        )
    return f"{reference.name}:{reference.tag or 'latest'}"


def _hotfix_one(image: str, rpms_path: Path, tag: str, buildah: Buildah, session: Session) -> HotfixResult:
    try:
        name = local_image_name(image)
        if not buildah.image_exists(name):
            reference = ImageReference.parse(name)
            LOG.info("%s is not in local storage; fetching it from %s", name, reference.registry)
            fetch_into_storage(
                session.store(Location.registry(reference.registry)),
                reference.repository,
                reference.reference,
                buildah,
                name,
                retrier=session.retrier,
            )
        request = ModifyRequest(
            source_image=name,
            append_tag=f"-{tag}",
            variables={"tasks_from": "rpm_install.yml", "rpms_path": str(rpms_path)},
        )
        return HotfixResult(image, result=modify(buildah, request))
    except ImageprepError as exc:
        return HotfixResult(image, error=str(exc))


def hotfix(
    images: Sequence[str],
    rpms_path: Path,
    settings: Settings,
    *,
    tag: str = DEFAULT_HOTFIX_TAG,
    buildah: Buildah | None = None,
) -> list[HotfixResult]:
    """Hotfix every image (fetched from its registry when not in local storage); one failing never
    stops the others. A bad RPM directory fails them all at once, before any build."""
    try:
        find_rpms(rpms_path)
    except ModificationError as exc:
        raise ModificationError(f"cannot hotfix {', '.join(images)}: {exc.message}", hint=exc.hint) from exc
    builder = buildah or Buildah()
    with Session(settings) as session:
        return [_hotfix_one(image, rpms_path, tag, builder, session) for image in images]
