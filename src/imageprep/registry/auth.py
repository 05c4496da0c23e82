"""Registry authentication as a small state machine that never touches the network.

The driver (:mod:`imageprep.registry.connection`) asks :meth:`Authenticator.authorization` what to
send, reports a 401's ``WWW-Authenticate`` to :meth:`Authenticator.challenged`, and when told to
fetch a token, performs the :class:`TokenFetch` and hands the reply to
:meth:`Authenticator.token_received`. Tests drive it the same way with hand-written responses.

What the authenticator learns per registry (basic or bearer, realm and service) lets later requests
authenticate up front, which matters for uploads whose streamed body cannot be sent twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from imageprep.model.errors import AuthenticationError
from imageprep.registry.challenge import Challenge, parse_challenge
from imageprep.registry.credentials import CredentialStore
from imageprep.registry.tokens import Token, TokenCache, token_from_reply

PULL = "pull"
PUSH = "pull,push"


def repository_scope(repository: str, actions: str = PULL) -> str:
    """``repository:<path>:<actions>``, the scope a token must grant to touch a repository."""
    return f"repository:{repository}:{actions}"


CATALOG_SCOPE = "registry:catalog:*"


@dataclass(frozen=True, slots=True)
class TokenFetch:
    """A token request the driver must perform: ``GET url?params`` with ``authorization`` if set."""

    registry: str
    scope: str
    url: str
    params: tuple[tuple[str, str], ...]
    authorization: str | None

    @property
    def realm_host(self) -> str:
        """The host of the token server, for messages."""
        return urlsplit(self.url).netloc


AuthStep = str | TokenFetch | None
"""``None``: send no ``Authorization``; ``str``: send this header; :class:`TokenFetch`: get one first."""


class Authenticator:
    """Chooses the ``Authorization`` header per (registry, scope); thread-safe.

    ``registry`` is the host as operators name it (``docker.io``, ``127.0.0.1:5000``): credentials
    and tokens are looked up under it. ``scope`` is a space-separated list of token scopes, or ""
    for requests that need none (``/v2/``).
    """

    def __init__(
        self, credentials: CredentialStore, cache: TokenCache, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._credentials = credentials
        self._cache = cache
        self._clock = clock
        self._challenges: dict[str, Challenge] = {}
        self._lock = threading.Lock()

    def _known(self, registry: str) -> Challenge | None:
        with self._lock:
            return self._challenges.get(registry)

    def authorization(self, registry: str, scope: str) -> AuthStep:
        """What to send before any challenge: learnt basic auth, a cached token, or a token to fetch."""
        challenge = self._known(registry)
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            credential = self._credentials.lookup(registry)
            return credential.basic_header() if credential else None
        token = self._cache.get(registry, scope, self._clock())
        if token is not None:
            return token.header
        return self._fetch(registry, scope, challenge)

    def challenged(
        self, registry: str, scope: str, www_authenticate: str | None, sent: str | None
    ) -> AuthStep:
        """React to a 401: what to try next, or :class:`AuthenticationError` when nothing is left.

        ``sent`` is the ``Authorization`` of the refused request. The driver calls this at most once
        per request, which bounds the refresh to a single retry.
        """
        challenge = parse_challenge(www_authenticate) if www_authenticate else None
        if challenge is None:
            raise AuthenticationError(
                f"registry {registry} refused the request (HTTP 401) without saying how to authenticate"
            )
        if challenge.scheme in ("basic", "bearer"):
            with self._lock:
                self._challenges[registry] = challenge
        if challenge.scheme == "basic":
            return self._basic(registry, sent)
        if challenge.scheme == "bearer":
            if sent is not None:
                self._cache.discard(registry, scope, sent)
            if sent is not None and sent.startswith("Bearer ") and challenge.error == "insufficient_scope":
                raise self.refused(registry, scope, "the token does not grant the needed access")
            return self._fetch(registry, scope, challenge)
        raise AuthenticationError(
            f"registry {registry} asks for an authentication scheme imageprep does not support: "
            f"{challenge.scheme!r}"
        )

    def refused(self, registry: str, scope: str, why: str) -> AuthenticationError:
        """The error for a registry that keeps refusing us after one fresh attempt."""
        known = self._credentials.lookup(registry)
        who = f"user {known.username!r}" if known else "anonymous access"
        return AuthenticationError(
            f"registry {registry} refused {who} for {scope or 'access'}: {why}",
            hint="check the credentials for this registry (ContainerImageRegistryCredentials, an auth "
            "file, or --username/--password); a missing repository is sometimes reported this way too",
        )

    def _basic(self, registry: str, sent: str | None) -> str:
        credential = self._credentials.lookup(registry)
        if credential is None:
            raise AuthenticationError(
                f"registry {registry} requires a username and password, and none is configured",
                hint="add the registry to ContainerImageRegistryCredentials or log in with podman/skopeo",
            )
        header = credential.basic_header()
        if sent == header:
            raise AuthenticationError(
                f"registry {registry} refused the password of user {credential.username!r}",
                hint="check the credentials for this registry",
            )
        return header

    def _fetch(self, registry: str, scope: str, challenge: Challenge) -> TokenFetch:
        realm = challenge.realm
        if not realm or urlsplit(realm).scheme not in ("http", "https"):
            raise AuthenticationError(
                f"registry {registry} sent a bearer challenge without a usable realm URL"
            )
        params: list[tuple[str, str]] = []
        if challenge.service:
            params.append(("service", challenge.service))
        scopes = scope.split()
        if challenge.scope:
            scopes += [extra for extra in challenge.scope.split() if extra not in scopes]
        params += [("scope", item) for item in scopes]
        credential = self._credentials.lookup(registry)
        return TokenFetch(
            registry=registry,
            scope=scope,
            url=realm,
            params=tuple(params),
            authorization=credential.basic_header() if credential else None,
        )

    def token_received(self, fetch: TokenFetch, status: int, body: bytes) -> str:
        """Take the token server's reply: cache the token, return the header to send."""
        if status in (401, 403):
            raise self.refused(
                fetch.registry, fetch.scope, f"the token server {fetch.realm_host} said {status}"
            )
        if not 200 <= status < 300:
            raise AuthenticationError(
                f"token server {fetch.realm_host} for registry {fetch.registry} failed (HTTP {status})"
            )
        token: Token = token_from_reply(body, self._clock(), where=f"registry {fetch.registry}")
        self._cache.put(fetch.registry, fetch.scope, token)
        return token.header
