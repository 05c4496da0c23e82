"""A far-away registry on loopback: a TCP proxy that adds a round trip and shares one downlink.

Every byte is delivered ``delay`` seconds after it arrived, in each direction, so a request and
its answer cost one round trip (``2 * delay``); a new connection first waits one round trip, as its
TCP handshake would (TLS, relayed byte for byte, pays its own round trips on top). Everything the
source sends towards the client shares one ``bandwidth`` (bytes per second), whatever the number of
connections, as the downlink of an undercloud does. The downlink's buffer holds one round trip of
bytes (the usual rule for a bottleneck's queue), for all connections together: when it is full the
link stops reading from the source until there is room, as TCP's flow control holds back a sender,
so a new answer waits behind at most one round trip of other connections' bytes, however many
connections are open. Uploads are not capped. The proxy counts the connections it accepted, and
runs on its own event-loop thread; use it as a context manager.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

CHUNK = 64 * 1024
# What one direction of one connection holds on its way, at most (the network's buffers).
QUEUED_LIMIT = 4 * 1024 * 1024


@dataclass
class LinkStats:
    connections: int = 0
    opened_at: list[float] = field(default_factory=list)  # time.monotonic() of each connection
    sent_at: list[float] = field(default_factory=list)  # when each piece from the client arrived
    down_at: list[tuple[float, int]] = field(default_factory=list)  # (departure, bytes) towards it
    bytes_down: int = 0
    bytes_up: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class _Downlink:
    """The shared, capped direction: when the next byte can leave, and room in its buffer."""

    def __init__(self, bandwidth: float, buffer_seconds: float) -> None:
        self.bandwidth = bandwidth
        self.buffer_seconds = buffer_seconds
        self.free_at = 0.0

    def departure(self, size: int, now: float) -> float:
        start = max(now, self.free_at)
        self.free_at = start + size / self.bandwidth
        return self.free_at

    async def room(self) -> None:
        """Wait until what is queued to leave drains below the buffer's size."""
        while (queued := self.free_at - time.monotonic()) > self.buffer_seconds:
            await asyncio.sleep(queued - self.buffer_seconds)


class WanLink:
    """``127.0.0.1:PORT`` that reaches ``upstream`` (``127.0.0.1:PORT``) over the emulated link."""

    def __init__(self, upstream: str, *, delay: float, bandwidth: float) -> None:
        if not upstream.startswith("127."):
            raise ValueError("the link only leads to loopback")
        self.upstream = upstream
        self.delay = delay
        self.bandwidth = bandwidth
        self.stats = LinkStats()
        self.host = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._downlink = _Downlink(bandwidth, buffer_seconds=2 * delay)

    def __enter__(self) -> WanLink:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def reset_counts(self) -> None:
        with self.stats._lock:
            self.stats.connections = self.stats.bytes_down = self.stats.bytes_up = 0
            self.stats.opened_at.clear()
            self.stats.sent_at.clear()
            self.stats.down_at.clear()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.host = f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in asyncio.all_tasks(self._loop):
            if task is not asyncio.current_task():
                task.cancel()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        started = time.monotonic()
        with self.stats._lock:
            self.stats.connections += 1
            self.stats.opened_at.append(started)
        host, _, port = self.upstream.rpartition(":")
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            client_writer.close()
            return
        # The handshake's round trip: nothing flows before it is over.
        await asyncio.sleep(max(0.0, started + 2 * self.delay - time.monotonic()))
        up = asyncio.ensure_future(self._pump(client_reader, upstream_writer, None, "up"))
        down = asyncio.ensure_future(
            self._pump(upstream_reader, client_writer, self._downlink.departure, "down")
        )
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            await asyncio.wait({up, down}, timeout=5)
        except asyncio.CancelledError:
            pass  # the link is stopping: close this connection as any other
        for task in (up, down):
            task.cancel()
        for writer in (client_writer, upstream_writer):
            writer.close()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        departure: Callable[[int, float], float] | None,
        direction: str,
    ) -> None:
        """Move bytes one way, each chunk ``delay`` after it left (the downlink: after its turn)."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        room = asyncio.Semaphore(QUEUED_LIMIT // CHUNK)

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
                room.release()

        delivering = asyncio.ensure_future(deliver())
        try:
            while True:
                await room.acquire()
                if departure is not None:
                    await self._downlink.room()
                data = await reader.read(CHUNK)
                now = time.monotonic()
                leaves = departure(len(data), now) if departure is not None and data else now
                with self.stats._lock:
                    if direction == "down":
                        self.stats.bytes_down += len(data)
                        self.stats.down_at.append((leaves, len(data)))
                    else:
                        self.stats.bytes_up += len(data)
                        self.stats.sent_at.append(now)
                queue.put_nowait((leaves + self.delay, data))
                if not data:
                    break
            await delivering
        except (ConnectionError, asyncio.CancelledError):
            delivering.cancel()
            raise
