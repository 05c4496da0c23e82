"""HTTP/1.1 request heads as ``imageprep serve`` reads them (RFC 9112), and the heads it writes.

Parsing is pure (no sockets) so the rules can be tested by feeding bytes. A head is read whole
and bounded before it is parsed; anything ambiguous (folded lines, whitespace before a colon, a
body the server would have to read, an unknown protocol version) is refused rather than guessed
at, and a request that carries a body closes the connection after its answer, since this server
never reads bodies. Response heads are built from pre-encoded lines: the only per-answer work is
joining a few byte strings.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADER_LINES = 100
MAX_REQUEST_LINE = 16 * 1024
SERVER = b"Server: imageprep-serve\r\n"
_TOKEN_CHARACTERS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_TOKEN = frozenset(_TOKEN_CHARACTERS)
_TOKEN_BYTES = frozenset(_TOKEN_CHARACTERS.encode())
_REQUEST_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^ ]+ HTTP/[0-9]\.[0-9]")
_STATUS_LINES = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode("ascii") for status in HTTPStatus
}


class RequestError(Exception):
    """A request head this server will not act on; answered with ``status`` and the connection closed.

    Not an :class:`~imageprep.model.errors.ImageprepError`: it never reaches an operator, it is the
    server's answer to a client.
    """

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request head; header names are lower case, repeated headers joined by ``, ``."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    keep_alive: bool
    has_body: bool


def head_end(buffer: bytes | bytearray) -> int:
    """The length of the first complete head in ``buffer`` (through its blank line), or -1."""
    end = buffer.find(b"\r\n\r\n")
    if end >= 0:
        return end + 4
    # Bare LF line ends are tolerated (RFC 9112 section 2.2), as most servers do.
    end = buffer.find(b"\n\n")
    return end + 2 if end >= 0 else -1


def hopeless(buffer: bytes | bytearray) -> bool:
    """Whether an incomplete head can already be seen not to be HTTP (say, a TLS ClientHello).

    Answering at once, rather than waiting for a blank line that never comes, lets a client that
    tried TLS first (skopeo, podman) see a plain HTTP answer and fall back without a timeout.
    """
    if buffer[0] not in _TOKEN_BYTES:
        return True
    line_end = buffer.find(b"\n")
    if line_end < 0:
        return len(buffer) > MAX_REQUEST_LINE
    return _REQUEST_LINE.fullmatch(bytes(buffer[:line_end]).rstrip(b"\r")) is None


def _tokens(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",")}


def parse_head(head: bytes | bytearray) -> Request:
    """The request in ``head`` (request line, header lines, blank line); RequestError if unusable."""
    if len(head) > MAX_HEAD_BYTES:
        raise RequestError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large")
    lines = bytes(head).decode("latin-1").split("\n")
    request_line = lines[0].rstrip("\r")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1] or not set(parts[0]) <= _TOKEN:
        raise RequestError(HTTPStatus.BAD_REQUEST, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise RequestError(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "only HTTP/1.1 and HTTP/1.0 are served")
    if len(lines) > MAX_HEADER_LINES + 3:
        raise RequestError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "too many header lines")
    headers: dict[str, str] = {}
    for raw in lines[1:]:
        line = raw.rstrip("\r")
        if not line:
            break
        name, colon, value = line.partition(":")
        if not colon or not name or not set(name) <= _TOKEN:
            # Also refuses obsolete line folding (a line starting with whitespace).
            raise RequestError(HTTPStatus.BAD_REQUEST, "malformed header line")
        key = name.lower()
        value = value.strip(" \t")
        if "\r" in value or "\x00" in value:
            raise RequestError(HTTPStatus.BAD_REQUEST, "malformed header value")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    connection = _tokens(headers["connection"]) if "connection" in headers else set()
    # HTTP/1.1 keeps a connection open unless told otherwise; HTTP/1.0 only when asked to.
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    length = headers.get("content-length", "0")
    if not length.isdigit() and "transfer-encoding" not in headers:
        raise RequestError(HTTPStatus.BAD_REQUEST, "malformed Content-Length")
    has_body = "transfer-encoding" in headers or length.strip("0") != ""
    return Request(method, target, version, headers, keep_alive and not has_body, has_body)


class DateLine:
    """The ``Date:`` header line, formatted at most once a second."""

    __slots__ = ("_line", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def current(self) -> bytes:
        """``Date: <IMF-fixdate>\\r\\n`` for now."""
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = f"Date: {formatdate(now, usegmt=True)}\r\n".encode("ascii")
        return self._line


def status_line(status: int) -> bytes:
    """``HTTP/1.1 CODE REASON\\r\\n``."""
    line = _STATUS_LINES.get(status)
    return line if line is not None else f"HTTP/1.1 {status} Unknown\r\n".encode("ascii")


def field_lines(headers: dict[str, str]) -> bytes:
    """Header lines for ``headers`` (values must already be safe to send: no CR or LF)."""
    return "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode("latin-1")
