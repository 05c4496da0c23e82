"""``list``, ``show`` and ``delete``: the local registry's images, or any registry's.

Without ``--registry-url`` these read the image-serve tree on disk directly: that is the local
registry, and it works whether or not a web server serves it right now. An image whose reference
names another registry, or a ``--registry-url``, is read over HTTP with the session's logins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from imageprep.model.errors import ConfigurationError, ImageServeError, NotFoundError
from imageprep.model.location import Location
from imageprep.model.platforms import host_architecture
from imageprep.model.reference import ImageReference
from imageprep.registry.client import RegistryClient
from imageprep.registry.credentials import Credential, normalise_host
from imageprep.settings import Settings
from imageprep.transfer.listing import ImageDetails, ImageSummary, list_images, show_image
from imageprep.transfer.store import ImageStore
from imageprep.usecases.locations import locate
from imageprep.usecases.session import Session

if TYPE_CHECKING:
    from imageprep.imageserve.manage import DeleteResult


@dataclass(frozen=True, slots=True)
class Listing:
    """Every tag of a store, and the name its images go by (``HOST:PORT``)."""

    shown_as: str
    images: tuple[ImageSummary, ...]


@dataclass(frozen=True, slots=True)
class Deletion:
    """What ``delete`` removed: from the tree (``tree`` says what exactly), or from a registry."""

    name: str
    digest: str | None = None
    tree: DeleteResult | None = None


def parse_image(text: str) -> ImageReference:
    """An image as the commands take it: ``[HOST:PORT/]NAMESPACE/NAME[:TAG|@DIGEST]``."""
    reference = ImageReference.parse(text.strip())
    if not reference.domain and "/" not in reference.path:
        raise ConfigurationError(
            f"image {text!r} names no namespace",
            hint="write it as NAMESPACE/NAME:TAG, e.g. tripleomaster/centos-binary-nova-api:current-tripleo",
        )
    return reference


def _session(settings: Settings, location: Location) -> Session:
    logins: dict[str, Credential] = {}
    if settings.login is not None and not location.local:
        logins[normalise_host(location.host)] = settings.login
    return Session(settings, credentials=logins)


def _store(session: Session, location: Location) -> ImageStore:
    if location.local:
        root = session.settings.image_serve_root
        if not root.is_dir():
            raise ImageServeError(
                f"there is no image-serve tree at {root}",
                hint="nothing was pushed to the local registry yet, or pass --image-serve-root DIR",
            )
    return session.store(location)


def list_store(settings: Settings, *, registry_url: str | None = None) -> Listing:
    """Every tag of the local registry (or of ``registry_url``), sorted."""
    location = locate(settings, registry_url, None)
    with _session(settings, location) as session:
        images = list_images(_store(session, location))
    return Listing(location.host, tuple(images))


def show(settings: Settings, image: str, *, registry_url: str | None = None) -> ImageDetails:
    """One image's details; its name as the location knows it."""
    reference = parse_image(image)
    location = locate(settings, registry_url, reference.domain or None)
    with _session(settings, location) as session, _local_not_found(session, location, reference):
        store = _store(session, location)
        details = show_image(store, reference.path, reference.reference, host_architecture())
    return details if store.location == location.host else _renamed(details, store.location, location.host)


@contextmanager
def _local_not_found(session: Session, location: Location, reference: ImageReference) -> Iterator[None]:
    """An image missing from the tree is the local registry's error (exit 6), named as nodes name it."""
    try:
        yield
    except NotFoundError as missing:
        if not location.local:
            raise
        separator = "@" if reference.digest else ":"
        name = f"{location.host}/{reference.path}{separator}{reference.reference}"
        raise ImageServeError(
            f"{name} is not in the local registry (image-serve tree {session.settings.image_serve_root})",
            hint="`imageprep list` shows what is there",
        ) from missing


def _renamed(details: ImageDetails, old: str, new: str) -> ImageDetails:
    return replace(details, name=details.name.replace(old, new, 1))


def delete(
    settings: Settings, image: str, *, registry_url: str | None = None, confirm: Callable[[str], bool]
) -> Deletion | None:
    """Delete one tag (``None`` when ``confirm`` says no).

    From the tree: the tag and whatever only it used. From a registry: the manifest the tag points
    at (a registry deletes by digest, so every tag of that manifest goes), where it allows it.
    """
    reference = parse_image(image)
    if reference.digest or not reference.tag:
        raise ConfigurationError(f"delete needs a tag: {image!r}")
    location = locate(settings, registry_url, reference.domain or None)
    name = f"{location.host}/{reference.path}:{reference.tag}"
    with _session(settings, location) as session, _local_not_found(session, location, reference):
        store = _store(session, location)
        if location.local:
            from imageprep.imageserve.manage import delete_image

            if not confirm(name):
                return None
            return Deletion(name, tree=delete_image(session.tree(), reference.path, reference.tag))
        assert isinstance(store, RegistryClient)  # a registry location is always a registry client
        digest = store.manifest_digest(reference.repository, reference.tag)
        if digest is None:
            raise NotFoundError(f"{name} does not exist")
        if not confirm(name):
            return None
        store.delete_manifest(reference.repository, digest)
        return Deletion(name, digest=digest)
