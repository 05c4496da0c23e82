"""One HTTP request as a value, and what it looks like on the wire."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode, urlsplit

from imageprep._version import __version__

USER_AGENT = f"imageprep/{__version__}".encode("ascii")
Body = bytes | Iterable[bytes] | None
Params = Mapping[str, str | list[str]]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What to send, and what it is for.

    ``context`` says what was being done to what (``reading manifest x on registry y``) for error
    messages. A request whose body is ``bytes`` or empty can be sent again, and the transport
    retries it on transient failures unless ``retry`` is off (an upload whose registry state a
    half-sent attempt may have changed is retried whole by its caller instead). ``limit`` bounds
    an answer read whole. ``bulk`` marks blob bytes: a host's pool lets fewer of those be in flight
    than requests in all, so manifests, checks, listings and tokens never wait behind layers.
    """

    method: str
    url: str
    context: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Body = None
    verify: bool = True
    retry: bool = True
    limit: int | None = None
    # Blob bytes (a blob read, an upload with a body): these go over connections of their own.
    bulk: bool = False

    @property
    def replayable(self) -> bool:
        """Whether the body can be sent again (an iterable is consumed by sending it)."""
        return self.body is None or isinstance(self.body, bytes)

    @property
    def netloc(self) -> str:
        """``host[:port]`` of the URL, lower-cased."""
        return urlsplit(self.url).netloc.lower()

    def with_params(self, params: Params | None) -> HttpRequest:
        """The request with ``params`` added to its URL's query."""
        return replace(self, url=with_params(self.url, params)) if params else self


def with_params(url: str, params: Params | None) -> str:
    """``url`` with ``params`` appended to whatever query it has (a registry's upload Location
    carries its own state there, which must reach the registry byte for byte)."""
    pairs = [
        (name, item)
        for name, value in (params or {}).items()
        for item in ([value] if isinstance(value, str) else value)
    ]
    if not pairs:
        return url
    base, _, fragment = url.partition("#")
    separator = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        separator = ""
    return f"{base}{separator}{urlencode(pairs)}" + (f"#{fragment}" if fragment else "")


def wire_headers(url: str, headers: Mapping[str, str], content: Body) -> list[tuple[bytes, bytes]]:
    """What goes on the wire: ours, plus Host, User-Agent and the body's framing when not given."""
    given = {name.lower() for name in headers}
    wire = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    if "host" not in given:
        wire.insert(0, (b"Host", urlsplit(url).netloc.encode("idna")))
    if "user-agent" not in given:
        wire.append((b"User-Agent", USER_AGENT))
    if "content-length" not in given and "transfer-encoding" not in given:
        if isinstance(content, bytes):
            wire.append((b"Content-Length", str(len(content)).encode("ascii")))
        elif content is not None:
            wire.append((b"Transfer-Encoding", b"chunked"))
    return wire
