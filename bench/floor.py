"""The benchmark's yardstick: the least work any client can do to copy the set, and how fast that goes.

``python bench/floor.py [--tls-ca FILE] [--threads N] [--tag-lists] cold|warm SOURCE DESTINATION
REPOSITORY...`` makes exactly the requests the copy needs and nothing else: cold, per image one
manifest GET, one upload (POST + PUT) per blob no other image has uploaded yet, one mount per blob
another image uploaded, one manifest PUT; warm, per image one manifest GET and one manifest HEAD,
and with ``--tag-lists`` the source's tag list too (the one request more a tool that brings
signatures along makes per repository). It speaks HTTP/1.1 over raw keep-alive sockets (no HTTP
library; TLS to the source with ``--tls-ca``), one connection per thread and registry, still
hashes every blob it streams, and stops at the first unexpected answer. It is not a tool (no
auth, retries, manifest lists or error handling); it measures how fast the registries (and the
bench's link) let any client go on this machine, so the benchmark can say how much of a tool's
time is the tool's own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import ssl
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

TAG = "current-tripleo"
THREADS = 8
CHUNK = 64 * 1024
ACCEPT = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
Headers = dict[str, str]


class Connection:
    """One keep-alive HTTP/1.1 connection; bodies framed by Content-Length (all a registry sends here)."""

    def __init__(self, host: str, tls: ssl.SSLContext | None = None) -> None:
        name, _, port = host.rpartition(":")
        self.host = host
        plain = socket.create_connection((name, int(port)), timeout=60)
        plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket = tls.wrap_socket(plain, server_hostname=name) if tls is not None else plain
        self._buffer = b""
        self._left = 0

    def request(
        self,
        method: str,
        path: str,
        headers: Headers | None = None,
        body: bytes | Iterator[bytes] = b"",
        size: int = 0,
    ) -> tuple[int, Headers]:
        """Send a request (an iterator body of ``size`` bytes is streamed); the status and headers back."""
        length = len(body) if isinstance(body, bytes) else size
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", f"Content-Length: {length}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if isinstance(body, bytes):
            self._socket.sendall(head + body)
        else:
            self._socket.sendall(head)
            for piece in body:
                self._socket.sendall(piece)
        return self._response(method)

    def _response(self, method: str) -> tuple[int, Headers]:
        while b"\r\n\r\n" not in self._buffer:
            received = self._socket.recv(CHUNK)
            if not received:
                raise ConnectionError(f"{self.host} closed the connection")
            self._buffer += received
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self._left = 0 if method == "HEAD" else int(headers.get("content-length", "0"))
        return int(status_line.split()[1]), headers

    def body(self) -> Iterator[bytes]:
        """The answer's body in pieces (must be read before the next request)."""
        if self._buffer and self._left:
            piece, self._buffer = self._buffer[: self._left], self._buffer[self._left :]
            self._left -= len(piece)
            yield piece
        while self._left:
            piece = self._socket.recv(min(CHUNK, self._left))
            if not piece:
                raise ConnectionError(f"{self.host} closed the connection mid-body")
            self._left -= len(piece)
            yield piece

    def read(self) -> bytes:
        return b"".join(self.body())


class Floor:
    """Copies (cold) or checks (warm) every repository; one connection per thread and registry."""

    def __init__(
        self, source: str, destination: str, *, tls: ssl.SSLContext | None = None, tag_lists: bool = False
    ) -> None:
        self.source = source
        self.destination = destination
        self._tls = tls
        self._tag_lists = tag_lists
        self._local = threading.local()
        self._lock = threading.Lock()
        self._uploads: dict[str, tuple[str, threading.Event]] = {}

    def _connection(self, host: str) -> Connection:
        connections: dict[str, Connection] = self._local.__dict__.setdefault("connections", {})
        if host not in connections:
            connections[host] = Connection(host, self._tls if host == self.source else None)
        return connections[host]

    def _manifest(self, repository: str) -> tuple[bytes, dict[str, object], str]:
        source = self._connection(self.source)
        status, headers = source.request("GET", f"/v2/{repository}/manifests/{TAG}", {"Accept": ACCEPT})
        raw = source.read()
        expect(status == 200, f"GET manifest of {repository}: {status}")
        return raw, json.loads(raw), headers.get("docker-content-digest", "")

    def check(self, repository: str) -> None:
        """Warm: the destination holds the source's manifest under the tag."""
        _, _, digest = self._manifest(repository)
        status, headers = self._connection(self.destination).request(
            "HEAD", f"/v2/{repository}/manifests/{TAG}", {"Accept": ACCEPT}
        )
        in_place = status == 200 and headers.get("docker-content-digest") == digest
        expect(in_place, f"{repository} is not in place")
        if self._tag_lists:
            source = self._connection(self.source)
            status, _ = source.request("GET", f"/v2/{repository}/tags/list")
            listed = source.read()
            expect(status == 200, f"GET tag list of {repository}: {status}")
            json.loads(listed)

    def copy(self, repository: str) -> None:
        """Cold: every blob uploaded once across the run, mounted elsewhere, then the manifest."""
        raw, manifest, _ = self._manifest(repository)
        blobs = [manifest["config"], *manifest["layers"]]  # type: ignore[list-item]
        mine, theirs = [], []
        with self._lock:
            for blob in blobs:
                if blob["digest"] in self._uploads:
                    theirs.append(blob)
                else:
                    self._uploads[blob["digest"]] = (repository, threading.Event())
                    mine.append(blob)
        for blob in mine:
            try:
                self._upload(repository, blob["digest"], blob["size"])
            finally:
                self._uploads[blob["digest"]][1].set()  # a failed upload fails the run: nobody waits
        destination = self._connection(self.destination)
        for blob in theirs:
            holder, uploaded = self._uploads[blob["digest"]]
            expect(uploaded.wait(600), f"upload of {blob['digest']} never finished")
            status, _ = destination.request(
                "POST", f"/v2/{repository}/blobs/uploads/?mount={blob['digest']}&from={holder}"
            )
            destination.read()
            expect(status == 201, f"mount into {repository}: {status}")
        status, _ = destination.request(
            "PUT", f"/v2/{repository}/manifests/{TAG}", {"Content-Type": str(manifest["mediaType"])}, raw
        )
        destination.read()
        expect(status == 201, f"PUT manifest of {repository}: {status}")

    def _upload(self, repository: str, digest: str, size: int) -> None:
        source, destination = self._connection(self.source), self._connection(self.destination)
        status, headers = destination.request("POST", f"/v2/{repository}/blobs/uploads/")
        destination.read()
        expect(status == 202, f"POST upload to {repository}: {status}")
        location = headers["location"].split(self.destination, 1)[-1]
        status, _ = source.request("GET", f"/v2/{repository}/blobs/{digest}")
        expect(status == 200, f"GET blob {digest}: {status}")
        hasher = hashlib.sha256()

        def hashed() -> Iterator[bytes]:
            for piece in source.body():
                hasher.update(piece)
                yield piece

        separator = "&" if "?" in location else "?"
        status, _ = destination.request(
            "PUT",
            f"{location}{separator}digest={digest}",
            {"Content-Type": "application/octet-stream"},
            hashed(),
            size,
        )
        destination.read()
        expect(status == 201 and f"sha256:{hasher.hexdigest()}" == digest, f"PUT blob {digest}: {status}")


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise RuntimeError(f"floor client: {what}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--tls-ca", help="speak TLS to the source, trusting this CA file")
    parser.add_argument("--threads", type=int, default=THREADS, help=f"default {THREADS}")
    parser.add_argument("--tag-lists", action="store_true", help="warm: also list each repository's tags")
    parser.add_argument("phase", choices=("cold", "warm"))
    parser.add_argument("source")
    parser.add_argument("destination")
    parser.add_argument("repositories", nargs="+")
    args = parser.parse_args(argv)
    tls = ssl.create_default_context(cafile=args.tls_ca) if args.tls_ca else None
    floor = Floor(args.source, args.destination, tls=tls, tag_lists=args.tag_lists)
    work = floor.copy if args.phase == "cold" else floor.check
    with ThreadPoolExecutor(args.threads) as threads:
        list(threads.map(work, args.repositories))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
