"""How ``imageprep serve`` reads request heads: what it accepts, refuses, and when it keeps a connection."""

from __future__ import annotations

import pytest

from imageprep.imageserve.http1 import RequestError, field_lines, head_end, hopeless, parse_head, status_line
from imageprep.imageserve.names import is_well_formed_digest


def test_head_end_finds_the_blank_line_with_crlf_or_bare_lf() -> None:
    head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    assert head_end(head + b"GET /next") == len(head)
    assert head_end(b"GET / HTTP/1.1\nHost: a\n\n") == len(b"GET / HTTP/1.1\nHost: a\n\n")
    assert head_end(b"GET / HTTP/1.1\r\nHost: a\r\n") == -1


def test_headers_are_lower_case_and_repeats_are_joined() -> None:
    request = parse_head(
        b"GET /v2/ HTTP/1.1\r\nAccept: a/b\r\nACCEPT: c/d;q=0.5\r\nRange:  bytes=0-1 \r\n\r\n"
    )
    assert (request.method, request.target, request.version) == ("GET", "/v2/", "HTTP/1.1")
    assert request.headers == {"accept": "a/b, c/d;q=0.5", "range": "bytes=0-1"}


@pytest.mark.parametrize(
    ("head", "keep_alive"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nConnection: Keep-Alive, Close\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", True),
    ],
)
def test_http11_keeps_connections_unless_closed_http10_only_when_asked(head: bytes, keep_alive: bool) -> None:
    assert parse_head(head).keep_alive is keep_alive


@pytest.mark.parametrize(
    "head",
    [
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
        b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
)
def test_a_request_with_a_body_is_answered_and_the_connection_closed(head: bytes) -> None:
    request = parse_head(head)
    assert request.has_body and not request.keep_alive


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /\r\n\r\n", 400),
        (b"GET  / HTTP/1.1\r\n\r\n", 400),
        (b"G(T / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n", 431),
    ],
)
def test_unusable_heads_are_refused_with_a_status(head: bytes, status: int) -> None:
    with pytest.raises(RequestError) as caught:
        parse_head(head)
    assert caught.value.status == status


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", True),  # a TLS ClientHello
        (b"GET / HTTP/1.1\r\nHost: a\r\n", False),
        (b"GET /v2/", False),
        (b"hello there\r\n", True),
        (b"GET " + b"a" * 20_000, True),
    ],
)
def test_a_head_that_cannot_become_http_is_recognised_before_it_ends(start: bytes, expected: bool) -> None:
    assert hopeless(start) is expected


def test_status_and_field_lines() -> None:
    assert status_line(404) == b"HTTP/1.1 404 Not Found\r\n"
    assert status_line(299) == b"HTTP/1.1 299 Unknown\r\n"
    assert field_lines({"A": "1", "B-C": "x y"}) == b"A: 1\r\nB-C: x y\r\n"


@pytest.mark.parametrize(
    ("digest", "expected"),
    [
        ("sha256:" + "a" * 64, True),
        ("sha512:" + "a" * 128, True),
        ("blake3:" + "A_b-c=", True),
        ("sha512:00", False),
        ("sha256:" + "A" * 64, False),
        ("sha256", False),
        ("SHA256:" + "a" * 64, False),
        (":abc", False),
    ],
)
def test_digest_grammar_tells_not_stored_from_malformed(digest: str, expected: bool) -> None:
    assert is_well_formed_digest(digest) is expected
