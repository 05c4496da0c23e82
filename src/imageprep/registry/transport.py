"""The HTTP boundary: sends :class:`~.request.HttpRequest` values, hands back our response values.

Requests to a registry reached directly go through imageprep's own keep-alive pool
(:mod:`.pool`) over httpcore's HTTP/1.1 connections; requests that ``HTTPS_PROXY`` / ``HTTP_PROXY``
send through a proxy go through httpcore's own proxy pool (a ``CONNECT`` tunnel for https, an
absolute-form request for plain http). Each URL gets its own proxy decision, so a token realm or a
blob redirect to another host is proxied, or not, on its own terms.

Library exceptions are translated here, once: a failure that may pass (connection refused or cut,
timeout, 429, 500, 502-504) becomes a :class:`~imageprep.model.errors.TransientError` carrying the
server's ``Retry-After``; everything else a :class:`~imageprep.model.errors.RegistryError`. A request
that can be sent again is retried through the run's :class:`~imageprep.model.retry.Retrier`; one
that cannot (a streamed body, an upload step) fails after one attempt and its caller retries the
whole operation through the same retrier.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpcore

from imageprep.model.errors import RegistryError, TransientError
from imageprep.model.retry import Retrier
from imageprep.model.urgency import is_deferred
from imageprep.registry.certsd import (
    SYSTEM_DIRECTORIES,
    USER_DIRECTORY,
    CertificateDirectories,
    HostCertificates,
)
from imageprep.registry.endpoint import ProbeOutcome
from imageprep.registry.errordocs import RETRYABLE_STATUSES, error_details
from imageprep.registry.failures import describe
from imageprep.registry.pool import ConnectionPool
from imageprep.registry.proxy import Proxy, ProxyConfig
from imageprep.registry.request import HttpRequest, wire_headers
from imageprep.registry.responses import EXCHANGE_ERRORS, HttpResponse, StreamedResponse, header_map
from imageprep.registry.retryafter import parse_retry_after
from imageprep.registry.sockets import InterruptibleBackend
from imageprep.registry.tls import (
    check_ca_file,
    is_certificate_failure,
    is_client_certificate_refusal,
    is_tls_failure,
    unverified_context,
    verified_context,
)

_log = logging.getLogger("imageprep.http")

KEEPALIVE_SECONDS = 5.0
MAX_CONNECTIONS = 64
# Requests in flight, and so connections open, to one host: a warm run's two checks per image
# (its manifest, its repository's tag list for new signatures) take about one round trip per 16
# images. Blob transfers use at most half of them, so checks never wait behind a layer.
PER_HOST = 32
PER_HOST_BULK = 16
# Answers read whole (everything but blobs) are bounded, so a hostile server cannot fill memory.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_Pool = ConnectionPool | httpcore.ConnectionPool


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-request limits in seconds; strict so that a dead registry fails instead of hanging a run."""

    connect: float = 10.0
    read: float = 60.0
    write: float = 60.0
    pool: float = 30.0


class Transport:
    """One thread-safe HTTP client for a run: direct and proxied pools, verified and not."""

    def __init__(
        self,
        *,
        ca_file: str | None = None,
        timeouts: Timeouts = Timeouts(),
        retrier: Retrier | None = None,
        proxies: ProxyConfig = ProxyConfig(),
        max_connections: int = MAX_CONNECTIONS,
        per_host: int = PER_HOST,
        host_certificates: CertificateDirectories | None = None,
    ) -> None:
        self.retrier = retrier or Retrier()
        self._control = self.retrier.control
        self._timeouts = timeouts
        self._proxies = proxies
        self._max_connections = max_connections
        self._per_host = per_host
        # Loading CA certificates takes tens of milliseconds, so the verifying context is built on
        # the first https request; a CA file is checked now, so a wrong one is reported at once.
        if ca_file:
            check_ca_file(ca_file)
        self._ca_file = ca_file
        self._verified_context: ssl.SSLContext | None = None
        self._ca_error: RegistryError | None = None
        self._host_certificates = host_certificates or CertificateDirectories()
        self._pools: dict[tuple[str | None, bool, Path | None], _Pool] = {}
        self._lock = threading.Lock()
        # Ctrl-C cuts every open socket, so no thread waits out a stalled read.
        self._backend = InterruptibleBackend()
        if self._control is not None:
            self._control.when_stopped(self._backend.interrupt_soon)

    # --- pools -----------------------------------------------------------------------------------

    def _context(self, verify: bool, own: HostCertificates | None = None) -> ssl.SSLContext:
        if own is not None:
            # A host with a certs.d directory gets a context of its own: the shared trust plus its
            # CAs (when verified), and its client certificates either way.
            context = self._fresh_verified_context() if verify else unverified_context()
            own.apply(context, authorities=verify)
            return context
        if not verify:
            return unverified_context()
        if self._verified_context is None:
            self._verified_context = self._fresh_verified_context()
        return self._verified_context

    def _fresh_verified_context(self) -> ssl.SSLContext:
        if self._ca_error is not None:
            raise self._ca_error  # loaded once: a broken CA file is not read again per request
        try:
            return verified_context(self._ca_file)
        except RegistryError as exc:
            self._ca_error = exc
            raise

    def _pool(self, request: HttpRequest) -> tuple[_Pool, Proxy | None]:
        """The pool for the request's URL: by its proxy (or none), and by whether its TLS is verified.

        Plain-HTTP requests involve no certificate, so they always use the unverified pools and
        never load the CA bundle. An https host with a ``certs.d`` directory has pools of its own.
        """
        proxy = self._proxies.proxy_for(request.url)
        plain = request.url.startswith("http://")
        verified = request.verify and not plain
        own = None if plain else self._host_certificates.for_host(request.netloc)
        key = (proxy.url if proxy is not None else None, verified, own.directory if own is not None else None)
        pool = self._pools.get(key)  # every request asks: no lock once the pool exists
        if pool is not None:
            return pool, proxy
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                context = self._context(verified, own)
                if proxy is None:
                    pool = ConnectionPool(
                        context,
                        limit=self._max_connections,
                        per_host=self._per_host,
                        per_host_bulk=PER_HOST_BULK,
                        keepalive_expiry=KEEPALIVE_SECONDS,
                        network_backend=self._backend,
                    )
                else:
                    pool = httpcore.ConnectionPool(
                        ssl_context=context,
                        proxy=httpcore.Proxy(proxy.url, auth=proxy.auth),
                        max_connections=self._max_connections,
                        keepalive_expiry=KEEPALIVE_SECONDS,
                        network_backend=self._backend,
                    )
                self._pools[key] = pool
            return pool, proxy

    def open_connections(self) -> int:
        """Connections open right now in the direct pools (for tests of connection reuse)."""
        with self._lock:
            pools = list(self._pools.values())
        return sum(pool.open_connections() for pool in pools if isinstance(pool, ConnectionPool))

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.close()

    # --- one attempt -----------------------------------------------------------------------------

    def _timeout_extension(self) -> dict[str, float]:
        """The configured timeouts, shortened so that no request outlives the run's deadline."""
        limits = {
            "connect": self._timeouts.connect,
            "read": self._timeouts.read,
            "write": self._timeouts.write,
            "pool": self._timeouts.pool,
        }
        if self._control is None or self._control.remaining() is None:
            return limits
        return {name: self._control.cap(seconds) for name, seconds in limits.items()}

    def _exchange(self, request: HttpRequest) -> httpcore.Response:
        """Send one request and return the response with its body still to be read."""
        pool, proxy = self._pool(request)
        wire = httpcore.Request(
            request.method,
            request.url,
            headers=wire_headers(request.url, request.headers, request.body),
            content=request.body,
            extensions={"timeout": self._timeout_extension()},
        )
        try:
            if isinstance(pool, ConnectionPool):
                response = pool.handle_request(wire, bulk=request.bulk, deferred=is_deferred())
            else:
                response = pool.handle_request(wire)
        except httpcore.ProxyError as exc:
            raise _proxy_refused(request, proxy, exc) from exc
        except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
            if proxy is not None and not is_tls_failure(exc):
                raise TransientError(
                    f"{request.context}: cannot connect to proxy {proxy} (from {proxy.variable}): "
                    f"{describe(exc)}",
                    hint="check the proxy variables, or list the registry in NO_PROXY",
                    unreachable=True,
                    cause="connect",
                ) from exc
            raise
        via = f" via {proxy}" if proxy is not None else ""
        _log.debug("HTTP Request: %s %s%s %d", request.method, request.url, via, response.status)
        return response

    def _open(self, request: HttpRequest) -> StreamedResponse:
        """One attempt: the open response (the caller closes it), or our error."""
        if self._control is not None:
            self._control.check(request.context, cleanup=request.method == "DELETE")
        try:
            response = self._exchange(request)
        except httpcore.ConnectTimeout as exc:
            raise TransientError(
                f"{request.context}: connecting timed out ({describe(exc)})",
                unreachable=True,
                cause="connect",
            ) from exc
        except httpcore.TimeoutException as exc:
            raise TransientError(f"{request.context}: timed out ({describe(exc)})", cause="timeout") from exc
        except (httpcore.NetworkError, httpcore.RemoteProtocolError) as exc:
            if is_certificate_failure(exc):
                raise RegistryError(
                    f"{request.context}: TLS certificate verification failed: {describe(exc)}",
                    hint="pass the registry's CA file (--ca-file), or declare the registry insecure "
                    "(--insecure-registry) if that is intended",
                ) from exc
            if is_client_certificate_refusal(exc):
                raise RegistryError(
                    f"{request.context}: the registry wants a client certificate it accepts: {describe(exc)}",
                    hint=f"put the certificate NAME.cert and its key NAME.key in {USER_DIRECTORY}/"
                    f"{request.netloc}/ under your home, or in {SYSTEM_DIRECTORIES[0]}/{request.netloc}/",
                ) from exc
            refused = isinstance(exc, httpcore.ConnectError)
            raise TransientError(
                f"{request.context}: connection failed ({describe(exc)})",
                unreachable=refused,
                cause="connect" if refused else "connection",
            ) from exc
        except (httpcore.ProtocolError, httpcore.UnsupportedProtocol, ValueError) as exc:
            # A malformed URL or header, or a server that does not speak HTTP: not worth retrying.
            raise RegistryError(f"{request.context}: request failed: {describe(exc)}") from exc
        streamed = StreamedResponse(
            response.status, header_map(response), request.url, response, request.context, self._control
        )
        if response.status in RETRYABLE_STATUSES:
            try:
                details = error_details(streamed.read(limit=64 * 1024))
            except RegistryError:
                details = ""
            finally:
                streamed.close()
            retry_after = parse_retry_after(streamed.header("retry-after"), time.time())
            suffix = f" ({details})" if details else ""
            raise TransientError(
                f"{request.context}: HTTP {response.status}{suffix}",
                hint="the registry may be overloaded or unreachable; try again later",
                retry_after=retry_after,
                cause=f"HTTP {response.status}",
            )
        return streamed

    def _send_once(self, request: HttpRequest) -> HttpResponse:
        streamed = self._open(request)
        try:
            return streamed.complete(request.limit or MAX_RESPONSE_BYTES)
        finally:
            streamed.close()

    # --- what callers use ------------------------------------------------------------------------

    def send(self, request: HttpRequest) -> HttpResponse:
        """Send a request and read the whole answer (bounded by ``request.limit``).

        A request that can be sent again is retried on transient failures; the response is
        returned whatever its status otherwise (callers decide what 404 means).
        """
        if request.retry and request.replayable:
            return self.retrier.call(lambda: self._send_once(request), key=request.netloc)
        self.retrier.check_reachable(request.netloc)
        return self._send_once(request)

    @contextmanager
    def open(self, request: HttpRequest) -> Iterator[StreamedResponse]:
        """One attempt at a response whose body is read lazily; the caller retries (it can resume)."""
        self.retrier.check_reachable(request.netloc)
        streamed = self._open(request)
        try:
            yield streamed
        finally:
            streamed.close()

    def probe(self, url: str, *, verify: bool) -> ProbeOutcome:
        """One GET without retries: the HTTP status, or whether TLS failed or nobody answered."""
        request = HttpRequest("GET", url, context=f"contacting {url}", verify=verify)
        if self._control is not None:
            self._control.check(request.context)
        try:
            response = self._exchange(request)
        except TransientError:
            return "unreachable"
        except (*EXCHANGE_ERRORS, httpcore.ProtocolError, httpcore.UnsupportedProtocol, ValueError) as exc:
            return "tls-error" if is_tls_failure(exc) else "unreachable"
        except RegistryError:
            return "unreachable"
        response.close()
        return response.status


def _proxy_refused(request: HttpRequest, proxy: Proxy | None, exc: httpcore.ProxyError) -> Exception:
    """A proxy that would not open the tunnel: its login is wrong (no retry), or it is busy (retry)."""
    status = str(exc).split(" ", 1)[0]
    where = f"{request.context}: proxy {proxy} (from {proxy.variable if proxy else '?'}) refused the tunnel"
    if status in ("401", "407"):  # 407 is the standard answer; some proxies (tinyproxy) send 401
        return RegistryError(
            f"{where}: it wants a login (HTTP {status})",
            hint="put the proxy's user and password in the proxy URL: http://USER:PASSWORD@HOST:PORT",
        )
    if status.isdigit() and int(status) in RETRYABLE_STATUSES:
        return TransientError(f"{where} (HTTP {status})", cause=f"proxy {status}")
    return RegistryError(f"{where} ({exc})", hint="check that the proxy allows CONNECT to this registry")
