"""The keep-alive pool under the transport, against a real HTTP server on loopback.

Each recorded request carries the client's port, so the tests can tell how many TCP connections
the pool opened and which requests shared one.
"""

from __future__ import annotations

import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpcore
import pytest

from imageprep.model.errors import RegistryError
from imageprep.registry.pool import ConnectionPool
from tests.support.httpserver import Recorded, Reply, scripted_server

pytestmark = pytest.mark.integration


def _pool(limit: int = 4, keepalive: float = 5.0) -> ConnectionPool:
    return ConnectionPool(ssl.create_default_context(), limit=limit, keepalive_expiry=keepalive)


def _get(
    pool: ConnectionPool, url: str, pool_timeout: float = 5.0, *, bulk: bool = False, deferred: bool = False
) -> bytes:
    request = httpcore.Request(
        "GET",
        url,
        headers=[(b"Host", url.split("/")[2].encode())],
        extensions={"timeout": {"pool": pool_timeout}},
    )
    response = pool.handle_request(request, bulk=bulk, deferred=deferred)
    try:
        return b"".join(response.iter_stream())
    finally:
        response.close()


def test_sequential_requests_to_one_origin_share_one_connection() -> None:
    with scripted_server(lambda r: Reply(200, body=b"ok")) as server:
        pool = _pool()
        for _ in range(5):
            assert _get(pool, f"{server.url}/v2/") == b"ok"
        pool.close()
    assert len({r.peer_port for r in server.requests}) == 1


def test_concurrent_requests_never_exceed_the_limit() -> None:
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def slow(_: Recorded) -> Reply:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.05)
        with lock:
            in_flight -= 1
        return Reply(200, body=b"ok")

    with scripted_server(slow) as server:
        pool = _pool(limit=3)
        with ThreadPoolExecutor(8) as threads:
            assert all(
                body == b"ok" for body in threads.map(lambda _: _get(pool, f"{server.url}/"), range(12))
            )
        pool.close()
    assert peak <= 3
    assert len({r.peer_port for r in server.requests}) <= 3  # connections were reused, not churned


def test_a_request_waiting_longer_than_the_pool_timeout_gets_a_pool_timeout() -> None:
    release = threading.Event()

    def held(_: Recorded) -> Reply:
        release.wait(5)
        return Reply(200)

    with scripted_server(held) as server:
        pool = _pool(limit=1)
        with ThreadPoolExecutor(1) as threads:
            first = threads.submit(_get, pool, f"{server.url}/")
            time.sleep(0.1)
            with pytest.raises(httpcore.PoolTimeout):
                _get(pool, f"{server.url}/", pool_timeout=0.2)
            release.set()
            first.result(timeout=5)
        assert _get(pool, f"{server.url}/") == b""  # the slot came back after the timeout
        pool.close()


def test_a_connection_the_server_closed_is_replaced_without_an_error() -> None:
    with scripted_server(lambda r: Reply(200, {"Connection": "close"}, b"bye")) as server:
        pool = _pool()
        for _ in range(3):
            assert _get(pool, f"{server.url}/") == b"bye"
        pool.close()
    assert len({r.peer_port for r in server.requests}) == 3


def test_a_response_closed_before_its_body_was_read_does_not_hand_back_its_connection() -> None:
    with scripted_server(lambda r: Reply(200, body=b"x" * 100_000)) as server:
        pool = _pool()
        request = httpcore.Request("GET", f"{server.url}/", headers=[(b"Host", server.host.encode())])
        response = pool.handle_request(request)
        response.close()  # unread body: this connection cannot carry another request
        assert _get(pool, f"{server.url}/") == b"x" * 100_000
        pool.close()
    assert len({r.peer_port for r in server.requests}) == 2


def test_closing_a_response_twice_frees_its_slot_once() -> None:
    with scripted_server(lambda r: Reply(200, body=b"ok")) as server:
        pool = _pool(limit=1)
        response = pool.handle_request(
            httpcore.Request("GET", f"{server.url}/", headers=[(b"Host", server.host.encode())])
        )
        response.read()
        response.close()
        response.close()
        assert _get(pool, f"{server.url}/") == b"ok"
        pool.close()


def test_each_origin_gets_its_own_connections() -> None:
    with (
        scripted_server(lambda r: Reply(200, body=b"a")) as first,
        scripted_server(lambda r: Reply(200, body=b"b")) as second,
    ):
        pool = _pool()
        for _ in range(3):
            assert _get(pool, f"{first.url}/") == b"a"
            assert _get(pool, f"{second.url}/") == b"b"
        pool.close()
    assert len({r.peer_port for r in first.requests}) == 1
    assert len({r.peer_port for r in second.requests}) == 1


def test_an_idle_connection_past_its_keepalive_is_not_reused() -> None:
    with scripted_server(lambda r: Reply(200, body=b"ok")) as server:
        pool = _pool(keepalive=0.05)
        _get(pool, f"{server.url}/")
        time.sleep(0.2)
        _get(pool, f"{server.url}/")
        pool.close()
    assert len({r.peer_port for r in server.requests}) == 2


def test_a_closed_pool_refuses_new_requests() -> None:
    with scripted_server(lambda r: Reply(200)) as server:
        pool = _pool()
        pool.close()
        with pytest.raises(RegistryError, match="after its registry session was closed"):
            _get(pool, f"{server.url}/")


def test_idle_connections_beyond_the_limit_are_closed_oldest_first() -> None:
    with (
        scripted_server(lambda r: Reply(200, body=b"a")) as first,
        scripted_server(lambda r: Reply(200, body=b"b")) as second,
    ):
        pool = _pool(limit=1)
        _get(pool, f"{first.url}/")
        _get(pool, f"{second.url}/")  # keeping this one idle closes the first origin's
        _get(pool, f"{first.url}/")
        pool.close()
    assert len({r.peer_port for r in first.requests}) == 2


def test_open_connections_idle_ones_included_stay_within_the_limit() -> None:
    with (
        scripted_server(lambda r: Reply(200, body=b"a")) as first,
        scripted_server(lambda r: Reply(200, body=b"b")) as second,
    ):
        pool = _pool(limit=2)
        with ThreadPoolExecutor(2) as threads:  # two idle connections to the first origin
            list(threads.map(lambda _: _get_slowly(pool, f"{first.url}/"), range(2)))
        _get(pool, f"{second.url}/")  # opening one to the second closes an idle one of the first
        assert pool.open_connections() <= 2
        pool.close()


def _get_slowly(pool: ConnectionPool, url: str) -> bytes:
    response = pool.handle_request(
        httpcore.Request("GET", url, headers=[(b"Host", url.split("/")[2].encode())])
    )
    try:
        time.sleep(0.1)  # both requests in flight at once: two connections
        return b"".join(response.iter_stream())
    finally:
        response.close()


def test_requests_to_one_host_never_exceed_its_own_limit_and_reuse_its_connections() -> None:
    with scripted_server(lambda r: Reply(200, body=b"ok")) as server:
        pool = ConnectionPool(ssl.create_default_context(), limit=16, per_host=3, keepalive_expiry=5.0)
        with ThreadPoolExecutor(8) as threads:
            for _ in range(3):  # three waves of eight requests at once
                assert set(threads.map(lambda _: _get_slowly(pool, f"{server.url}/"), range(8))) == {b"ok"}
        assert pool.open_connections() <= 3
        pool.close()
    assert len(server.requests) == 24
    assert len({r.peer_port for r in server.requests}) <= 3  # 24 requests, at most 3 connections


def test_blob_transfers_keep_to_their_share_so_checks_still_go_out() -> None:
    release = threading.Event()

    def answer(request: Recorded) -> Reply:
        if "/blobs/" in request.path:
            release.wait(10)  # a long transfer
        return Reply(200, body=b"ok")

    with scripted_server(answer) as server:
        pool = ConnectionPool(
            ssl.create_default_context(), limit=8, keepalive_expiry=5.0, per_host=3, per_host_bulk=2
        )
        with ThreadPoolExecutor(4) as threads:
            blobs = [threads.submit(_get, pool, f"{server.url}/v2/r/blobs/{n}", bulk=True) for n in range(3)]
            time.sleep(0.2)  # two transfers hold the bulk share, the third waits for it
            assert _get(pool, f"{server.url}/v2/r/manifests/t", pool_timeout=2.0) == b"ok"
            with pytest.raises(httpcore.PoolTimeout):
                _get(pool, f"{server.url}/v2/r/blobs/more", pool_timeout=0.2, bulk=True)
            release.set()
            assert all(future.result(10) == b"ok" for future in blobs)
        pool.close()


def test_a_freed_connection_goes_to_blob_bytes_then_to_questions_and_last_to_deferred_ones() -> None:
    release = threading.Event()

    def answer(request: Recorded) -> Reply:
        if request.path == "/hold":
            release.wait(10)
        return Reply(200, body=b"ok")

    with scripted_server(answer) as server:
        pool = ConnectionPool(ssl.create_default_context(), limit=8, keepalive_expiry=5.0, per_host=1)
        host_slots = pool._host_slots
        with ThreadPoolExecutor(4) as threads:
            holder = threads.submit(_get, pool, f"{server.url}/hold")
            waiting = [holder]
            # Queued one after another, least urgent first, while the only connection is held.
            for path, kind in (("/attachments", "deferred"), ("/manifest", "asked"), ("/layer", "bulk")):
                queued = len(waiting)
                waiting.append(
                    threads.submit(
                        _get, pool, f"{server.url}{path}", bulk=kind == "bulk", deferred=kind == "deferred"
                    )
                )
                deadline = time.monotonic() + 5
                while next(iter(host_slots.values())).waiting() < queued:
                    assert time.monotonic() < deadline, f"the {kind} request never queued"
                    time.sleep(0.005)
            release.set()
            assert [future.result(10) for future in waiting] == [b"ok"] * 4
        pool.close()
    assert [r.path for r in server.requests] == ["/hold", "/layer", "/manifest", "/attachments"]
