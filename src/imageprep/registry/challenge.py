"""``WWW-Authenticate`` challenges as values.

Registries send ``Bearer realm="...",service="...",scope="...",error="..."`` or ``Basic realm="..."``.
Parameters may be quoted (with backslash escapes) or bare tokens, in any order and case, with or
without spaces after commas; scopes may themselves contain commas (``pull,push``), which is why a
naive split on ``,`` is not good enough.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)")
_PARAM = re.compile(r"""\s*,?\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))""")


@dataclass(frozen=True, slots=True)
class Challenge:
    """One authentication challenge: its scheme (lower-case) and parameters (lower-case keys)."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def realm(self) -> str | None:
        """Where a bearer token is requested (a URL), or the basic-auth realm name."""
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        """The ``service`` a token is requested for."""
        return self.params.get("service")

    @property
    def scope(self) -> str | None:
        """The scope the registry says the request needs, when it says."""
        return self.params.get("scope")

    @property
    def error(self) -> str | None:
        """Why the previous token was refused (``invalid_token``, ``insufficient_scope``)."""
        return self.params.get("error")


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of a ``WWW-Authenticate`` value, or ``None`` when it has no scheme."""
    match = _SCHEME.match(header)
    if not match:
        return None
    scheme = match.group(1).lower()
    params: dict[str, str] = {}
    position = match.end()
    while position < len(header):
        param = _PARAM.match(header, position)
        if not param or param.end() == position:
            break
        name = param.group(1).lower()
        value = re.sub(r"\\(.)", r"\1", param.group(2)) if param.group(2) is not None else param.group(3)
        # A bare word followed by a space starts the next challenge (``Bearer ..., Basic realm=x``).
        params.setdefault(name, value)
        position = param.end()
        rest = header[position:].lstrip(" ,")
        next_scheme = _SCHEME.match(rest)
        if next_scheme and not rest[next_scheme.end() :].lstrip().startswith("="):
            break
    return Challenge(scheme, MappingProxyType(params))
