"""The network streams under the transport, against real TLS on loopback.

A TLS read takes every record already waiting (up to what was asked), so a download costs fewer
passes through h11; what it hands on must still be the exact bytes sent, a read with nothing
coming must still time out, and TLS inside TLS (a proxy spoken to over TLS) is left to httpcore.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpcore
import pytest

from imageprep.registry.sockets import InterruptibleBackend
from tests.support.imageserve_servers import TlsFiles, make_tls_files

pytestmark = pytest.mark.integration

RECORD = 16 * 1024  # TLS carries at most this much in one record


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def _server_context(tls: TlsFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tls.certificate), str(tls.key))
    return context


def _client_context(tls: TlsFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls.ca))


@contextmanager
def _tls_server(tls: TlsFiles, serve: Callable[[ssl.SSLSocket], None]) -> Iterator[int]:
    """A one-connection TLS server on loopback running ``serve``; its port. Always stopped."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    done = threading.Event()

    def accept() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with _server_context(tls).wrap_socket(conn, server_side=True) as wrapped:
            serve(wrapped)
            done.wait(10)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        listener.close()
        thread.join(10)


def _tls_stream(tls: TlsFiles, port: int) -> httpcore.NetworkStream:
    plain = InterruptibleBackend().connect_tcp("127.0.0.1", port, timeout=5)
    return plain.start_tls(_client_context(tls), server_hostname="127.0.0.1", timeout=5)


def _read_exactly(stream: httpcore.NetworkStream, size: int, max_bytes: int = 64 * 1024) -> tuple[bytes, int]:
    pieces = []
    reads = 0
    got = 0
    while got < size:
        piece = stream.read(max_bytes, timeout=5)
        assert piece, "the stream ended early"
        pieces.append(piece)
        got += len(piece)
        reads += 1
    return b"".join(pieces), reads


def test_a_tls_read_takes_the_records_already_waiting(tls: TlsFiles) -> None:
    payload = os.urandom(4 * RECORD)
    sent = threading.Event()

    def serve(conn: ssl.SSLSocket) -> None:
        conn.sendall(payload)  # four records, all on their way before the client reads
        sent.set()

    with _tls_server(tls, serve) as port:
        stream = _tls_stream(tls, port)
        assert sent.wait(10)
        time.sleep(0.1)  # let the records reach the client's socket
        first = stream.read(64 * 1024, timeout=5)
        assert len(first) > RECORD  # more than the one record a plain TLS read hands on
        rest, _ = _read_exactly(stream, len(payload) - len(first)) if len(first) < len(payload) else (b"", 0)
        assert first + rest == payload
        stream.close()


def test_a_large_stream_arrives_byte_for_byte_in_fewer_reads_than_records(tls: TlsFiles) -> None:
    payload = os.urandom(8 * 1024 * 1024 + 12345)

    def serve(conn: ssl.SSLSocket) -> None:
        conn.sendall(payload)

    with _tls_server(tls, serve) as port:
        stream = _tls_stream(tls, port)
        received, reads = _read_exactly(stream, len(payload))
        stream.close()
    assert received == payload
    assert reads < len(payload) / RECORD


def test_a_read_with_nothing_coming_times_out_and_a_write_still_goes_out(tls: TlsFiles) -> None:
    heard: list[bytes] = []

    def serve(conn: ssl.SSLSocket) -> None:
        heard.append(conn.recv(100))

    with _tls_server(tls, serve) as port:
        stream = _tls_stream(tls, port)
        with pytest.raises(httpcore.ReadTimeout):
            stream.read(1024, timeout=0.2)
        stream.write(b"hello", timeout=5)  # a new timeout for the same socket is set again
        deadline = time.monotonic() + 5
        while not heard and time.monotonic() < deadline:
            time.sleep(0.01)
        stream.close()
    assert heard == [b"hello"]


def test_tls_inside_tls_is_read_through_httpcore(tls: TlsFiles) -> None:
    """A proxy spoken to in TLS: the inner TLS runs over the outer one, not over the socket."""
    payload = os.urandom(3 * RECORD + 7)

    def serve(outer: ssl.SSLSocket) -> None:
        # The far end of the tunnel: a second TLS server spoken through the first.
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        inner = _server_context(tls).wrap_bio(incoming, outgoing, server_side=True)

        def pump() -> None:
            if outgoing.pending:
                outer.sendall(outgoing.read())

        while True:
            try:
                inner.do_handshake()
                break
            except ssl.SSLWantReadError:
                pump()
                incoming.write(outer.recv(65536))
        pump()
        inner.write(payload)
        pump()

    with _tls_server(tls, serve) as port:
        outer = _tls_stream(tls, port)
        inner = outer.start_tls(_client_context(tls), server_hostname="127.0.0.1", timeout=5)
        received, _ = _read_exactly(inner, len(payload))
        inner.close()
    assert received == payload


def test_a_plain_stream_reads_and_writes_as_before(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    echoed = threading.Thread(target=lambda: _echo_once(listener), daemon=True)
    echoed.start()
    stream = InterruptibleBackend().connect_tcp("127.0.0.1", listener.getsockname()[1], timeout=5)
    stream.write(b"ping", timeout=5)
    assert stream.read(100, timeout=5) == b"ping"
    stream.close()
    echoed.join(10)
    listener.close()


def _echo_once(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    with conn:
        conn.sendall(conn.recv(100))
