"""Where images are pushed to or read from: a registry host, or this host's local registry.

The local registry is the image-serve tree on disk (served read-only by ``imageprep serve``,
Apache or nginx), so it is written and read as files, never over HTTP; every other location is a
registry reached over the distribution API. A ``push_destination`` is parsed into a
:class:`Location` once and carried unchanged; the session's resolver turns it into a store.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Location:
    """``host`` is how image references name the place (``192.168.24.1:8787``, ``quay.io``)."""

    host: str
    local: bool = False

    @classmethod
    def registry(cls, host: str) -> Location:
        """A registry reached over HTTP."""
        return cls(host.strip().rstrip("/"))

    @classmethod
    def local_registry(cls, address: str) -> Location:
        """This host's local registry, known to nodes as ``address``."""
        return cls(address, local=True)

    @classmethod
    def of(cls, host: str, local_address: str) -> Location:
        """``host`` as a location: the local registry when it is the local registry's address."""
        host = host.strip().rstrip("/")
        return cls(host, local=host.lower() == local_address.lower())

    def __str__(self) -> str:
        return self.host
