"""Keep-alive HTTP connections, per origin, handed out last-in first-out.

httpcore's own pool re-examines every open connection (a ``poll`` system call for each idle one)
whenever a request starts or a response closes, under one lock shared by every thread: with the
two dozen connections of a copy run that cost more CPU than the requests themselves. Here a
request takes the most recently used idle connection of its origin and checks only that one, so
its cost does not grow with the number of connections. The HTTP/1.1 exchange itself is still
httpcore's (``httpcore.HTTPConnection``).

When a host's connections are all busy, a freed one goes first to blob bytes (within their
share, they keep the link busy), then to the questions a copy waits on, and last to those asked
ahead of need (``deferred``: an image's attachments, looked up while the image is copied).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from typing import cast

import httpcore

from imageprep.model.errors import RegistryError
from imageprep.registry.slots import PrioritySlots

OriginKey = tuple[bytes, bytes, int]
# Who gets a host's next free connection: lower first.
_BULK, _ASKED, _DEFERRED = 0, 1, 2


class ConnectionPool:
    """At most ``limit`` requests in flight and ``limit`` connections open, idle ones included, and
    at most ``per_host`` of each to any one origin, of which at most ``per_host_bulk`` carry blob
    bytes.

    A host's connections are reused for every request to it, whichever thread makes it: a run that
    asks a far-away registry a hundred questions pays the TCP and TLS handshakes ``per_host`` times
    at most, not once per question. Blob transfers keep to their own share, so the short questions
    (manifest checks, tag lists) always have connections left to go out on.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        *,
        limit: int,
        keepalive_expiry: float,
        per_host: int | None = None,
        per_host_bulk: int | None = None,
        network_backend: httpcore.NetworkBackend | None = None,
    ) -> None:
        if (
            limit < 1
            or (per_host is not None and per_host < 1)
            or (per_host_bulk is not None and per_host_bulk < 1)
        ):
            raise ValueError("a connection pool needs room for at least one connection")
        self._ssl_context = ssl_context
        self._limit = limit
        self._keepalive_expiry = keepalive_expiry
        self._network_backend = network_backend
        self._slots = PrioritySlots(limit)
        self._per_host = min(per_host or limit, limit)
        self._per_host_bulk = min(per_host_bulk or self._per_host, self._per_host)
        self._host_slots: dict[OriginKey, PrioritySlots] = {}
        self._bulk_slots: dict[OriginKey, PrioritySlots] = {}
        self._lock = threading.Lock()
        self._idle: dict[OriginKey, list[httpcore.HTTPConnection]] = {}
        self._idle_count = 0
        self._active: set[httpcore.HTTPConnection] = set()
        self._closed = False

    def handle_request(
        self, request: httpcore.Request, *, bulk: bool = False, deferred: bool = False
    ) -> httpcore.Response:
        """Send ``request`` on a pooled connection; the connection returns when the response closes.

        ``bulk`` (blob bytes) counts against the host's bulk share too; ``deferred`` waits behind
        every other request for the host. Raises ``httpcore.PoolTimeout`` when no slot frees up
        within the request's pool timeout.
        """
        origin = request.url.origin
        key = (origin.scheme, origin.host, origin.port)
        timeout = request.extensions.get("timeout", {}).get("pool")
        deadline = None if timeout is None else time.monotonic() + timeout
        priority = _BULK if bulk else _DEFERRED if deferred else _ASKED
        held: list[PrioritySlots] = []
        wanted = [self._slots_of(self._bulk_slots, key, self._per_host_bulk)] if bulk else []
        wanted += [self._slots_of(self._host_slots, key, self._per_host), self._slots]
        for slots in wanted:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not slots.acquire(priority, left):
                self._release(held)
                raise httpcore.PoolTimeout(f"no connection to {origin} became free within {timeout}s")
            held.append(slots)
        try:
            connection = self._checkout(key, origin)
        except BaseException:
            self._release(held)
            raise
        try:
            response = connection.handle_request(request)
        except httpcore.ConnectionNotAvailable as exc:
            # Only a pool closed under a running request takes a connection away from it.
            self._discard_and_release(held, connection)
            raise httpcore.ConnectError("the connection was closed while in use") from exc
        except BaseException:
            self._discard_and_release(held, connection)
            raise
        # A synchronous connection's body is a synchronous iterable.
        stream = _ReturningStream(cast(Iterable[bytes], response.stream), self, key, connection, held)
        response.stream = stream
        return response

    def _slots_of(self, table: dict[OriginKey, PrioritySlots], key: OriginKey, size: int) -> PrioritySlots:
        with self._lock:
            slots = table.get(key)
            if slots is None:
                slots = table[key] = PrioritySlots(size)
            return slots

    @staticmethod
    def _release(held: list[PrioritySlots]) -> None:
        for slots in reversed(held):
            slots.release()

    def _checkout(self, key: OriginKey, origin: httpcore.Origin) -> httpcore.HTTPConnection:
        """The newest usable idle connection to ``origin``, else a new (not yet connected) one."""
        while True:
            with self._lock:
                if self._closed:
                    # A request after its session ended: the caller's mistake, not worth a retry.
                    raise RegistryError("a request was sent after its registry session was closed")
                stack = self._idle.get(key)
                connection = stack.pop() if stack else None
                if stack is not None and not stack:
                    del self._idle[key]
                if connection is None:
                    break
                self._idle_count -= 1
                self._active.add(connection)
            # Checked outside the lock: one poll, and only of the connection about to be used.
            if connection.is_available() and not connection.has_expired():
                return connection
            self._discard(connection)
        surplus: httpcore.HTTPConnection | None = None
        with self._lock:
            # Open connections, idle ones included, stay within the limit.
            if len(self._active) + self._idle_count >= self._limit:
                surplus = self._oldest_idle()
            connection = httpcore.HTTPConnection(
                origin,
                ssl_context=self._ssl_context,
                keepalive_expiry=self._keepalive_expiry,
                network_backend=self._network_backend,
            )
            self._active.add(connection)
        if surplus is not None:
            surplus.close()
        return connection

    def _checkin(
        self,
        key: OriginKey,
        connection: httpcore.HTTPConnection,
        held: list[PrioritySlots],
    ) -> None:
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
            self._release(held)

    def _oldest_idle(self) -> httpcore.HTTPConnection | None:
        """Remove and return the least recently used idle connection of the largest stack (lock held)."""
        if not self._idle:
            return None
        key = max(self._idle, key=lambda k: len(self._idle[k]))
        stack = self._idle[key]
        oldest = stack.pop(0)
        if not stack:
            del self._idle[key]
        self._idle_count -= 1
        return oldest

    def _discard_and_release(self, held: list[PrioritySlots], connection: httpcore.HTTPConnection) -> None:
        try:
            self._discard(connection)
        finally:
            self._release(held)

    def _discard(self, connection: httpcore.HTTPConnection) -> None:
        with self._lock:
            self._active.discard(connection)
        connection.close()

    def open_connections(self) -> int:
        """How many connections are open or being opened, idle ones included."""
        with self._lock:
            return len(self._active) + self._idle_count

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
        held: list[PrioritySlots],
    ) -> None:
        self._stream = stream
        self._pool = pool
        self._key = key
        self._connection = connection
        self._held = held
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
            self._pool._checkin(self._key, self._connection, self._held)
