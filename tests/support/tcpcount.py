"""A loopback TCP forwarder that counts the connections made through it (TLS passes untouched)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field


@dataclass
class Counted:
    host: str
    connections: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reset(self) -> None:
        with self._lock:
            self.connections = 0


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with suppress(OSError):
        target.shutdown(socket.SHUT_WR)


@contextmanager
def counting_forwarder(upstream: str) -> Iterator[Counted]:
    """Forward ``127.0.0.1:PORT`` connections to ``upstream`` until the block ends."""
    assert upstream.startswith("127."), "the forwarder only leads to loopback"
    host, _, port = upstream.rpartition(":")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    counted = Counted(f"127.0.0.1:{listener.getsockname()[1]}")
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                continue
            with counted._lock:
                counted.connections += 1
            server = socket.create_connection((host, int(port)))
            held.extend((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield counted
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for sock in held:
            with suppress(OSError):
                sock.close()
