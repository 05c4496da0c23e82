"""Timeouts on every request, a total deadline (``--timeout``), and a clean stop on Ctrl-C."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from imageprep.model.errors import TransientError
from imageprep.model.manifest import Descriptor
from imageprep.model.retry import RetryPolicy
from imageprep.registry import RegistrySession, Timeouts
from tests.reliability.catalogue import (
    corrupt_stored_blobs,
    expected_tags,
    leftover_uploads,
    mirrored_tags,
    write_environment,
)
from tests.reliability.conftest import Catalogue, Cli, finish, temporary_leftovers
from tests.support.faultproxy import Exchange, fault_proxy, is_blob_get
from tests.support.registry_server import RunningRegistry

pytestmark = pytest.mark.integration
SHORT = Timeouts(connect=0.5, read=0.5, write=0.5, pool=0.5)
ONCE = RetryPolicy(attempts=2, backoff=0.01, max_backoff=0.02)
PREVIOUS = "# the previous output\n"


@contextmanager
def stalling_server(mode: str) -> Iterator[str]:
    """A loopback server that never finishes an answer.

    ``silent``: accepts and reads, never answers. ``midbody``: answers headers and half a body, then
    nothing. ``backlog``: never accepts, and its accept queue is already full, so connecting hangs.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    host = f"127.0.0.1:{listener.getsockname()[1]}"
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            held.append(connection)
            if mode == "midbody":
                connection.recv(65536)
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                    b"Content-Length: 1000\r\n\r\n" + b"x" * 500
                )

    if mode == "backlog":
        for _ in range(4):  # fill the accept queue (some may already hang: that is the point)
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
            held.append(filler)
        thread = None
    else:
        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
    try:
        yield host
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=5)
        for connection in held:
            connection.close()
        listener.close()


@pytest.mark.parametrize("mode", ["silent", "midbody", "backlog"])
def test_a_stalled_registry_fails_within_the_request_timeouts(mode: str) -> None:
    descriptor = Descriptor("application/octet-stream", "sha256:" + "0" * 64, 1000)
    with stalling_server(mode) as host, RegistrySession(timeouts=SHORT, retry=ONCE) as session:
        started = time.monotonic()
        with pytest.raises(TransientError, match=host) as caught:
            if mode == "midbody":
                session.client(host).read_blob_bytes("a/b", descriptor)
            else:
                session.client(host).get_manifest("a/b", "latest")
        elapsed = time.monotonic() - started
    assert "Traceback" not in str(caught.value)
    # probe (https, then http) and a few bounded attempts, each at most 0.5 s; nowhere near the defaults
    assert elapsed < 10, elapsed


def test_timeout_stops_a_prepare_stuck_in_tag_discovery(cli: Cli, tmp_path: Path) -> None:
    with stalling_server("silent") as host:
        env = write_environment(tmp_path / "env.yaml", host, "127.0.0.1:9")
        (tmp_path / "out.yaml").write_text(PREVIOUS)
        started = time.monotonic()
        process = cli("prepare", "-e", str(env), "--output-env-file", "out.yaml", "--timeout", "2")
        code, _, stderr = finish(process)
        elapsed = time.monotonic() - started
    assert code == 5, stderr
    assert "time limit of 2s" in stderr
    assert "Traceback" not in stderr
    assert elapsed < 15, elapsed  # the default read timeout alone is 60 s
    assert (tmp_path / "out.yaml").read_text() == PREVIOUS
    assert temporary_leftovers(tmp_path) == []


def test_timeout_stops_a_slow_copy_and_leaves_the_output_alone(
    cli: Cli, tmp_path: Path, catalogue: Catalogue, destination: RunningRegistry
) -> None:
    def slow_blobs(exchange: Exchange) -> str | None:
        return "stall" if is_blob_get(exchange) else None

    with fault_proxy(catalogue.registry.host, slow_blobs, stall_seconds=6) as proxy:
        env = write_environment(tmp_path / "env.yaml", proxy.host, destination.host, discover=False)
        (tmp_path / "out.yaml").write_text(PREVIOUS)
        process = cli("prepare", "-e", str(env), "--output-env-file", "out.yaml", "--timeout", "3")
        code, _, stderr = finish(process)
    assert code == 5, stderr
    assert "time limit of 3s for this run ran out" in stderr
    assert "Traceback" not in stderr
    assert (tmp_path / "out.yaml").read_text() == PREVIOUS
    assert temporary_leftovers(tmp_path) == []
    assert corrupt_stored_blobs(destination) == []


def test_ctrl_c_mid_copy_stops_cleanly_with_exit_130(
    cli: Cli, tmp_path: Path, catalogue: Catalogue, destination: RunningRegistry
) -> None:
    first = threading.Lock()

    def hold_first_blob(exchange: Exchange) -> str | None:
        return "hold" if is_blob_get(exchange) and first.acquire(blocking=False) else None

    with fault_proxy(catalogue.registry.host, hold_first_blob) as proxy:
        env = write_environment(tmp_path / "env.yaml", proxy.host, destination.host, discover=False)
        (tmp_path / "out.yaml").write_text(PREVIOUS)
        process = cli("prepare", "-e", str(env), "--output-env-file", "out.yaml")
        assert proxy.held.wait(60), "the copy never reached a blob"
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proxy.release.set()
        code, _, stderr = finish(process)
    assert code == 130, stderr
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    assert (tmp_path / "out.yaml").read_text() == PREVIOUS
    assert temporary_leftovers(tmp_path) == []
    assert leftover_uploads(destination) == []
    assert corrupt_stored_blobs(destination) == []
    wanted = expected_tags(catalogue.published, discover=False)
    copied = [name for name, digest in mirrored_tags(destination, wanted).items() if digest is not None]
    assert len(copied) < len(wanted) - 2  # it stopped: most images were never started


def test_ctrl_c_during_a_stalled_read_stops_at_once(
    cli: Cli, tmp_path: Path, catalogue: Catalogue, destination: RunningRegistry
) -> None:
    """The source stops sending half-way through a blob and never goes on: Ctrl-C must not wait
    out the read timeout (a minute), it cuts the stalled connection."""
    first = threading.Lock()

    def stall_first_blob(exchange: Exchange) -> str | None:
        return "hold" if is_blob_get(exchange) and first.acquire(blocking=False) else None

    with fault_proxy(catalogue.registry.host, stall_first_blob) as proxy:
        env = write_environment(tmp_path / "env.yaml", proxy.host, destination.host, discover=False)
        process = cli("prepare", "-e", str(env), "--output-env-file", "out.yaml", "--concurrency", "1")
        assert proxy.held.wait(60), "the copy never reached a blob"
        time.sleep(0.5)  # the client is in its read now
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        code, _, stderr = finish(process)
        waited = time.monotonic() - sent
    assert code == 130, stderr
    assert "Traceback" not in stderr
    assert waited < 15, f"Ctrl-C took {waited:.1f}s: it waited for the stalled read"
    assert not (tmp_path / "out.yaml").exists()
