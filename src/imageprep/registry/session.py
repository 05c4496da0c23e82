"""One place that builds registry clients sharing a connection pool, tokens, logins and TLS policy.

A run talks to several registries from several threads; they all share one :class:`Transport`
(pooled, thread-safe, proxy-aware), one :class:`TokenCache`, one :class:`CredentialStore`, one
:class:`EndpointPolicy` and one :class:`~imageprep.model.retry.Retrier`, so each token is fetched
and each host probed once per run, and every retry draws on the same budget.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType

from imageprep.lookaside.config import RegistriesD
from imageprep.model.control import RunControl
from imageprep.model.platforms import host_architecture
from imageprep.model.reference import ImageReference
from imageprep.model.retry import Retrier, RetryPolicy
from imageprep.registry.auth import Authenticator
from imageprep.registry.certsd import CertificateDirectories
from imageprep.registry.client import RegistryClient
from imageprep.registry.connection import Connection
from imageprep.registry.credentials import CredentialStore
from imageprep.registry.endpoint import EndpointPolicy, Scheme
from imageprep.registry.lookaside import RegistryLookaside
from imageprep.registry.proxy import ProxyConfig
from imageprep.registry.tokens import TokenCache
from imageprep.registry.transport import Timeouts, Transport
from imageprep.registry.upload import UploadPolicy


class RegistrySession:
    """Hands out one :class:`RegistryClient` per registry host; close it (or use ``with``) when done.

    ``insecure`` is a set of ``HOST:PORT`` the operator declared insecure; ``ca_file`` adds trusted
    CAs; ``mirror`` is ``DockerRegistryMirror``; ``proxies`` says which requests go through which
    proxy. ``retry`` and ``sleep`` (or a whole ``retrier``) set how transient failures are retried.
    ``registries_d`` says where each registry's lookaside signatures are; ``certificate_roots`` where
    each registry's ``certs.d`` directory (its own CAs and client certificates) is looked for.
    """

    def __init__(
        self,
        credentials: CredentialStore | None = None,
        *,
        insecure: Iterable[str] = (),
        ca_file: str | Path | None = None,
        mirror: str | None = None,
        proxies: ProxyConfig = ProxyConfig(),
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        retrier: Retrier | None = None,
        upload: UploadPolicy | None = None,
        page_size: int | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
        architecture: Callable[[], str] = host_architecture,
        control: RunControl | None = None,
        registries_d: RegistriesD | None = None,
        certificate_roots: Sequence[Path] = (),
    ) -> None:
        self.credentials = credentials or CredentialStore()
        self.tokens = TokenCache()
        self.retrier = retrier or Retrier(retry, control=control, sleep=sleep)
        certificates = CertificateDirectories(certificate_roots)
        self._transport = Transport(
            ca_file=str(ca_file) if ca_file else None,
            timeouts=timeouts or Timeouts(),
            retrier=self.retrier,
            proxies=proxies,
            host_certificates=certificates,
        )
        self.endpoints = EndpointPolicy(
            self._transport, insecure=insecure, mirror=mirror, speaks_tls=certificates.has_authorities
        )
        self._authenticator = Authenticator(self.credentials, self.tokens, clock=clock)
        self._upload = upload or UploadPolicy()
        self._page_size = page_size
        self._architecture = architecture
        self._registries_d = registries_d or RegistriesD({})
        self._clients: dict[str, RegistryClient] = {}
        self._lock = threading.Lock()

    @property
    def transport(self) -> Transport:
        """The session's HTTP transport (shared by every client)."""
        return self._transport

    def client(self, registry: str) -> RegistryClient:
        """The client for a registry host as operators name it (``docker.io``, ``127.0.0.1:5000``)."""
        key = registry.strip().rstrip("/").lower()
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                connection = Connection(key, self._transport, self.endpoints, self._authenticator)
                client = RegistryClient(
                    connection,
                    upload=self._upload,
                    page_size=self._page_size,
                    architecture=self._architecture,
                    lookaside=RegistryLookaside(
                        key, self._registries_d, self._transport, self.endpoints.verify
                    ),
                )
                self._clients[key] = client
            return client

    def probe(self, registry: str) -> Scheme:
        """How the host is reached: ``https``, ``https-noverify`` or ``http`` (cached)."""
        return self.endpoints.probe(registry)

    def insecure_hosts(self) -> frozenset[str]:
        """Hosts reached without verified TLS so far, plus the declared-insecure ones."""
        return self.endpoints.insecure_hosts()

    def labels(self, reference: ImageReference) -> dict[str, str]:
        """The labels of the image a reference names (this machine's architecture for a list)."""
        return self.client(reference.registry).labels(reference.repository, reference.reference)

    def close(self) -> None:
        """Close the connection pool."""
        self._transport.close()

    def __enter__(self) -> RegistrySession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
