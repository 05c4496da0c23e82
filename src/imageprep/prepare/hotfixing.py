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
from imageprep.model.reference import ImageReference
from imageprep.modify.buildah import Buildah
from imageprep.modify.recipes import modify
from imageprep.modify.request import ModifyRequest
from imageprep.modify.rpms import find_rpms
from imageprep.prepare.localstorage import fetch_into_storage
from imageprep.registry.session import RegistrySession

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


def _hotfix_one(
    image: str, rpms_path: Path, tag: str, buildah: Buildah, session: RegistrySession | None
) -> HotfixResult:
    try:
        name = local_image_name(image)
        if not buildah.image_exists(name):
            if session is None:
                raise ModificationError(f"{name} is not in local container storage")
            reference = ImageReference.parse(name)
            LOG.info("%s is not in local storage; fetching it from %s", name, reference.registry)
            fetch_into_storage(
                session.client(reference.registry), reference.repository, reference.reference, buildah, name
            )
        request = ModifyRequest(
            source_image=name,
            append_tag=f"-{tag}",
            variables={"tasks_from": "rpm_install.yml", "rpms_path": str(rpms_path)},
        )
        return HotfixResult(image, result=modify(buildah, request))
    except ImageprepError as exc:
        return HotfixResult(image, error=str(exc))


def hotfix_images(
    images: Sequence[str],
    rpms_path: Path,
    buildah: Buildah,
    *,
    tag: str = DEFAULT_HOTFIX_TAG,
    session: RegistrySession | None = None,
) -> list[HotfixResult]:
    """Hotfix every image; a bad RPM directory fails them all at once, before any build."""
    try:
        find_rpms(rpms_path)
    except ModificationError as exc:
        raise ModificationError(f"cannot hotfix {', '.join(images)}: {exc.message}", hint=exc.hint) from exc
    return [_hotfix_one(image, rpms_path, tag, buildah, session) for image in images]
