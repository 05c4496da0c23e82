"""``imageprep serve``'s server in a thread of the test process, and a raw HTTP/1.1 reader for its answers.

The raw reader exists because the tests look at what goes over one connection (keep-alive,
pipelining, a server closing on a client) where an HTTP client library would hide it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imageprep.imageserve.server import ImageServeServer, make_server


@contextlib.contextmanager
def serving_in_thread(root: Path, **options: Any) -> Iterator[ImageServeServer]:
    """``make_server(root, 127.0.0.1, 0, **options)`` running in a daemon thread; always stopped."""
    server = make_server(root, "127.0.0.1", 0, **options)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


class RawConnection:
    """One TCP connection: send bytes, read answers one at a time (Content-Length framed)."""

    def __init__(self, address: tuple[str, int], timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self._buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def get(self, path: str, headers: str = "", *, method: str = "GET") -> RawAnswer:
        self.send(f"{method} {path} HTTP/1.1\r\nHost: registry\r\n{headers}\r\n".encode())
        return self.answer(head_only=method == "HEAD")

    def _fill(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("the server closed the connection")
        self._buffer += data

    def answer(self, *, head_only: bool = False) -> RawAnswer:
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head_only else int(headers.get("content-length", "0"))
        while len(self._buffer) < length:
            self._fill()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return RawAnswer(int(status_line.split(" ")[1]), headers, body)

    def closed_by_server(self) -> bool:
        """Read until the server closes (True) or the socket timeout passes (False); data is dropped."""
        try:
            while self.sock.recv(1 << 20):
                pass
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
        return True

    def close(self) -> None:
        self.sock.close()
