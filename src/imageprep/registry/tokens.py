"""Bearer tokens and the cache every worker thread shares.

Parallel copies used to fetch a token each and then see 401s mid-download; one cache per
(registry, scope), guarded by a lock, lets every thread reuse a token until it expires.
Expiry comes from ``expires_in`` (+ ``issued_at``) or from ``expires_at`` (as Satellite sends).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from imageprep.model.errors import AuthenticationError

# The distribution token spec says a token without ``expires_in`` lives for 60 seconds.
DEFAULT_LIFETIME = 60.0
# Tokens are renewed a little early so that one does not expire between check and use.
EARLY_RENEWAL = 5.0


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token and the time (epoch seconds) after which it is no longer used."""

    value: str = field(repr=False)
    expires_at: float

    def valid(self, now: float) -> bool:
        """Whether the token may still be sent at ``now``."""
        return now < self.expires_at

    @property
    def header(self) -> str:
        """The ``Authorization`` header value."""
        return f"Bearer {self.value}"


def parse_timestamp(text: object) -> float | None:
    """Epoch seconds of an ISO-8601 timestamp (``Z``, offsets, fractions; naive means UTC)."""
    if not isinstance(text, str) or not text.strip():
        return None
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    # Python before 3.11 rejected long fractions; some servers send nanoseconds.
    if "." in value:
        head, _, tail = value.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        tail = tail[: min(digits, 6)] + tail[digits:]
        value = f"{head}.{tail}"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def token_from_reply(body: bytes, now: float, *, where: str) -> Token:
    """Read a token server's JSON reply (``token`` or ``access_token``) into a :class:`Token`."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AuthenticationError(f"token server for {where} did not answer JSON") from exc
    if not isinstance(document, dict):
        raise AuthenticationError(f"token server for {where} answered something other than a JSON object")
    value = document.get("token") or document.get("access_token")
    if not isinstance(value, str) or not value:
        raise AuthenticationError(f"token server for {where} answered without a token")
    return Token(value, _expiry(document, now))


def _expiry(document: dict[str, object], now: float) -> float:
    expires_in = document.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        issued = parse_timestamp(document.get("issued_at"))
        # A server clock ahead of ours must not make a token look valid for longer than it is.
        start = min(issued, now) if issued is not None else now
        return start + float(expires_in) - min(EARLY_RENEWAL, float(expires_in) / 2)
    expires_at = parse_timestamp(document.get("expires_at"))
    if expires_at is not None:
        return expires_at - EARLY_RENEWAL
    return now + DEFAULT_LIFETIME - EARLY_RENEWAL


class TokenCache:
    """Tokens per (registry, scope), shared by all threads of a run."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], Token] = {}
        self._lock = threading.Lock()

    def get(self, registry: str, scope: str, now: float) -> Token | None:
        """A still-valid token for the scope; expired ones are dropped."""
        with self._lock:
            token = self._tokens.get((registry, scope))
            if token is not None and not token.valid(now):
                del self._tokens[(registry, scope)]
                return None
            return token

    def put(self, registry: str, scope: str, token: Token) -> None:
        """Remember a token (a newer one replaces the old)."""
        with self._lock:
            self._tokens[(registry, scope)] = token

    def discard(self, registry: str, scope: str, header: str | None = None) -> None:
        """Forget a token the registry refused (only if it is still the one that was sent)."""
        with self._lock:
            token = self._tokens.get((registry, scope))
            if token is not None and (header is None or token.header == header):
                del self._tokens[(registry, scope)]
