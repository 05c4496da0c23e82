"""A loopback HTTP proxy that puts a real registry behind a flaky, hostile network, deterministically.

Every request is forwarded to the upstream registry over a fresh connection (stdlib only, one
thread per client connection). A :data:`Trigger` decides per request which fault, if any, to
inject; :class:`SeededSchedule` is the usual one: it keys each request by method and path (upload
session ids are folded away) and by how many times that key was seen before, and draws from a
``random.Random`` seeded with both. The same requests therefore meet the same faults in every run,
whatever order threads happen to send them in, and each key is faulted at most ``max_per_key``
times, so a client that retries a bounded number of times is guaranteed to get through.

Faults:

``503`` / ``429``
    answered by the proxy without forwarding (429 with a small ``Retry-After``).
``reset``
    forwarded, then the connection is reset (RST) half-way through the response body (or before
    any byte of it when there is no body).
``truncate``
    forwarded, then half the body is sent under the full ``Content-Length`` and the connection
    closed: the client sees a short read.
``stall``
    forwarded (so the server may have acted on it: a lost response), then nothing is sent for
    ``stall_seconds``, longer than the client's read timeout, and the connection is closed.
``corrupt``
    forwarded with one byte flipped: in the response body of a GET, or in the request body of a
    blob upload (the registry then refuses the digest).
``drop``
    read, never forwarded, never answered: the connection is closed (an upload lost on the way).

A trigger may also return ``hold``: the request is forwarded and half the response body is sent,
then :attr:`FaultProxy.held` is set and the proxy waits for :attr:`FaultProxy.release` before
sending the rest. Crash tests use it to kill a client at a known point, mid-blob.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# "drop" only when asked for: the seeded schedules of the older tests stay as they were.
FAULTS = ("503", "429", "reset", "truncate", "stall", "corrupt")
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer", "upgrade"}
)
_UPLOAD_SESSION = re.compile(r"/blobs/uploads/[^/?]+")
HOLD_TIMEOUT = 30.0


@dataclass(frozen=True)
class Exchange:
    """What a trigger sees of one request."""

    method: str
    path: str
    key: str
    index: int  # 0-based position among all requests the proxy received
    attempt: int  # how many requests with the same key came before this one
    range: str | None = None  # the request's Range header


Trigger = Callable[[Exchange], str | None]


def request_key(method: str, path: str) -> str:
    """``METHOD path`` with upload session ids folded away and only the ``digest`` query kept."""
    parts = urlsplit(path)
    stable = _UPLOAD_SESSION.sub("/blobs/uploads/*", parts.path)
    digest = parse_qs(parts.query).get("digest")
    return f"{method} {stable}" + (f"?digest={digest[0]}" if digest else "")


def is_blob_get(exchange: Exchange) -> bool:
    """A GET of a blob's bytes (where truncation and corruption bite hardest)."""
    return exchange.method == "GET" and "/blobs/sha256:" in exchange.path


def is_blob_upload(exchange: Exchange) -> bool:
    """A request that carries blob bytes to the registry."""
    return exchange.method in ("PUT", "PATCH") and "/blobs/uploads/" in exchange.path


@dataclass
class SeededSchedule:
    """The deterministic fault plan described in the module docstring.

    ``/v2/`` itself is never faulted: it is the endpoint probe, which decides once per run whether
    a loopback registry speaks plain HTTP, and is by design not retried.
    """

    seed: int
    rate: float = 0.3
    max_per_key: int = 1
    kinds: tuple[str, ...] = FAULTS

    def __call__(self, exchange: Exchange) -> str | None:
        if exchange.attempt >= self.max_per_key or urlsplit(exchange.path).path == "/v2/":
            return None
        draw = random.Random(f"{self.seed}|{exchange.key}|{exchange.attempt}")
        if draw.random() >= self.rate:
            return None
        kinds = [kind for kind in self.kinds if _applies(kind, exchange)]
        return draw.choice(kinds) if kinds else None


@dataclass
class SustainedSchedule:
    """Faults at steady rates for a whole run, however often a request is tried again.

    Every request but the ``/v2/`` probe is answered 503 or 429 (``Retry-After``) with
    probability ``busy_rate``; of what goes through, every ``cut_every``-th blob download is cut
    at half its body and each blob upload is dropped unanswered with probability ``drop_rate``.
    Draws are seeded by request key and attempt, as in :class:`SeededSchedule`, but with no cap
    on how often one request is faulted.
    """

    seed: int
    busy_rate: float = 0.2
    cut_every: int = 4
    drop_rate: float = 0.1
    _blob_gets: Iterator[int] = field(default_factory=itertools.count)

    def __call__(self, exchange: Exchange) -> str | None:
        if urlsplit(exchange.path).path == "/v2/":
            return None
        draw = random.Random(f"{self.seed}|{exchange.key}|{exchange.attempt}")
        if draw.random() < self.busy_rate:
            return draw.choice(("503", "429"))
        if is_blob_upload(exchange) and draw.random() < self.drop_rate:
            return "drop"
        if is_blob_get(exchange) and next(self._blob_gets) % self.cut_every == self.cut_every - 1:
            return "truncate"
        return None


def _applies(kind: str, exchange: Exchange) -> bool:
    if kind == "truncate":
        return exchange.method == "GET" and "/blobs/" in exchange.path
    if kind == "corrupt":
        return (exchange.method == "GET" and "/uploads/" not in exchange.path) or is_blob_upload(exchange)
    if kind == "reset":
        return exchange.method != "HEAD"
    if kind == "drop":
        return is_blob_upload(exchange)
    return True


@dataclass
class FaultProxy:
    """The running proxy: where it listens and what it did."""

    host: str
    upstream: str
    injected: Counter[str] = field(default_factory=Counter)
    requests: list[Exchange] = field(default_factory=list)
    cut_bytes: int = 0  # body bytes that truncations and resets kept from the client
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    _seen: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def total_injected(self) -> int:
        with self._lock:
            return sum(self.injected.values())

    def _record(self, method: str, path: str, range_header: str | None = None) -> Exchange:
        key = request_key(method, path)
        with self._lock:
            exchange = Exchange(method, path, key, len(self.requests), self._seen[key], range_header)
            self._seen[key] += 1
            self.requests.append(exchange)
        return exchange

    def _count(self, kind: str) -> None:
        with self._lock:
            self.injected[kind] += 1


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        pieces = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(pieces)
            pieces.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _flip(data: bytes) -> bytes:
    if not data:
        return data
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x5A]) + data[middle + 1 :]


def _reset(connection: socket.socket) -> None:
    """Close with RST instead of FIN: the peer sees 'connection reset by peer'."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


def _handler_class(state: FaultProxy, trigger: Trigger, stall_seconds: float, retry_after: int) -> type:
    upstream_host, _, upstream_port = state.upstream.rpartition(":")

    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
            upstream = http.client.HTTPConnection(upstream_host, int(upstream_port), timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                headers["Content-Length"] = str(len(body))
                if self.command in ("GET", "HEAD", "DELETE") and not body:
                    headers.pop("Content-Length")
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
                return response.status, response.reason, kept, data
            finally:
                upstream.close()

        def _head(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response_only(status, reason)
            length_sent = False
            for name, value in headers:
                if name.lower() == "content-length":
                    if self.command == "HEAD":
                        self.send_header(name, value)
                        length_sent = True
                    continue
                self.send_header(name, value)
            if not length_sent:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()

        def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self._head(status, "", headers, body)
            if self.command != "HEAD":
                self.wfile.write(body)
            self.wfile.flush()

        def _serve(self) -> None:
            exchange = state._record(self.command, self.path, self.headers.get("Range"))
            body = _read_body(self)
            fault = trigger(exchange)
            if fault is not None and fault != "hold":
                state._count(fault)
            if fault == "drop":
                self.close_connection = True
                _reset(self.connection)
                return
            if fault == "503":
                error = json.dumps({"errors": [{"code": "UNAVAILABLE", "message": "injected"}]}).encode()
                self._reply(503, [("Content-Type", "application/json")], error)
                return
            if fault == "429":
                error = json.dumps({"errors": [{"code": "TOOMANYREQUESTS", "message": "slow"}]}).encode()
                headers = [("Content-Type", "application/json"), ("Retry-After", str(retry_after))]
                self._reply(429, headers, error)
                return
            if fault == "corrupt" and is_blob_upload(exchange):
                body = _flip(body)
            status, reason, headers, data = self._forward(body)
            if fault == "stall":
                self.wfile.flush()
                time.sleep(stall_seconds)
                self.close_connection = True
                return
            if fault == "corrupt" and self.command == "GET":
                data = _flip(data)
            if fault in ("reset", "truncate", "hold") and self.command != "HEAD":
                if fault != "hold":
                    with state._lock:
                        state.cut_bytes += len(data) - len(data) // 2
                self._head(status, reason, headers, data)
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                if fault == "hold":
                    state.held.set()
                    state.release.wait(HOLD_TIMEOUT)
                    self.wfile.write(data[len(data) // 2 :])
                    self.wfile.flush()
                    return
                self.close_connection = True
                if fault == "reset":
                    _reset(self.connection)
                return
            self._head(status, reason, headers, data)
            if self.command != "HEAD":
                self.wfile.write(data)
            self.wfile.flush()

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def handle(self) -> None:
            # A reset connection or a client that gave up: both are the point here.
            with contextlib.suppress(OSError):
                super().handle()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            return

    return _Handler


def no_faults(exchange: Exchange) -> str | None:
    """A trigger that injects nothing (the proxy only counts)."""
    return None


@contextmanager
def fault_proxy(
    upstream: str,
    trigger: Trigger = no_faults,
    *,
    stall_seconds: float = 2.0,
    retry_after: int = 1,
) -> Iterator[FaultProxy]:
    """Run a proxy to ``upstream`` (``127.0.0.1:PORT``) on a free loopback port until the block ends."""
    assert upstream.startswith("127."), "the proxy only forwards to loopback"
    state = FaultProxy("", upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(state, trigger, stall_seconds, retry_after))
    server.daemon_threads = True
    state.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
