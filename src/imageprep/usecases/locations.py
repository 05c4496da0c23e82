"""Which location a command means: the local registry (by any of its names) or another registry.

The local registry has one name everywhere: the address ``prepare`` published the tree's images
under (``LocalContainerRegistry``:8787, recorded in the tree), else this host's ctlplane name, else
``localhost:8787``. ``list`` and ``show`` print images under it, and a reference naming it (or one
of the local registry's other names) is read from the tree, never over HTTP.
"""

from __future__ import annotations

from imageprep.imageserve.reader import TreeReader
from imageprep.model.location import Location
from imageprep.prepare.localregistry import FALLBACK, local_registry_address
from imageprep.settings import Settings, registry_host


def local_registry(settings: Settings) -> str:
    """The local registry's address, for commands that have no environment file to say it."""
    recorded = TreeReader(settings.image_serve_root).registry_name()
    return recorded or local_registry_address(None, settings.hostname)


def local_names(settings: Settings) -> frozenset[str]:
    """Every address that means the local registry (lower-case)."""
    names = {local_registry(settings), local_registry_address(None, settings.hostname), FALLBACK}
    return frozenset(name.lower() for name in names)


def locate(settings: Settings, registry_url: str | None, host: str | None = None) -> Location:
    """``--registry-url``, else the image's host, else the local registry, as a location."""
    given = registry_host(registry_url, "--registry-url") if registry_url else host
    if given and given.lower() not in local_names(settings):
        return Location.registry(given)
    return Location.local_registry(local_registry(settings))
