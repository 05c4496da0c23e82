"""A tiny scripted HTTP server on 127.0.0.1 for protocol edge cases docker-registry will not produce.

Each test gives a handler ``(request) -> Reply``; every request is recorded so tests can assert
on what a server received (for instance that no ``Authorization`` header reached it).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer_port: int = 0  # the client's port: one per TCP connection


@dataclass(frozen=True)
class Reply:
    """What to answer; with ``cut_at`` the body stops after that many bytes and the connection
    closes (the client sees a short read under the full ``Content-Length``)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    cut_at: int | None = None


Handler = Callable[[Recorded], Reply]


@dataclass
class ScriptedServer:
    host: str
    requests: list[Recorded]

    @property
    def url(self) -> str:
        return f"http://{self.host}"


def _handler_class(handler: Handler, requests: list[Recorded]) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            recorded = Recorded(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                body,
                self.client_address[1],
            )
            requests.append(recorded)
            reply = handler(recorded)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body if reply.cut_at is None else reply.body[: reply.cut_at])
            if reply.cut_at is not None:
                self.wfile.flush()
                self.close_connection = True

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            return

    return _Handler


class _QuietServer(ThreadingHTTPServer):
    """A client hanging up mid-answer is part of several tests, not an error worth a traceback."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@contextmanager
def scripted_server(handler: Handler, address: str = "127.0.0.1") -> Iterator[ScriptedServer]:
    """Serve ``handler`` on a free port of ``address`` (loopback only) until the block ends."""
    assert address.startswith("127."), "tests may only listen on loopback"
    requests: list[Recorded] = []
    server = _QuietServer((address, 0), _handler_class(handler, requests))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield ScriptedServer(f"{address}:{server.server_address[1]}", requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
