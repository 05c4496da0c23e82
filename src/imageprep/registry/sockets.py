"""Sockets a run can cut at once: Ctrl-C must not wait out a stalled read.

A thread blocked in ``recv`` on a registry that stopped answering wakes only when its read
timeout passes (a minute by default) or when its socket is shut down; closing the socket from
another thread does not wake it on Linux. :class:`InterruptibleBackend` is httpcore's own network
backend that knows which of its streams are waiting in a read, so
:meth:`InterruptibleBackend.interrupt` can shut those down, and every blocked request ends with a
connection error straight away. It does so after :data:`GRACE` seconds: a transfer that is
moving notices the stop itself, between two pieces, and cancels its upload as on any failure (a
registry that sees an upload cut at the same moment as its cancel can keep a stray file of it);
only reads still waiting by then are stalled, and cut.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import weakref
from collections.abc import Iterable
from typing import Any

import httpcore

GRACE = 1.0


class _Stream(httpcore.NetworkStream):
    """A stream that registers the TLS stream it turns into, too."""

    def __init__(self, inner: httpcore.NetworkStream, backend: InterruptibleBackend) -> None:
        self._inner = inner
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._backend.reading(self._inner, True)
        try:
            return self._inner.read(max_bytes, timeout)
        finally:
            self._backend.reading(self._inner, False)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return self._backend.remember(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class InterruptibleBackend(httpcore.NetworkBackend):
    """httpcore's synchronous backend; the streams waiting in a read can be shut down at once."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()
        self._streams: weakref.WeakSet[httpcore.NetworkStream] = weakref.WeakSet()
        self._lock = threading.Lock()

    def remember(self, stream: httpcore.NetworkStream) -> httpcore.NetworkStream:
        """``stream``, wrapped so that its reads are known."""
        return _Stream(stream, self)

    def reading(self, stream: httpcore.NetworkStream, now: bool) -> None:
        """``stream`` starts (``now``) or ends a read."""
        with self._lock:
            if now:
                self._streams.add(stream)
            else:
                self._streams.discard(stream)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return self.remember(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        return self.remember(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)

    def interrupt_soon(self) -> None:
        """:meth:`interrupt` after :data:`GRACE` seconds, from a thread of its own (a signal
        handler must not wait)."""
        timer = threading.Timer(GRACE, self.interrupt)
        timer.daemon = True
        timer.start()

    def interrupt(self) -> None:
        """Shut down every stream waiting in a read: those reads end now, with a network error.

        Reads that start afterwards are left alone: after a stop the run lets only cleanup
        through (cancelling uploads), and that must reach the registry.
        """
        with self._lock:
            streams = list(self._streams)
            self._streams.clear()
        for stream in streams:
            _shut_down(stream)


def _shut_down(stream: httpcore.NetworkStream) -> None:
    sock = stream.get_extra_info("socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # already closed, or never connected
            sock.shutdown(socket.SHUT_RDWR)
