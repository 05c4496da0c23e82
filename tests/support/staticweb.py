"""A plain static web server on 127.0.0.1, standing in for a lookaside signature server.

Lookaside signature storage is nothing more than files under a base URL
(``BASE/<repo>@sha256=<hex>/signature-N``); a reader asks for ``signature-1``, ``signature-2``, ...
until it gets a 404. So a directory served read-only, with 404 for anything missing, is a
faithful lookaside server. Directory listings are refused (404) because a real lookaside server
is not expected to list, and a client must not come to rely on one.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _FilesOnlyHandler(SimpleHTTPRequestHandler):
    """Serves files under the root; quiet; directories are 404 like any missing file."""

    protocol_version = "HTTP/1.1"  # keep-alive, as a real web server would offer

    def list_directory(self, path: str | os.PathLike[str]) -> io.BytesIO | None:
        self.send_error(404, "Not Found")
        return None

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        return


class _QuietServer(ThreadingHTTPServer):
    """A client closing its keep-alive connection early is normal, not a traceback on stderr."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@contextmanager
def static_web_server(root: Path, address: str = "127.0.0.1") -> Iterator[str]:
    """Serve the files under ``root`` over plain HTTP on a free port; yields ``http://HOST:PORT``.

    The server runs in a thread and is shut down, with its socket closed, when the block ends.
    """
    assert address.startswith("127."), "tests may only listen on loopback"
    handler = partial(_FilesOnlyHandler, directory=str(root))
    server = _QuietServer((address, 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://{address}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
