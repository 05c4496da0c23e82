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
import select
import socket
import ssl
import threading
import weakref
from collections.abc import Iterable
from typing import Any

import httpcore

GRACE = 1.0
_UNSET = object()  # a stream's socket timeout before the stream first sets it


class _Stream(httpcore.NetworkStream):
    """httpcore's stream, read and written straight on its socket where the socket carries it.

    httpcore's own stream sets the socket's timeout before every read and write (a system call
    each), and hands h11 one TLS record (16 KiB) per read: a layer costs a pass through h11 and
    the transport for every record. Here the timeout is set only when it changes, and a read
    also takes the records already waiting, up to what was asked for, so a busy download costs
    a fraction of those passes. A stream whose bytes its socket does not carry itself (TLS
    inside a TLS proxy connection) is left to httpcore. Registers the TLS stream it turns into.
    """

    def __init__(self, inner: httpcore.NetworkStream, backend: InterruptibleBackend, *, direct: bool) -> None:
        self._inner = inner
        self._backend = backend
        sock = inner.get_extra_info("socket")
        self._socket: socket.socket | None = sock if direct and isinstance(sock, socket.socket) else None
        self._tls = isinstance(sock, ssl.SSLSocket)
        self._timeout: float | None | object = _UNSET
        self._poller: select.poll | None = None

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._backend.reading(self._inner, True)
        try:
            if self._socket is None:
                return self._inner.read(max_bytes, timeout)
            return self._read(self._socket, max_bytes, timeout)
        finally:
            self._backend.reading(self._inner, False)

    def _read(self, sock: socket.socket, max_bytes: int, timeout: float | None) -> bytes:
        try:
            self._set_timeout(sock, timeout)
            data = sock.recv(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc
        if not self._tls or not data or len(data) >= max_bytes:
            return data
        pieces = [data]
        size = len(data)
        while size < max_bytes and self._waiting(sock):
            try:
                more = sock.recv(max_bytes - size)
            except OSError:
                break  # what was read stands; the next read meets the failure again
            if not more:
                break
            pieces.append(more)
            size += len(more)
        return data if len(pieces) == 1 else b"".join(pieces)

    def _waiting(self, sock: socket.socket) -> bool:
        """Whether more of the stream can be read without waiting for the network."""
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        if self._poller is None:
            self._poller = select.poll()
            self._poller.register(sock, select.POLLIN)
        return bool(self._poller.poll(0))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self._socket is None:
            self._inner.write(buffer, timeout)
            return
        sock = self._socket
        view = memoryview(buffer)
        try:
            self._set_timeout(sock, timeout)
            while view:
                view = view[sock.send(view) :]
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    def _set_timeout(self, sock: socket.socket, timeout: float | None) -> None:
        if timeout != self._timeout:
            sock.settimeout(timeout)
            self._timeout = timeout

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(ssl_context, server_hostname, timeout)
        # TLS over a plain socket is that socket's own; TLS over TLS (a proxy spoken to in TLS)
        # is httpcore's to read.
        return self._backend.remember(tls, direct=self._socket is not None and not self._tls)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class InterruptibleBackend(httpcore.NetworkBackend):
    """httpcore's synchronous backend; the streams waiting in a read can be shut down at once."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()
        self._streams: weakref.WeakSet[httpcore.NetworkStream] = weakref.WeakSet()
        self._lock = threading.Lock()

    def remember(self, stream: httpcore.NetworkStream, *, direct: bool = True) -> httpcore.NetworkStream:
        """``stream``, wrapped so that its reads are known; ``direct``: its socket carries it."""
        return _Stream(stream, self, direct=direct)

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
