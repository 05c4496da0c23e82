"""A read-only OCI distribution server over the image-serve tree (``imageprep serve``).

Every request path is decoded once and must match one API route whose names pass the same
grammar checks the writer uses, so no request can name a file outside ``v2/``, a hidden file or a
temporary. Blobs are sent with ``sendfile`` from an open file (a concurrent delete cannot cut a
download short, and nothing is read into memory); manifests are small and read whole.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from imageprep.imageserve.names import check_digest, check_reference, check_repository, is_digest
from imageprep.imageserve.negotiation import choose_variant
from imageprep.imageserve.ranges import ByteRange, Unsatisfiable, parse_range
from imageprep.imageserve.reader import TreeReader
from imageprep.model.errors import ImageServeError

LOG = logging.getLogger("imageprep.serve")
API_VERSION = ("Docker-Distribution-Api-Version", "registry/2.0")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_PAGE = 10_000
REQUEST_TIMEOUT = 60.0
_ROUTE = re.compile(r"/v2/(?P<name>.+)/(?P<kind>manifests|blobs)/(?P<reference>[^/]+)")
_TAGS = re.compile(r"/v2/(?P<name>.+)/tags/list")


class ApiError(Exception):
    """An error answer: HTTP status, OCI error code, message."""

    def __init__(
        self,
        status: HTTPStatus,
        code: str,
        message: str,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = headers or {}

    def body(self) -> bytes:
        """The OCI error JSON document."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        return json.dumps({"errors": [error]}).encode()


def _name(name: str) -> str:
    try:
        return check_repository(name)
    except ImageServeError:
        raise ApiError(HTTPStatus.BAD_REQUEST, "NAME_INVALID", "invalid repository name") from None


def _page_size(query: dict[str, list[str]]) -> int | None:
    values = query.get("n")
    if not values:
        return None
    try:
        size = int(values[0])
    except ValueError:
        size = -1
    if not 0 <= size <= MAX_PAGE:
        raise ApiError(
            HTTPStatus.BAD_REQUEST, "PAGINATION_NUMBER_INVALID", f"n must be between 0 and {MAX_PAGE}"
        )
    return size


def paginate(items: list[str], query: dict[str, list[str]]) -> tuple[list[str], str | None]:
    """The page ``n``/``last`` select and, when more follow, the ``last`` of the next page."""
    last = (query.get("last") or [""])[0]
    remaining = [item for item in items if item > last] if last else items
    size = _page_size(query)
    if size is None or len(remaining) <= size:
        return remaining, None
    page = remaining[:size]
    return page, page[-1] if page else None


class RegistryHandler(BaseHTTPRequestHandler):
    """Answers the read side of the distribution API; every write method gets 405."""

    protocol_version = "HTTP/1.1"
    server_version = "imageprep-serve"
    sys_version = ""
    timeout = REQUEST_TIMEOUT
    server: ImageServeServer

    # --- dispatch ------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _refuse(self) -> None:
        # The request body is not read, so the connection cannot be reused.
        self.close_connection = True
        error = ApiError(HTTPStatus.METHOD_NOT_ALLOWED, "UNSUPPORTED", "this registry is read-only")
        self._send_error(error, head=False, extra={"Allow": "GET, HEAD", "Connection": "close"})

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_TRACE = do_CONNECT = _refuse

    def _answer(self, *, head: bool) -> None:
        try:
            self._route(head)
        except ApiError as error:
            self._send_error(error, head=head)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except (ImageServeError, OSError) as error:
            # A damaged or unreadable file in the tree: the client learns no more than that.
            LOG.warning("%s: %s", self.path, error)
            self._send_error(ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, "UNKNOWN", "cannot read"), head=head)

    def _route(self, head: bool) -> None:
        target = urlsplit(self.path)
        try:
            path = unquote(target.path, errors="strict")
        except UnicodeDecodeError:
            path = ""
        if "\x00" in path or "\\" in path:
            path = ""
        query = parse_qs(target.query, keep_blank_values=True)
        tree = self.server.tree
        if path in ("/v2", "/v2/"):
            self._send_json({}, head)
            return
        if path == "/v2/_catalog":
            repositories, following = paginate(tree.repositories(), query)
            self._send_json(
                {"repositories": repositories}, head, self._next_link("/v2/_catalog", query, following)
            )
            return
        tags = _TAGS.fullmatch(path)
        if tags:
            self._tags(_name(tags["name"]), query, head)
            return
        match = _ROUTE.fullmatch(path)
        if match is None:
            raise ApiError(HTTPStatus.NOT_FOUND, "NAME_UNKNOWN", "no such endpoint in this registry")
        name = _name(match["name"])
        if match["kind"] == "manifests":
            self._manifest(name, match["reference"], head)
        else:
            self._blob(name, match["reference"], head)

    # --- endpoints -----------------------------------------------------------------------------

    def _known_repository(self, name: str) -> None:
        if not self.server.tree.layout.manifests(name).is_dir():
            raise ApiError(
                HTTPStatus.NOT_FOUND, "NAME_UNKNOWN", "repository name not known to registry", name
            )

    def _tags(self, name: str, query: dict[str, list[str]], head: bool) -> None:
        self._known_repository(name)
        tags, following = paginate(self.server.tree.list_tags(name), query)
        link = self._next_link(f"/v2/{name}/tags/list", query, following)
        self._send_json({"name": name, "tags": tags}, head, link)

    def _manifest(self, name: str, reference: str, head: bool) -> None:
        tree = self.server.tree
        unknown = ApiError(HTTPStatus.NOT_FOUND, "MANIFEST_UNKNOWN", "manifest unknown", reference)
        try:
            check_reference(reference)
        except ImageServeError:
            raise unknown from None
        if is_digest(reference):
            digest: str | None = reference
            media_type = tree.manifest_media_type(name, reference)
        else:
            variants = tree.tag_variants(name, reference)
            media_type = choose_variant(list(variants), self.headers.get_all("Accept") or [])
            digest = variants.get(media_type) if media_type else None
        path = tree.manifest_file(name, digest) if digest else None
        if path is None or digest is None or media_type is None:
            self._known_repository(name)
            raise unknown
        with path.open("rb") as handle:
            body = handle.read(MAX_MANIFEST_BYTES + 1)
        if len(body) > MAX_MANIFEST_BYTES:
            raise ImageServeError(f"manifest {path} is larger than {MAX_MANIFEST_BYTES} bytes")
        self.send_response(HTTPStatus.OK)
        self._headers(
            {
                "Content-Type": media_type,
                "Content-Length": str(len(body)),
                "Docker-Content-Digest": digest,
                "ETag": f'"{digest}"',
            }
        )
        if not head:
            self.wfile.write(body)

    def _blob(self, name: str, digest: str, head: bool) -> None:
        try:
            check_digest(digest)
        except ImageServeError:
            raise ApiError(HTTPStatus.BAD_REQUEST, "DIGEST_INVALID", "invalid digest", digest) from None
        path = self.server.tree.blob_file(name, digest)
        try:
            handle = path.open("rb") if path is not None else None
        except FileNotFoundError:
            handle = None
        if handle is None:
            self._known_repository(name)
            raise ApiError(HTTPStatus.NOT_FOUND, "BLOB_UNKNOWN", "blob unknown to registry", digest)
        with handle:
            self._send_blob(handle, digest, head)

    def _send_blob(self, handle: Any, digest: str, head: bool) -> None:
        size = os.fstat(handle.fileno()).st_size
        wanted = parse_range(self.headers.get("Range"), size)
        common = {
            "Content-Type": "application/octet-stream",
            "Docker-Content-Digest": digest,
            "ETag": f'"{digest}"',
            "Accept-Ranges": "bytes",
            "Cache-Control": "max-age=31536000",
        }
        if isinstance(wanted, Unsatisfiable):
            raise ApiError(
                HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                "BLOB_UNKNOWN",
                "requested range not satisfiable",
                {"size": size},
                {"Content-Range": f"bytes */{size}"},
            )
        chosen = wanted if isinstance(wanted, ByteRange) else ByteRange(0, size - 1)
        if isinstance(wanted, ByteRange):
            self.send_response(HTTPStatus.PARTIAL_CONTENT)
            common["Content-Range"] = wanted.content_range(size)
        else:
            self.send_response(HTTPStatus.OK)
        self._headers({**common, "Content-Length": str(max(chosen.length, 0))})
        if not head and size:
            self.connection.sendfile(handle, chosen.start, chosen.length)

    # --- responses -----------------------------------------------------------------------------

    def _next_link(self, path: str, query: dict[str, list[str]], following: str | None) -> str | None:
        if following is None:
            return None
        size = query["n"][0]
        return f'<{quote(path)}?n={quote(size)}&last={quote(following)}>; rel="next"'

    def _headers(self, headers: dict[str, str]) -> None:
        self.send_header(*API_VERSION)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def _send_json(self, document: object, head: bool, link: str | None = None) -> None:
        body = json.dumps(document).encode()
        self.send_response(HTTPStatus.OK)
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        if link:
            headers["Link"] = link
        self._headers(headers)
        if not head:
            self.wfile.write(body)

    def _send_error(self, error: ApiError, *, head: bool, extra: dict[str, str] | None = None) -> None:
        body = error.body()
        self.send_response(error.status)
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        headers.update(error.headers)
        headers.update(extra or {})
        self._headers(headers)
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if self.server.log_requests:
            # Request lines come from the network: never let them write control characters.
            text = (format % args).encode("ascii", "backslashreplace").decode("ascii")
            LOG.info("%s %s", self.address_string(), "".join(c if c.isprintable() else "?" for c in text))


class ImageServeServer(ThreadingHTTPServer):
    """One thread per connection; threads do not keep the process alive at exit."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], tree: TreeReader, *, log_requests: bool = False) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.tree = tree
        self.log_requests = log_requests
        super().__init__(address, RegistryHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A failing connection is logged (at -v), never printed as a traceback."""
        LOG.debug("request from %s failed", client_address, exc_info=True)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` as ``(host, port)``; ValueError says what is wrong with it."""
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write IPv6 addresses in brackets, [ADDRESS]:PORT")
    return host, int(port)


def make_server(root: Path, host: str, port: int, *, log_requests: bool = False) -> ImageServeServer:
    """A server for the tree at ``root`` bound to ``host:port`` (port 0: any free port)."""
    if not root.is_dir():
        raise ImageServeError(
            f"the image-serve root {root} does not exist",
            hint="copy images into it first (prepare with push_destination: true), or give --root",
        )
    try:
        return ImageServeServer((host, port), TreeReader(root), log_requests=log_requests)
    except OSError as exc:
        raise ImageServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
