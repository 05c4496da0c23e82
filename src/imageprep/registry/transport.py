"""The HTTP boundary: the only module that touches the HTTP library.

Everything above it deals in :class:`HttpResponse` / :class:`StreamedResponse` values and the
:mod:`imageprep.model.errors` tree. Transient failures (connection problems, 429, 500, 502-504) are
retried here with jittered exponential backoff that honours ``Retry-After``; everything else is
handed up or translated once, in :func:`raise_for_status`, so operators always see the same wording.

Requests go to httpcore's HTTP/1.1 connections (the engine under httpx), kept alive by the pool in
:mod:`.pool`. A run sends about a thousand requests, mostly to a registry on the same machine, and
httpx's client layer (URL model, cookie jar, auth and redirect flows, none of which imageprep uses:
redirects and credentials are handled by :mod:`.connection`) cost more CPU than the rest of a
request.
"""

from __future__ import annotations

import email.utils
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal, NoReturn
from urllib.parse import urlencode, urlsplit

import httpcore

import imageprep
from imageprep.model.control import RunControl
from imageprep.model.errors import (
    AuthenticationError,
    DigestMismatchError,
    NotFoundError,
    RegistryError,
    TransientError,
)
from imageprep.registry.pool import ConnectionPool
from imageprep.registry.retrying import Retryable, RetryPolicy, retry_after_failure

_log = logging.getLogger("imageprep.http")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = f"imageprep/{imageprep.__version__}".encode("ascii")
KEEPALIVE_SECONDS = 5.0
# Failures of the exchange itself (not HTTP statuses): a new attempt may succeed.
_EXCHANGE_ERRORS = (httpcore.TimeoutException, httpcore.NetworkError, httpcore.RemoteProtocolError)
# Answers read whole (everything but blobs) are bounded, so a hostile server cannot fill memory.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
Body = bytes | Iterable[bytes] | None
ProbeOutcome = int | Literal["tls-error", "unreachable"]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-request limits in seconds; strict so that a dead registry fails instead of hanging a run."""

    connect: float = 10.0
    read: float = 60.0
    write: float = 60.0
    pool: float = 30.0


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A complete response; header names are lower-case."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str

    def header(self, name: str) -> str | None:
        """One header's value (``None`` when absent)."""
        return self.headers.get(name.lower())


@dataclass(slots=True)
class StreamedResponse:
    """A response whose body is read piece by piece; read errors come out as our errors."""

    status: int
    headers: Mapping[str, str]
    url: str
    _response: httpcore.Response = field(repr=False)
    _context: str = field(repr=False)
    _control: RunControl | None = field(default=None, repr=False)

    def header(self, name: str) -> str | None:
        """One header's value (``None`` when absent)."""
        return self.headers.get(name.lower())

    def iter_bytes(self, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """The body in pieces of about ``chunk_size`` bytes (the last one shorter).

        The socket delivers 64 KiB at a time; handing on larger pieces means fewer trips through
        the digest check and the upload that consume them.
        """
        parts: list[bytes] = []
        held = 0
        try:
            for chunk in self._response.iter_stream():
                if self._control is not None:
                    self._control.check(self._context)
                parts.append(chunk)
                held += len(chunk)
                if held >= chunk_size:
                    yield b"".join(parts)
                    parts, held = [], 0
        except (*_EXCHANGE_ERRORS, httpcore.ProtocolError) as exc:
            raise TransientError(f"{self._context}: connection lost while reading: {_describe(exc)}") from exc
        if held:
            yield b"".join(parts)

    def read(self) -> bytes:
        """The whole (small) body: error documents and redirects."""
        return b"".join(self.iter_bytes())

    def complete(self) -> HttpResponse:
        """Read the body and return the plain response value."""
        return HttpResponse(self.status, self.headers, self.read(), self.url)


def _read_bounded(response: httpcore.Response, headers: Mapping[str, str], limit: int, context: str) -> bytes:
    """The whole body, refused (not retried) as soon as it is known to exceed ``limit`` bytes."""
    declared = headers.get("content-length", "")
    too_large = RegistryError(f"{context}: the answer is larger than {limit} bytes; refused")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    parts: list[bytes] = []
    total = 0
    for chunk in response.iter_stream():
        total += len(chunk)
        if total > limit:
            raise too_large
        parts.append(chunk)
    return b"".join(parts)


def _headers(response: httpcore.Response) -> dict[str, str]:
    """Header names lower-cased; a repeated header keeps its last value."""
    return {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in response.headers}


def with_params(url: str, params: Mapping[str, str | list[str]]) -> str:
    """``url`` with ``params`` appended to whatever query it has (a registry's upload Location
    carries its own state there, which must reach the registry byte for byte)."""
    pairs = [
        (name, item)
        for name, value in params.items()
        for item in ([value] if isinstance(value, str) else value)
    ]
    if not pairs:
        return url
    base, _, fragment = url.partition("#")
    separator = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        separator = ""
    return f"{base}{separator}{urlencode(pairs)}" + (f"#{fragment}" if fragment else "")


def wire_headers(url: str, headers: Mapping[str, str], content: Body) -> list[tuple[bytes, bytes]]:
    """What goes on the wire: ours, plus Host, User-Agent and the body's framing when not given."""
    given = {name.lower() for name in headers}
    wire = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    if "host" not in given:
        wire.insert(0, (b"Host", urlsplit(url).netloc.encode("idna")))
    if "user-agent" not in given:
        wire.append((b"User-Agent", USER_AGENT))
    if "content-length" not in given and "transfer-encoding" not in given:
        if isinstance(content, bytes):
            wire.append((b"Content-Length", str(len(content)).encode("ascii")))
        elif content is not None:
            wire.append((b"Transfer-Encoding", b"chunked"))
    return wire


def _describe(exc: BaseException) -> str:
    """A one-line cause, from the innermost exception that says something."""
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        if str(cause):
            text = str(cause)
        cause = cause.__cause__ or cause.__context__
    return text


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``exc`` or anything in its cause/context chain is a ``kind``."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, kind):
            return True
        current = current.__cause__ or current.__context__
    return False


def is_tls_failure(exc: BaseException) -> bool:
    """Whether an exception chain was caused by the TLS handshake (not by an unreachable host)."""
    return _caused_by(exc, ssl.SSLError)


def is_certificate_failure(exc: BaseException) -> bool:
    """Whether an exception chain was caused by certificate verification."""
    return _caused_by(exc, ssl.SSLCertVerificationError)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _unverified_ssl_context() -> ssl.SSLContext:
    """TLS without verification, for hosts declared insecure; loads no CA bundle (nothing uses it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"


def check_ca_file(ca_file: str) -> None:
    """Refuse, before any work starts, a CA file that cannot be read or holds no PEM certificate.

    Loading it for real costs tens of milliseconds, so that waits for the first https request;
    this read catches the wrong path or the wrong file at once.
    """
    try:
        with open(ca_file, "rb") as handle:
            content = handle.read()
    except OSError as exc:
        raise RegistryError(f"cannot read CA certificates from {ca_file}: {exc.strerror or exc}") from exc
    if _PEM_CERTIFICATE not in content:
        raise RegistryError(
            f"cannot load CA certificates from {ca_file}: it holds no PEM certificate",
            hint="give a file of PEM certificates, each starting with " + _PEM_CERTIFICATE.decode(),
        )


def _ssl_context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise RegistryError(f"cannot load CA certificates from {ca_file}: {exc}") from exc
    return context


class Transport:
    """One pooled, thread-safe HTTP client (plus an unverified twin for declared-insecure hosts).

    ``sleep`` is injectable so that tests can check backoff without waiting for it.
    """

    def __init__(
        self,
        *,
        ca_file: str | None = None,
        timeouts: Timeouts = Timeouts(),
        retry: RetryPolicy = RetryPolicy(),
        max_connections: int = 24,
        sleep: Callable[[float], None] = time.sleep,
        control: RunControl | None = None,
    ) -> None:
        self._control = control
        self._timeouts = timeouts
        self._max_connections = max_connections
        self._retry = retry
        self._sleep = sleep
        # The library never reads proxies or certificates from the environment; the caller passes
        # what it wants. Loading CA certificates takes tens of milliseconds, so the verifying client
        # is built on the first https request (a CA file is checked now, so a wrong one is
        # reported before any work starts).
        if ca_file:
            check_ca_file(ca_file)
        self._ca_file = ca_file
        self._verified: ConnectionPool | None = None
        self._ca_error: RegistryError | None = None
        self._unverified: ConnectionPool | None = None
        self._lock = threading.Lock()

    def _new_pool(self, context: ssl.SSLContext) -> ConnectionPool:
        return ConnectionPool(context, limit=self._max_connections, keepalive_expiry=KEEPALIVE_SECONDS)

    def _client(self, url: str, verify: bool) -> ConnectionPool:
        """The verifying client for https that is to be verified; the other one for the rest.

        Plain-HTTP requests involve no certificate, so they never need the verifying client.
        """
        if verify and not url.startswith("http://"):
            verified = self._verified
            if verified is not None:
                return verified
            with self._lock:
                if self._ca_error is not None:
                    raise self._ca_error  # loaded once: a broken CA file is not read again per request
                if self._verified is None:
                    try:
                        self._verified = self._new_pool(_ssl_context(self._ca_file))
                    except RegistryError as exc:
                        self._ca_error = exc
                        raise
                return self._verified
        unverified = self._unverified
        if unverified is not None:
            return unverified
        with self._lock:
            if self._unverified is None:
                self._unverified = self._new_pool(_unverified_ssl_context())
            return self._unverified

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            for client in (self._verified, self._unverified):
                if client is not None:
                    client.close()

    def _bounded_sleep(self, seconds: float) -> None:
        """Wait before a retry, never past the run's deadline (the next attempt then reports it)."""
        self._sleep(self._control.cap(seconds) if self._control is not None else seconds)

    def _request_timeout(self) -> dict[str, float]:
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

    def _exchange(
        self, method: str, url: str, headers: Mapping[str, str], content: Body, verify: bool
    ) -> httpcore.Response:
        """Send one request and return the response with its body still to be read."""
        request = httpcore.Request(
            method,
            url,
            headers=wire_headers(url, headers, content),
            content=content,
            extensions={"timeout": self._request_timeout()},
        )
        response = self._client(url, verify).handle_request(request)
        _log.debug("HTTP Request: %s %s %d", method, url, response.status)
        return response

    def _open(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str | list[str]] | None,
        content: Body,
        verify: bool,
        context: str,
    ) -> httpcore.Response:
        """One attempt: send and return the open response, or raise :class:`Retryable` / our error."""
        if self._control is not None:
            self._control.check(context, cleanup=method == "DELETE")
        target = with_params(url, params) if params else url
        try:
            response = self._exchange(method, target, headers, content, verify)
        except httpcore.TimeoutException as exc:
            raise Retryable(f"timed out ({_describe(exc)})") from exc
        except (httpcore.NetworkError, httpcore.RemoteProtocolError) as exc:
            if is_certificate_failure(exc):
                raise RegistryError(
                    f"{context}: TLS certificate verification failed: {_describe(exc)}",
                    hint="pass the registry's CA file, or declare the registry insecure if that is intended",
                ) from exc
            raise Retryable(f"connection failed ({_describe(exc)})") from exc
        except (httpcore.ProtocolError, httpcore.UnsupportedProtocol, ValueError) as exc:
            # A malformed URL or header, or a server that does not speak HTTP: not worth retrying.
            raise RegistryError(f"{context}: request failed: {_describe(exc)}") from exc
        if response.status in RETRYABLE_STATUSES:
            retry_after = parse_retry_after(_headers(response).get("retry-after"), time.time())
            response.close()
            raise Retryable(f"HTTP {response.status}", retry_after)
        return response

    def _open_with_retries(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str | list[str]] | None,
        content: Body,
        verify: bool,
        context: str,
    ) -> httpcore.Response:
        def attempt() -> httpcore.Response:
            return self._open(
                method, url, headers=headers, params=params, content=content, verify=verify, context=context
            )

        # A streamed body can be sent only once; the caller retries the whole operation.
        replayable = content is None or isinstance(content, bytes)
        try:
            try:
                return attempt()
            except Retryable as first:
                if not replayable:
                    raise
                return retry_after_failure(attempt, first, self._retry, self._bounded_sleep)
        except Retryable as exc:
            tries = self._retry.attempts if replayable else 1
            raise TransientError(
                f"{context}: {exc.reason} after {tries} attempt(s)",
                hint="the registry may be overloaded or unreachable; try again later",
            ) from exc

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str | list[str]] | None = None,
        content: Body = None,
        verify: bool = True,
        context: str,
        limit: int | None = None,
    ) -> HttpResponse:
        """Send a request and read the whole answer; transient failures are retried.

        ``content`` given as bytes is replayed on retries; an iterable is streamed once.
        ``context`` names the registry and image in error messages. An answer longer than
        ``limit`` bytes (default :data:`MAX_RESPONSE_BYTES`) is refused.
        """
        # A body cut off mid-read is as transient as a refused connection: ask again (when the
        # request can be replayed), or a reset while reading a manifest would fail the image.
        replayable = content is None or isinstance(content, bytes)
        reads = max(1, self._retry.attempts) if replayable else 1
        for read in range(1, reads + 1):
            response = self._open_with_retries(
                method,
                url,
                headers=headers or {},
                params=params,
                content=content,
                verify=verify,
                context=context,
            )
            headers_read = _headers(response)
            try:
                body = _read_bounded(response, headers_read, limit or MAX_RESPONSE_BYTES, context)
            except (*_EXCHANGE_ERRORS, httpcore.ProtocolError) as exc:
                if read == reads:
                    lost = f"{context}: connection lost while reading: {_describe(exc)}"
                    raise TransientError(lost) from exc
                self._sleep(min(self._retry.backoff * read, self._retry.max_backoff))
                continue
            finally:
                response.close()
            return HttpResponse(response.status, headers_read, body, with_params(url, params or {}))
        raise AssertionError("unreachable: the last read returns or raises")  # pragma: no cover

    @contextmanager
    def stream(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        verify: bool = True,
        context: str,
    ) -> Iterator[StreamedResponse]:
        """Open a response whose body is read lazily; opening is retried, reading is not."""
        response = self._open_with_retries(
            method, url, headers=headers or {}, params=None, content=None, verify=verify, context=context
        )
        try:
            yield StreamedResponse(response.status, _headers(response), url, response, context, self._control)
        finally:
            response.close()

    def probe(self, url: str, *, verify: bool) -> ProbeOutcome:
        """One GET without retries: the HTTP status, or whether TLS failed or nobody answered."""
        try:
            if self._control is not None:
                self._control.check(f"contacting {url}")
            response = self._exchange("GET", url, {}, None, verify)
        except (*_EXCHANGE_ERRORS, httpcore.ProtocolError, httpcore.UnsupportedProtocol, ValueError) as exc:
            return "tls-error" if is_tls_failure(exc) else "unreachable"
        response.close()
        return response.status


# --- registry error documents -------------------------------------------------------------------


def error_details(content: bytes) -> str:
    """The ``code: message`` pairs of a registry error document, or a short excerpt of the body."""
    try:
        document = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        text = content[:200].decode("utf-8", "replace").strip()
        return text
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return ""
    parts = []
    for item in errors:
        if isinstance(item, dict):
            code = str(item.get("code", "")).strip()
            message = str(item.get("message", "")).strip()
            parts.append(": ".join(part for part in (code, message) if part))
    return "; ".join(part for part in parts if part)


def error_codes(content: bytes) -> frozenset[str]:
    """The ``code`` values of a registry error document (empty when it is not one)."""
    try:
        document = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return frozenset()
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return frozenset()
    return frozenset(str(item.get("code")) for item in errors if isinstance(item, dict) and item.get("code"))


def raise_for_status(response: HttpResponse, *, registry: str, subject: str, action: str) -> None:
    """Turn an unsuccessful response into the matching error; 2xx returns quietly.

    ``subject`` names the repository or image and ``action`` what we were doing, so the message tells
    the operator what failed where.
    """
    if 200 <= response.status < 300:
        return
    _raise_status(response, registry=registry, subject=subject, action=action)


def _raise_status(response: HttpResponse, *, registry: str, subject: str, action: str) -> NoReturn:
    details = error_details(response.content)
    suffix = f": {details}" if details else ""
    where = f"{action} {subject} on registry {registry}"
    status = response.status
    codes = error_codes(response.content)
    if status in (401, 403):
        raise AuthenticationError(
            f"{where} was refused (HTTP {status}){suffix}",
            hint="check the credentials for this registry (ContainerImageRegistryCredentials or an auth "
            "file); some registries also answer this way when the repository does not exist",
        )
    if status == 404:
        raise NotFoundError(f"{where} failed: not found (HTTP 404){suffix}")
    if "DIGEST_INVALID" in codes or "SIZE_INVALID" in codes:
        raise DigestMismatchError(
            f"{where} failed: the registry rejected the content (HTTP {status}){suffix}"
        )
    if status in RETRYABLE_STATUSES:
        raise TransientError(f"{where} failed (HTTP {status}){suffix}")
    raise RegistryError(f"{where} failed (HTTP {status}){suffix}")
