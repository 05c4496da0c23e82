"""The session every use case reaches images through, and the one resolver from location to store.

A :class:`Session` holds what a command run shares: one registry session (connection pools,
tokens, logins, TLS policy, proxies and the retry budget), the local image-serve tree, and the
run's control (``--timeout`` and Ctrl-C). :meth:`Session.store` is the only place that decides
whether a location is the tree on disk or a registry over HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from imageprep.lookaside.config import RegistriesD
from imageprep.model.control import RunControl
from imageprep.model.location import Location
from imageprep.model.retry import Retrier
from imageprep.registry.credentials import Credential, CredentialStore
from imageprep.registry.session import RegistrySession
from imageprep.settings import Settings
from imageprep.transfer.store import ImageStore

if TYPE_CHECKING:
    from imageprep.imageserve.tree import ImageServeTree


class Session:
    """What one command run reaches images with; close it (or use ``with``) when done.

    ``credentials`` are logins that win over the auth files (``ContainerImageRegistryCredentials``,
    ``--username``); ``insecure`` adds to the operator's ``--insecure-registry`` hosts (the
    environment's ``DockerInsecureRegistryAddress``); ``mirror`` is ``DockerRegistryMirror``.
    ``sleep`` is for tests that must not wait.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        credentials: Mapping[str, Credential] | None = None,
        insecure: Iterable[str] = (),
        mirror: str | None = None,
        control: RunControl | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.settings = settings
        self.control = control or RunControl(settings.timeout)
        self.retrier = Retrier(settings.retry, control=self.control, sleep=sleep)
        self._credentials = dict(credentials or {})
        self._insecure = settings.insecure_registries | frozenset(insecure)
        self._mirror = mirror
        self._registries: RegistrySession | None = None
        self._tree: ImageServeTree | None = None
        self._lock = threading.Lock()

    @property
    def registries(self) -> RegistrySession:
        """The registry session (built on first use: a command on the tree alone reads no auth file)."""
        with self._lock:
            if self._registries is None:
                self._registries = RegistrySession(
                    CredentialStore(self._credentials, self.settings.auth_files),
                    insecure=self._insecure,
                    ca_file=self.settings.ca_file,
                    mirror=self._mirror,
                    proxies=self.settings.proxies,
                    timeouts=self.settings.timeouts,
                    retrier=self.retrier,
                    control=self.control,
                    registries_d=RegistriesD.load(self.settings.registries_d),
                    certificate_roots=self.settings.certificate_directories,
                )
            return self._registries

    @property
    def declared_insecure(self) -> frozenset[str]:
        """The hosts the operator declared insecure (options and environment)."""
        return self._insecure

    def tree(self) -> ImageServeTree:
        """The local registry's image-serve tree (nothing is created until something is written)."""
        from imageprep.imageserve.tree import ImageServeTree  # only runs that use the tree load it

        with self._lock:
            if self._tree is None:
                self._tree = ImageServeTree(self.settings.image_serve_root)
            return self._tree

    def store(self, location: Location) -> ImageStore:
        """The image store at ``location``: the tree for the local registry, else the registry."""
        if location.local:
            return self.tree()
        return self.registries.client(location.host)

    def close(self) -> None:
        """Close every connection."""
        if self._registries is not None:
            self._registries.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
