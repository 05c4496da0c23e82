"""How ``imageprep serve`` treats connections: kept open, pipelined, and never held by a slow client.

Timeouts are set to fractions of a second here so that each rule can be seen; the tests wait for
what the server does (with generous bounds), they do not time it.
"""

from __future__ import annotations

import json
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imageprep.imageserve import ImageServeTree
from imageprep.imageserve.eventloop import Limits
from imageprep.imageserve.manage import delete_image
from imageprep.transfer import CopyJob, copy_images
from tests.support.freshpython import run_python
from tests.support.imagegen import GeneratedImage, make_image, make_layer, random_layer
from tests.support.imageserve_running import RawConnection, serving_in_thread
from tests.support.memory_store import MemoryStore

REPOSITORY = "t/conn"
SHORT = Limits(head_timeout=0.5, idle_timeout=0.5, send_timeout=0.5, max_connections=64)
# A TLS 1.2 ClientHello's first bytes, as a client trying HTTPS first sends them.
CLIENT_HELLO = bytes.fromhex("16030100c4010000c00303") + bytes(range(32)) + b"\x00\x02\x13\x01\x01\x00"


@pytest.fixture(scope="module")
def image() -> GeneratedImage:
    return make_image({"name": "conn"}, [random_layer(2_000_000, "conn-big")])


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, image: GeneratedImage) -> Path:
    source = MemoryStore("memory")
    source.add_image(REPOSITORY, "latest", image)
    tree = ImageServeTree(tmp_path_factory.mktemp("conn") / "tree")
    assert not copy_images([CopyJob(source, REPOSITORY, "latest", tree, REPOSITORY, "latest")]).failed
    return tree.root


@pytest.fixture
def address(root: Path) -> Iterator[tuple[str, int]]:
    with serving_in_thread(root, limits=SHORT) as server:
        yield server.server_address


def test_one_connection_carries_many_requests(address: tuple[str, int], image: GeneratedImage) -> None:
    connection = RawConnection(address)
    try:
        for _ in range(200):
            answer = connection.get(f"/v2/{REPOSITORY}/manifests/latest")
            assert (answer.status, answer.body) == (200, image.manifest)
            assert "connection" not in answer.headers
        blob = connection.get(f"/v2/{REPOSITORY}/blobs/{image.layers[0].digest}")
        assert blob.body == image.layers[0].data
        assert connection.get("/v2/").status == 200
    finally:
        connection.close()


def test_pipelined_requests_are_answered_in_order(address: tuple[str, int], image: GeneratedImage) -> None:
    connection = RawConnection(address)
    paths = [
        f"/v2/{REPOSITORY}/blobs/{image.layers[0].digest}",
        f"/v2/{REPOSITORY}/manifests/latest",
        f"/v2/{REPOSITORY}/manifests/missing",
        f"/v2/{REPOSITORY}/blobs/{image.config.digest}",
    ]
    try:
        connection.send(b"".join(f"GET {path} HTTP/1.1\r\nHost: r\r\n\r\n".encode() for path in paths))
        answers = [connection.answer() for _ in paths]
    finally:
        connection.close()
    assert [a.status for a in answers] == [200, 200, 404, 200]
    assert answers[0].body == image.layers[0].data
    assert answers[1].body == image.manifest
    assert json.loads(answers[2].body)["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert answers[3].body == image.config.data


def test_http10_closes_after_the_answer_unless_asked_to_keep_alive(address: tuple[str, int]) -> None:
    plain = RawConnection(address)
    kept = RawConnection(address)
    try:
        plain.send(b"GET /v2/ HTTP/1.0\r\n\r\n")
        assert plain.answer().headers["connection"] == "close"
        assert plain.closed_by_server()
        kept.send(b"GET /v2/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert kept.answer().headers["connection"] == "keep-alive"
        kept.send(b"GET /v2/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert kept.answer().status == 200
    finally:
        plain.close()
        kept.close()


def test_a_client_that_stops_reading_is_dropped_while_others_are_served(
    address: tuple[str, int], image: GeneratedImage
) -> None:
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(address)
    blob = f"/v2/{REPOSITORY}/blobs/{image.layers[0].digest}"
    requests = 20
    stalled.sendall(f"GET {blob} HTTP/1.1\r\nHost: r\r\n\r\n".encode() * requests)
    other = RawConnection(address)
    try:
        # The stalled client reads nothing; meanwhile another is answered in full, again and again.
        for _ in range(5):
            assert other.get(blob).body == image.layers[0].data
        time.sleep(4 * SHORT.send_timeout)  # long enough for the server to give up on it
        stalled.settimeout(30)
        received = 0
        with pytest.raises((ConnectionResetError, EOFError)):
            while True:
                data = stalled.recv(1 << 20)
                if not data:
                    raise EOFError
                received += len(data)
        # The server gave up on it long before it had sent all it was asked for.
        assert received < requests * len(image.layers[0].data)
    finally:
        stalled.close()
        other.close()


def test_slow_heads_and_idle_connections_are_closed(address: tuple[str, int]) -> None:
    slow = RawConnection(address, timeout=30)
    try:
        slow.send(b"GET /v2/ HTTP/1.1\r\nHost: r\r\n")  # and never the blank line
        assert slow.closed_by_server()
    finally:
        slow.close()
    idle = RawConnection(address, timeout=30)
    try:
        assert idle.get("/v2/").status == 200
        assert idle.closed_by_server()
    finally:
        idle.close()


def test_at_the_connection_limit_a_new_client_waits_for_a_free_slot(root: Path) -> None:
    limits = Limits(idle_timeout=60.0, max_connections=2)
    with serving_in_thread(root, limits=limits) as server:
        first = RawConnection(server.server_address)
        second = RawConnection(server.server_address)
        third = RawConnection(server.server_address, timeout=0.5)
        try:
            assert first.get("/v2/").status == 200
            assert second.get("/v2/").status == 200
            third.send(b"GET /v2/ HTTP/1.1\r\nHost: r\r\n\r\n")
            with pytest.raises(TimeoutError):
                third.answer()  # waiting in the listen backlog, not refused
            first.close()
            third.sock.settimeout(10)
            assert third.answer().status == 200
        finally:
            for connection in (first, second, third):
                connection.close()


def test_a_tls_hello_on_the_plain_port_is_answered_at_once(address: tuple[str, int]) -> None:
    connection = RawConnection(address)
    try:
        connection.send(CLIENT_HELLO)  # a client trying HTTPS first falls back when it sees HTTP
        answer = connection.answer()
        assert answer.status == 400
        assert answer.headers["content-type"] == "application/json"
        assert connection.closed_by_server()
    finally:
        connection.close()


def test_an_oversized_head_is_refused(address: tuple[str, int]) -> None:
    connection = RawConnection(address)
    try:
        connection.send(b"GET /v2/ HTTP/1.1\r\n" + b"X-Filler: " + b"x" * 70_000 + b"\r\n\r\n")
        assert connection.answer().status == 431
    finally:
        connection.close()


FIT_OPEN_FILES = """
import resource, sys
from imageprep.imageserve.eventloop import Limits
from imageprep.imageserve.server import _fit_open_files
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1] if sys.argv[1] == "unchanged" else int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
limits = _fit_open_files(Limits(max_connections=1024))
print(limits.max_connections, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def test_the_open_files_limit_is_raised_or_the_connections_fit_under_it() -> None:
    # The soft limit goes up to what 1024 connections need when the hard limit allows it ...
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] >= 2 * 1024 + 64:
        assert run_python(FIT_OPEN_FILES, "unchanged").split() == ["1024", str(2 * 1024 + 64)]
    # ... and where it cannot, fewer connections are taken, two descriptors each.
    assert run_python(FIT_OPEN_FILES, "512").split() == [str((512 - 64) // 2), "512"]


def test_answers_follow_the_tree_as_prepare_and_delete_change_it(tmp_path: Path) -> None:
    """Manifests are kept in memory, but every answer is checked against the files first."""
    first = make_image({"name": "first"}, [make_layer({"etc/first": b"1"})])
    second = make_image({"name": "second"}, [make_layer({"etc/second": b"2"})])
    source = MemoryStore("memory")
    source.add_image("t/live", "v1", first)
    source.add_image("t/live", "v2", second)
    tree = ImageServeTree(tmp_path / "tree")
    assert not copy_images([CopyJob(source, "t/live", "v1", tree, "t/live", "latest")]).failed
    with serving_in_thread(tree.root) as server:
        connection = RawConnection(server.server_address)
        try:
            assert connection.get("/v2/t/live/manifests/latest").body == first.manifest
            assert connection.get(f"/v2/t/live/manifests/{first.digest}").status == 200
            # The tag moves to another image while the server runs.
            assert not copy_images([CopyJob(source, "t/live", "v2", tree, "t/live", "latest")]).failed
            moved = connection.get("/v2/t/live/manifests/latest")
            assert (moved.body, moved.headers["docker-content-digest"]) == (second.manifest, second.digest)
            # And is deleted: the tag and the manifests only it used are gone at once.
            delete_image(tree, "t/live", "latest")
            for path in ("/v2/t/live/manifests/latest", f"/v2/t/live/manifests/{second.digest}"):
                assert connection.get(path).status == 404, path
        finally:
            connection.close()
