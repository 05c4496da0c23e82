"""The read side of the OCI distribution API over the image-serve tree, as answers without sockets.

:class:`RegistryApi` turns one request (method, target, headers) into an :class:`Answer`: a
status, pre-encoded header lines, and either a small body or an open blob file for the connection
to send with ``sendfile``. Every path is decoded once and must match one API route whose names
pass the grammar checks the writer uses, so no request can name a file outside ``v2/``, a hidden
file or a temporary. Blobs are opened before they are answered (a concurrent delete cannot cut a
download short); manifests come from :mod:`.answercache`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from imageprep.imageserve.answercache import AnswerCache
from imageprep.imageserve.http1 import field_lines
from imageprep.imageserve.names import (
    DIGEST,
    check_reference,
    check_repository,
    is_digest,
    is_well_formed_digest,
)
from imageprep.imageserve.ranges import ByteRange, Unsatisfiable, parse_range
from imageprep.imageserve.reader import TreeReader
from imageprep.model import mediatypes
from imageprep.model.attachments import matching, referrers_index
from imageprep.model.errors import ConfigurationError, ImageServeError

LOG = logging.getLogger("imageprep.serve")
API_VERSION = b"Docker-Distribution-Api-Version: registry/2.0\r\n"
MAX_PAGE = 10_000
_ROUTE = re.compile(r"/v2/(?P<name>.+)/(?P<kind>manifests|blobs)/(?P<reference>[^/]+)")
_TAGS = re.compile(r"/v2/(?P<name>.+)/tags/list")
_REFERRERS = re.compile(r"/v2/(?P<name>.+)/referrers/(?P<digest>[^/]+)")
_SIGNATURE = re.compile(
    r"/sigstore/(?P<name>.+)@sha256=(?P<hex>[0-9a-f]{64})/signature-(?P<index>[1-9][0-9]{0,5})"
)
_BLOB_FIELDS = (
    b"Content-Type: application/octet-stream\r\nAccept-Ranges: bytes\r\nCache-Control: max-age=31536000\r\n"
)
_READ_ONLY = {"Allow": "GET, HEAD"}


@dataclass(slots=True)
class Answer:
    """What to send: status, header lines (API version and Content-Length included), then a body.

    ``file`` is an open descriptor the connection sends ``length`` bytes of, from ``offset``, and
    then closes; ``body`` is sent when there is no file. ``close`` ends the connection afterwards.
    """

    status: int
    fields: bytes
    body: bytes = b""
    file: int | None = None
    offset: int = 0
    length: int = 0
    close: bool = False

    def release(self) -> None:
        """Close the blob file if the answer will not be sent after all."""
        if self.file is not None:
            os.close(self.file)
            self.file = None


class ApiError(Exception):
    """An error answer: HTTP status, OCI error code, message (an answer to a client, not an operator)."""

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

    def answer(self) -> Answer:
        """This error as an answer."""
        body = self.body()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), **self.headers}
        return Answer(self.status, API_VERSION + field_lines(headers), body)


def json_answer(document: object, link: str | None = None) -> Answer:
    """A 200 with ``document`` as its JSON body."""
    body = json.dumps(document).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    if link:
        headers["Link"] = link
    return Answer(HTTPStatus.OK, API_VERSION + field_lines(headers), body)


def read_only_answer() -> Answer:
    """405 for every method but GET and HEAD."""
    error = ApiError(
        HTTPStatus.METHOD_NOT_ALLOWED, "UNSUPPORTED", "this registry is read-only", None, _READ_ONLY
    )
    return error.answer()


def _page_size(query: dict[str, list[str]]) -> int | None:
    values = query.get("n")
    if not values:
        return None
    if not values[0].isdigit():
        raise ApiError(HTTPStatus.BAD_REQUEST, "UNSUPPORTED", "n must be a whole number of entries")
    # Larger pages are cut to MAX_PAGE, with a Link to the rest (the spec allows fewer with a Link).
    return min(int(values[0]), MAX_PAGE)


def paginate(items: list[str], query: dict[str, list[str]]) -> tuple[list[str], str | None]:
    """The page ``n``/``last`` select and, when more follow, the ``last`` of the next page."""
    last = (query.get("last") or [""])[0]
    remaining = [item for item in items if item > last] if last else items
    size = _page_size(query)
    if size is None or len(remaining) <= size:
        return remaining, None
    page = remaining[:size]
    return page, page[-1] if page else None


def _next_link(path: str, size: int, following: str | None) -> str | None:
    if following is None:
        return None
    return f'<{quote(path)}?n={size}&last={quote(following)}>; rel="next"'


def _name(name: str) -> str:
    try:
        return check_repository(name)
    except ImageServeError:
        raise ApiError(HTTPStatus.BAD_REQUEST, "NAME_INVALID", "invalid repository name") from None


def _decode(target: str) -> tuple[str, str]:
    """``(path, query)`` of a request target; an undecodable path becomes one no route matches."""
    path, _, query = target.partition("?")
    if path.startswith(("http://", "https://")):
        # absolute-form (RFC 9112 section 3.2.2): only its path matters here
        path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
    if "%" in path:
        try:
            path = unquote(path, errors="strict")
        except UnicodeDecodeError:
            return "", query
    if "\x00" in path or "\\" in path:
        return "", query
    return path, query


class RegistryApi:
    """Answers GET and HEAD for the API routes over one tree; every other method gets 405."""

    def __init__(self, tree: TreeReader) -> None:
        self.tree = tree
        self._v2 = str(tree.layout.v2)
        self._cache = AnswerCache(tree)

    def answer(self, method: str, target: str, headers: dict[str, str]) -> Answer:
        """The answer to one request; never raises for anything a client can send."""
        if method not in ("GET", "HEAD"):
            return read_only_answer()
        try:
            return self._route(target, headers, method == "HEAD")
        except ApiError as error:
            return error.answer()
        except (ImageServeError, ConfigurationError, OSError) as error:
            # A damaged or unreadable file in the tree (a signature file too large to be one is a
            # ConfigurationError of the lookaside storage): the client learns no more than that.
            LOG.warning("%s: %s", target[:200], error)
            return ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, "UNKNOWN", "cannot read").answer()

    def _route(self, target: str, headers: dict[str, str], head: bool) -> Answer:
        path, raw_query = _decode(target)
        match = _ROUTE.fullmatch(path)
        if match is not None:
            name = _name(match["name"])
            if match["kind"] == "manifests":
                return self._manifest(name, match["reference"], headers.get("accept", ""))
            return self._blob(name, match["reference"], headers.get("range"), head)
        query = parse_qs(raw_query, keep_blank_values=True) if raw_query else {}
        if path in ("/v2", "/v2/"):
            return json_answer({})
        if path == "/v2/_catalog":
            repositories, following = paginate(self.tree.repositories(), query)
            size = _page_size(query) or 0
            return json_answer({"repositories": repositories}, _next_link(path, size, following))
        tags = _TAGS.fullmatch(path)
        if tags:
            return self._tags(_name(tags["name"]), query)
        referrers = _REFERRERS.fullmatch(path)
        if referrers:
            return self._referrers(_name(referrers["name"]), referrers["digest"], query)
        signature = _SIGNATURE.fullmatch(path)
        if signature:
            return self._signature(_name(signature["name"]), signature["hex"], int(signature["index"]))
        raise ApiError(HTTPStatus.NOT_FOUND, "NAME_UNKNOWN", "no such endpoint in this registry")

    # --- endpoints -----------------------------------------------------------------------------

    def _known_repository(self, name: str) -> None:
        if not os.path.isdir(f"{self._v2}/{name}/manifests"):
            raise ApiError(
                HTTPStatus.NOT_FOUND, "NAME_UNKNOWN", "repository name not known to registry", name
            )

    def _tags(self, name: str, query: dict[str, list[str]]) -> Answer:
        self._known_repository(name)
        tags, following = paginate(self.tree.list_tags(name), query)
        link = _next_link(f"/v2/{name}/tags/list", _page_size(query) or 0, following)
        return json_answer({"name": name, "tags": tags}, link)

    def _referrers(self, name: str, digest: str, query: dict[str, list[str]]) -> Answer:
        """The OCI 1.1 referrers API: an index of the manifests whose subject is ``digest``.

        Never a 404 (a client would take that for "no referrers API here"): an unknown subject or
        repository has no referrers, an empty index. ``artifactType`` filters, and says so.
        """
        if not DIGEST.fullmatch(digest):
            raise ApiError(HTTPStatus.BAD_REQUEST, "DIGEST_INVALID", "invalid digest", digest)
        wanted = next(iter(query.get("artifactType") or ()), None)
        entries = matching(self.tree.referrer_entries(name, digest), wanted)
        body = referrers_index(entries)
        headers = {"Content-Type": mediatypes.OCI_INDEX, "Content-Length": str(len(body))}
        if wanted is not None:
            headers["OCI-Filters-Applied"] = "artifactType"
        return Answer(HTTPStatus.OK, API_VERSION + field_lines(headers), body)

    def _signature(self, name: str, hexadecimal: str, index: int) -> Answer:
        """A lookaside signature (``/sigstore/<name>@sha256=<hex>/signature-<N>``), or a plain 404,
        which is how a lookaside reader learns there are no more."""
        signatures = self.tree.read_signatures(name, f"sha256:{hexadecimal}")
        if index > len(signatures):
            raise ApiError(HTTPStatus.NOT_FOUND, "NAME_UNKNOWN", "no such signature")
        body = signatures[index - 1]
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(body))}
        return Answer(HTTPStatus.OK, API_VERSION + field_lines(headers), body)

    def _manifest(self, name: str, reference: str, accept: str) -> Answer:
        unknown = ApiError(HTTPStatus.NOT_FOUND, "MANIFEST_UNKNOWN", "manifest unknown", reference)
        try:
            check_reference(reference)
        except ImageServeError:
            raise unknown from None
        if is_digest(reference):
            digest: str | None = reference
        else:
            tag = self._cache.tag(name, reference)
            media_type = tag.choose(accept) if tag is not None else None
            digest = tag.variants.get(media_type) if tag is not None and media_type else None
        manifest = self._cache.manifest(name, digest) if digest else None
        if manifest is None:
            self._known_repository(name)
            raise unknown
        # HEAD gets the same head; the connection leaves the body out.
        return Answer(HTTPStatus.OK, API_VERSION + manifest.fields, manifest.body)

    def _blob(self, name: str, digest: str, range_header: str | None, head: bool) -> Answer:
        if not DIGEST.fullmatch(digest):
            if is_well_formed_digest(digest):
                # Another algorithm (sha512, ...): content this tree cannot hold, so not here.
                raise ApiError(HTTPStatus.NOT_FOUND, "BLOB_UNKNOWN", "blob unknown to registry", digest)
            raise ApiError(HTTPStatus.BAD_REQUEST, "DIGEST_INVALID", "invalid digest", digest)
        path = f"{self._v2}/{name}/blobs/{digest}"
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            descriptor = -1
        if descriptor < 0:
            self._known_repository(name)
            raise ApiError(HTTPStatus.NOT_FOUND, "BLOB_UNKNOWN", "blob unknown to registry", digest)
        try:
            answer = self._blob_answer(descriptor, digest, range_header)
        except BaseException:
            os.close(descriptor)
            raise
        if head or answer.length == 0:
            answer.release()
        return answer

    def _blob_answer(self, descriptor: int, digest: str, range_header: str | None) -> Answer:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ImageServeError(f"blob {digest} is not a regular file")
        size = info.st_size
        common = (
            API_VERSION + _BLOB_FIELDS + f'Docker-Content-Digest: {digest}\r\nETag: "{digest}"\r\n'.encode()
        )
        wanted = parse_range(range_header, size) if range_header is not None else None
        if isinstance(wanted, Unsatisfiable):
            raise ApiError(
                HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                "BLOB_UNKNOWN",
                "requested range not satisfiable",
                {"size": size},
                {"Content-Range": f"bytes */{size}"},
            )
        if isinstance(wanted, ByteRange):
            fields = common + field_lines(
                {"Content-Range": wanted.content_range(size), "Content-Length": str(wanted.length)}
            )
            return Answer(
                HTTPStatus.PARTIAL_CONTENT, fields, file=descriptor, offset=wanted.start, length=wanted.length
            )
        fields = common + f"Content-Length: {size}\r\n".encode()
        return Answer(HTTPStatus.OK, fields, file=descriptor, offset=0, length=size)
