"""The serving benchmark's client: raw keep-alive HTTP/1.1, every body hashed and checked.

Written on sockets rather than an HTTP library so that the client's own cost per request is
small and the same for every server; what it measures is the servers. Three workloads:

* :func:`latency`: one connection, one request at a time, each timed.
* :func:`hammer`: many connections from one process (an epoll loop), each with one request
  outstanding at a time, for a fixed time; counts answers.
* :func:`pull_threads`: threads of one process, each a container engine pulling images (the
  manifest by tag, then its config and every layer by digest) for a fixed time; counts bytes.

Every answer must be 200 and its body must hash to the digest it was asked for (or, for a tag,
to the digest the tag has); anything else is an error and the run is not valid.
"""

from __future__ import annotations

import hashlib
import json
import select
import socket
import statistics
import threading
import time
from dataclasses import dataclass, field

ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    )
)
RECV_BYTES = 1 << 20
TIMEOUT = 30.0


class BenchError(Exception):
    """A server answered something other than the right bytes."""


@dataclass(frozen=True)
class Image:
    """What a pull of ``repository:tag`` must find."""

    repository: str
    tag: str
    digest: str


@dataclass
class Tally:
    """One worker's counts and the span of time it measured over."""

    requests: int = 0
    bytes: int = 0
    started: float = 0.0
    ended: float = 0.0
    errors: list[str] = field(default_factory=list)


def _request(address: tuple[str, int], path: str, accept: str | None) -> bytes:
    extra = f"Accept: {accept}\r\n" if accept else ""
    return (
        f"GET {path} HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\nUser-Agent: bench\r\n{extra}\r\n".encode()
    )


def _head_fields(head: bytes) -> tuple[int, dict[bytes, bytes]]:
    status_line, _, rest = head.partition(b"\r\n")
    fields = {}
    for line in rest.split(b"\r\n"):
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    return int(status_line.split(b" ", 2)[1]), fields


class Client:
    """One keep-alive connection, reopened when the server closes it (as Apache does every 100)."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.sock: socket.socket | None = None
        self.buffer = bytearray(RECV_BYTES)
        self.view = memoryview(self.buffer)
        self.leftover = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.leftover = b""
        return sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def get(self, path: str, accept: str | None = None, *, keep: bool = False) -> tuple[str, int, bytes]:
        """GET ``path``: the body's sha256 digest, its length, and the body itself when ``keep``."""
        request = _request(self.address, path, accept)
        for attempt in (1, 2):
            fresh = self.sock is None
            sock = self.sock or self._connect()
            try:
                sock.sendall(request)
                return self._answer(sock, path, keep)
            except (ConnectionError, _Closed):
                self.close()
                if fresh or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _answer(self, sock: socket.socket, path: str, keep: bool) -> tuple[str, int, bytes]:
        data = self.leftover
        while b"\r\n\r\n" not in data:
            count = sock.recv_into(self.buffer)
            if not count:
                raise _Closed
            data += self.view[:count]
        head, _, body = data.partition(b"\r\n\r\n")
        status, fields = _head_fields(head)
        if status != 200:
            raise BenchError(f"GET {path}: HTTP {status}")
        length = int(fields[b"content-length"])
        hasher = hashlib.sha256(body[:length])
        kept = [body[:length]] if keep else []
        received = min(len(body), length)
        self.leftover = body[length:]
        while received < length:
            count = sock.recv_into(self.view[: min(RECV_BYTES, length - received)])
            if not count:
                raise BenchError(f"GET {path}: connection closed after {received} of {length} bytes")
            hasher.update(self.view[:count])
            if keep:
                kept.append(bytes(self.view[:count]))
            received += count
        if fields.get(b"connection", b"").lower() == b"close":
            self.close()
        return "sha256:" + hasher.hexdigest(), length, b"".join(kept)


class _Closed(Exception):
    """The server closed a kept-alive connection before answering (try once more on a new one)."""


def latency(address: tuple[str, int], image: Image, count: int) -> list[float]:
    """Seconds for each of ``count`` GETs of the image's manifest by tag on one connection."""
    client = Client(address)
    path = f"/v2/{image.repository}/manifests/{image.tag}"
    times = []
    try:
        for _ in range(count // 10):  # warm up the connection and the server
            client.get(path, ACCEPT)
        for _ in range(count):
            started = time.perf_counter()
            digest, _, _ = client.get(path, ACCEPT)
            times.append(time.perf_counter() - started)
            if digest != image.digest:
                raise BenchError(f"GET {path}: body hashes to {digest}, the tag has {image.digest}")
    finally:
        client.close()
    return times


def pull(client: Client, image: Image, tally: Tally) -> None:
    """What a container engine does: the manifest by tag, then the config and every layer."""
    base = f"/v2/{image.repository}"
    digest, size, body = client.get(f"{base}/manifests/{image.tag}", ACCEPT, keep=True)
    if digest != image.digest:
        raise BenchError(
            f"{image.repository}:{image.tag}: manifest hashes to {digest}, wanted {image.digest}"
        )
    tally.requests += 1
    tally.bytes += size
    manifest = json.loads(body)
    for blob in [manifest["config"], *manifest["layers"]]:
        digest, size, _ = client.get(f"{base}/blobs/{blob['digest']}")
        if digest != blob["digest"] or size != blob["size"]:
            raise BenchError(f"{base} blob {blob['digest']}: got {size} bytes hashing to {digest}")
        tally.requests += 1
        tally.bytes += size


def _pull_until(
    address: tuple[str, int], images: list[Image], offset: int, until: float, tally: Tally
) -> None:
    client = Client(address)
    try:
        number = offset
        while time.monotonic() < until:
            pull(client, images[number % len(images)], tally)
            number += 1
    except (BenchError, OSError, ValueError, KeyError) as error:
        tally.errors.append(f"{type(error).__name__}: {error}")
    finally:
        client.close()
        tally.ended = time.monotonic()


def pull_threads(
    address: tuple[str, int], images: list[Image], threads: int, first: int, start: float, seconds: float
) -> Tally:
    """``threads`` pullers from ``start`` for ``seconds`` (each finishes its pull); their sum."""
    tallies = [Tally() for _ in range(threads)]
    until = start + seconds
    workers = [
        threading.Thread(
            target=_pull_until, args=(address, images, first + n, until, tallies[n]), daemon=True
        )
        for n in range(threads)
    ]
    time.sleep(max(start - time.monotonic(), 0))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(seconds + 10 * TIMEOUT)
    total = Tally(started=start, ended=max(t.ended for t in tallies) if tallies else start)
    for tally in tallies:
        total.requests += tally.requests
        total.bytes += tally.bytes
        total.errors += tally.errors
    if any(worker.is_alive() for worker in workers):
        total.errors.append("a puller did not finish")
    return total


@dataclass
class _Slot:
    sock: socket.socket
    data: bytearray = field(default_factory=bytearray)


def hammer(address: tuple[str, int], image: Image, connections: int, start: float, seconds: float) -> Tally:
    """``connections`` keep-alive connections GETting the manifest by tag, from ``start`` for ``seconds``."""
    request = _request(address, f"/v2/{image.repository}/manifests/{image.tag}", ACCEPT)
    poller = select.epoll()
    slots: dict[int, _Slot] = {}
    tally = Tally(started=start)

    def open_slot() -> None:
        sock = socket.create_connection(address, timeout=TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        slots[sock.fileno()] = _Slot(sock)
        poller.register(sock.fileno(), select.EPOLLIN)
        sock.send(request)

    def close_slot(fd: int) -> None:
        poller.unregister(fd)
        slots.pop(fd).sock.close()

    time.sleep(max(start - time.monotonic(), 0))
    until = start + seconds
    try:
        for _ in range(connections):
            open_slot()
        while time.monotonic() < until:
            for fd, _ in poller.poll(1.0):
                slot = slots[fd]
                chunk = slot.sock.recv(RECV_BYTES)
                if not chunk:
                    raise BenchError("the server closed a connection without answering")
                slot.data += chunk
                end = slot.data.find(b"\r\n\r\n")
                if end < 0:
                    continue
                status, fields = _head_fields(bytes(slot.data[:end]))
                length = int(fields.get(b"content-length", b"0"))
                if len(slot.data) < end + 4 + length:
                    continue
                body = bytes(slot.data[end + 4 : end + 4 + length])
                del slot.data[: end + 4 + length]
                if status != 200 or "sha256:" + hashlib.sha256(body).hexdigest() != image.digest:
                    raise BenchError(f"manifest answer {status} with a body that is not {image.digest}")
                tally.requests += 1
                tally.bytes += length
                if fields.get(b"connection", b"").lower() == b"close":
                    close_slot(fd)
                    open_slot()
                else:
                    slot.sock.send(request)
    except (BenchError, OSError, ValueError) as error:
        tally.errors.append(f"{type(error).__name__}: {error}")
    finally:
        tally.ended = time.monotonic()
        for fd in list(slots):
            close_slot(fd)
        poller.close()
    return tally


def summary(times: list[float]) -> tuple[float, float]:
    """Median and 90th percentile of ``times``."""
    ordered = sorted(times)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.9)]
