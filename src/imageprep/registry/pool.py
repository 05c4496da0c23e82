"""Keep-alive HTTP connections, per origin, handed out last-in first-out.

httpcore's own pool re-examines every open connection (a ``poll`` system call for each idle one)
whenever a request starts or a response closes, under one lock shared by every thread: with the
two dozen connections of a copy run that cost more CPU than the requests themselves. Here a
request takes the most recently used idle connection of its origin and checks only that one, so
its cost does not grow with the number of connections. The HTTP/1.1 exchange itself is still
httpcore's (``httpcore.HTTPConnection``).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterable, Iterator

import httpcore

OriginKey = tuple[bytes, bytes, int]


class ConnectionPool:
    """At most ``limit`` requests in flight; up to ``limit`` idle connections kept for reuse."""

    def __init__(self, ssl_context: ssl.SSLContext, *, limit: int, keepalive_expiry: float) -> None:
        if limit < 1:
            raise ValueError("a connection pool needs room for at least one connection")
        self._ssl_context = ssl_context
        self._limit = limit
        self._keepalive_expiry = keepalive_expiry
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._idle: dict[OriginKey, list[httpcore.HTTPConnection]] = {}
        self._idle_count = 0
        self._active: set[httpcore.HTTPConnection] = set()
        self._closed = False

    def handle_request(self, request: httpcore.Request) -> httpcore.Response:
        """Send ``request`` on a pooled connection; the connection returns when the response closes.

        Raises ``httpcore.PoolTimeout`` when no slot frees up within the request's pool timeout.
        """
        origin = request.url.origin
        key = (origin.scheme, origin.host, origin.port)
        timeout = request.extensions.get("timeout", {}).get("pool")
        if not self._slots.acquire(timeout=timeout if timeout is not None else -1):
            raise httpcore.PoolTimeout(f"no connection to {origin} became free within {timeout}s")
        try:
            connection = self._checkout(key, origin)
        except BaseException:
            self._slots.release()
            raise
        try:
            response = connection.handle_request(request)
        except BaseException:
            self._discard(connection)
            self._slots.release()
            raise
        stream = response.stream
        assert isinstance(stream, Iterable), "a synchronous connection gives a synchronous body"
        response.stream = _ReturningStream(stream, self, key, connection)
        return response

    def _checkout(self, key: OriginKey, origin: httpcore.Origin) -> httpcore.HTTPConnection:
        """The newest usable idle connection to ``origin``, else a new (not yet connected) one."""
        while True:
            with self._lock:
                if self._closed:
                    raise httpcore.ConnectError("the connection pool is closed")
                stack = self._idle.get(key)
                connection = stack.pop() if stack else None
                if connection is None:
                    connection = httpcore.HTTPConnection(
                        origin, ssl_context=self._ssl_context, keepalive_expiry=self._keepalive_expiry
                    )
                    self._active.add(connection)
                    return connection
                self._idle_count -= 1
                self._active.add(connection)
            # Checked outside the lock: one poll, and only of the connection about to be used.
            if connection.is_available() and not connection.has_expired():
                return connection
            self._discard(connection)

    def _checkin(self, key: OriginKey, connection: httpcore.HTTPConnection) -> None:
        """Called once per request, when its response is closed: keep the connection or drop it."""
        surplus: httpcore.HTTPConnection | None = None
        with self._lock:
            self._active.discard(connection)
            keep = not self._closed and connection.is_available()
            if keep:
                self._idle.setdefault(key, []).append(connection)
                self._idle_count += 1
                if self._idle_count > self._limit:
                    surplus = self._oldest_idle()
        try:
            if not keep:
                connection.close()
            if surplus is not None:
                surplus.close()
        finally:
            self._slots.release()

    def _oldest_idle(self) -> httpcore.HTTPConnection | None:
        """Remove and return the least recently used idle connection of the largest stack (lock held)."""
        key = max(self._idle, key=lambda k: len(self._idle[k]), default=None)
        if key is None or not self._idle[key]:
            return None
        self._idle_count -= 1
        return self._idle[key].pop(0)

    def _discard(self, connection: httpcore.HTTPConnection) -> None:
        with self._lock:
            self._active.discard(connection)
        connection.close()

    def close(self) -> None:
        """Close every connection, idle or in use (a thread blocked on one gets a network error)."""
        with self._lock:
            self._closed = True
            connections = [c for stack in self._idle.values() for c in stack] + list(self._active)
            self._idle.clear()
            self._idle_count = 0
            self._active.clear()
        for connection in connections:
            connection.close()


class _ReturningStream:
    """A response body that hands its connection back to the pool when it is closed (once)."""

    def __init__(
        self,
        stream: Iterable[bytes],
        pool: ConnectionPool,
        key: OriginKey,
        connection: httpcore.HTTPConnection,
    ) -> None:
        self._stream = stream
        self._pool = pool
        self._key = key
        self._connection = connection
        self._returned = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._stream)

    def close(self) -> None:
        if self._returned:
            return
        self._returned = True
        try:
            close = getattr(self._stream, "close", None)
            if close is not None:
                close()
        finally:
            self._pool._checkin(self._key, self._connection)
