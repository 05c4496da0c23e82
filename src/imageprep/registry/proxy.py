"""Which proxy, if any, a request goes through: ``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY``.

The rules are the ones curl and requests share, so an undercloud configured for those (and for
skopeo and podman) needs nothing more for imageprep:

- ``https_proxy`` / ``HTTPS_PROXY`` for https URLs, ``http_proxy`` / ``HTTP_PROXY`` for plain ones,
  ``all_proxy`` / ``ALL_PROXY`` for either when the specific one is unset; the lower-case name wins
  when both are set. A proxy written without a scheme is ``http://``.
- ``NO_PROXY`` is a comma-separated list: ``*`` (no proxy at all); a host name, which also covers
  its subdomains (``example.com`` and ``.example.com`` both match ``www.example.com`` and
  ``example.com``, never ``notexample.com``); an IP address or a CIDR range (``10.0.0.0/8``,
  ``fd00::/8``); any of those with ``:PORT``, which then matches that port only.

Credentials written in a proxy URL (``http://user:secret@proxy:3128``) are sent to the proxy and
are never part of how the proxy is shown in logs and messages.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from imageprep.model.errors import ConfigurationError

_DEFAULT_PORTS = {"http": 80, "https": 443}
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Proxy:
    """One proxy: where it is, and the login it wants (never shown)."""

    url: str  # scheme://host:port, no credentials
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    variable: str = ""

    @property
    def auth(self) -> tuple[str, str] | None:
        """``(username, password)`` for the proxy, when the URL carried them."""
        return (self.username, self.password or "") if self.username is not None else None

    def __str__(self) -> str:
        return self.url

    @classmethod
    def parse(cls, value: str, variable: str) -> Proxy:
        """A proxy from an environment value; an error names the variable, never the password."""
        text = value.strip()
        if "://" not in text:
            text = "http://" + text
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise ConfigurationError(f"{variable} is not a proxy URL: {_without_userinfo(text)!r}") from None
        if parts.scheme not in ("http", "https"):
            raise ConfigurationError(
                f"{variable} names a {parts.scheme}:// proxy; imageprep goes through http:// and https:// "
                "proxies only",
            )
        if not parts.hostname:
            raise ConfigurationError(f"{variable} is not a proxy URL: {_without_userinfo(text)!r}")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        url = f"{parts.scheme}://{host}:{port or _DEFAULT_PORTS[parts.scheme]}"
        username = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        return cls(url, username, password, variable)


def _without_userinfo(text: str) -> str:
    scheme, separator, rest = text.partition("://")
    return f"{scheme}{separator}{rest.rpartition('@')[2]}"


@dataclass(frozen=True, slots=True)
class _Exception:
    """One ``NO_PROXY`` entry."""

    host: str = ""  # a name or suffix, lower-case, no leading dot
    network: IPNetwork | None = None
    port: int | None = None

    def matches(
        self, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, port: int
    ) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return address is not None and address.version == self.network.version and address in self.network
        return host == self.host or host.endswith("." + self.host)


def _parse_exception(entry: str) -> _Exception | None:
    text = entry.strip().lower()
    if not text:
        return None
    port: int | None = None
    if text.startswith("["):  # [v6] or [v6]:port
        inside, _, rest = text[1:].partition("]")
        text = inside
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif text.count(":") == 1:
        name, _, digits = text.partition(":")
        if digits.isdigit():
            text, port = name, int(digits)
    try:
        return _Exception(network=ipaddress.ip_network(text, strict=False), port=port)
    except ValueError:
        return _Exception(host=text.lstrip(".").rstrip("."), port=port)


def _pick(environ: Mapping[str, str], name: str) -> tuple[str, str] | None:
    for variable in (name.lower(), name.upper()):
        value = environ.get(variable, "").strip()
        if value:
            return variable, value
    return None


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """The proxies of the environment, and the hosts that bypass them."""

    http: Proxy | None = None
    https: Proxy | None = None
    bypass_all: bool = False
    exceptions: tuple[_Exception, ...] = ()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ProxyConfig:
        """Read the proxy variables (see the module docstring); bad values are errors naming them."""
        fallback = _pick(environ, "all_proxy")
        chosen = {}
        for scheme in ("http", "https"):
            picked = _pick(environ, f"{scheme}_proxy") or fallback
            chosen[scheme] = Proxy.parse(picked[1], picked[0]) if picked else None
        entries = (_pick(environ, "no_proxy") or ("", ""))[1].split(",")
        bypass_all = any(entry.strip() == "*" for entry in entries)
        exceptions = tuple(e for e in (_parse_exception(x) for x in entries if x.strip() != "*") if e)
        return cls(chosen["http"], chosen["https"], bypass_all, exceptions)

    @property
    def active(self) -> bool:
        """Whether any request may go through a proxy."""
        return not self.bypass_all and (self.http is not None or self.https is not None)

    def bypasses(self, host: str, port: int) -> bool:
        """Whether ``NO_PROXY`` sends ``host:port`` direct."""
        if self.bypass_all:
            return True
        name = host.strip("[]").lower().rstrip(".")
        try:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(name)
        except ValueError:
            address = None
        return any(entry.matches(name, address, port) for entry in self.exceptions)

    def proxy_for(self, url: str) -> Proxy | None:
        """The proxy ``url`` goes through, or ``None`` for a direct connection."""
        if not self.active:
            return None
        parts = urlsplit(url)
        proxy = self.https if parts.scheme == "https" else self.http
        if proxy is None or not parts.hostname:
            return None
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 80)
        return None if self.bypasses(parts.hostname, port) else proxy
