"""Authenticated requests to one registry: drives the auth state machine and follows redirects.

The ``Authorization`` header only ever goes to the registry's own API origin. A redirect to any
other host (a CDN serving blobs, a token realm elsewhere) is followed by hand and without it, so
credentials and tokens never leak to third parties.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urljoin, urlsplit

from imageprep.model.errors import RegistryError
from imageprep.registry.auth import Authenticator, AuthStep, TokenFetch
from imageprep.registry.endpoint import EndpointPolicy
from imageprep.registry.transport import Body, HttpResponse, StreamedResponse, Transport, raise_for_status

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def _netloc(url: str) -> str:
    return urlsplit(url).netloc.lower()


def _is_api_path(path: str) -> bool:
    """``repo/manifests/tag``: a path below ``/v2/`` that joins by plain concatenation."""
    return "://" not in path and not path.startswith(("/", ".", "?", "#")) and "/." not in path


class Connection:
    """Requests to one registry host (as operators name it, e.g. ``docker.io``)."""

    def __init__(
        self, registry: str, transport: Transport, endpoints: EndpointPolicy, authenticator: Authenticator
    ) -> None:
        self.registry = registry
        self._transport = transport
        self._endpoints = endpoints
        self._auth = authenticator

    @property
    def base_url(self) -> str:
        """``<scheme>://<api host>/v2/`` (or the mirror's) after probing."""
        return self._endpoints.base_url(self.registry)

    def url(self, path: str) -> str:
        """An API path (``repo/manifests/tag``) or an absolute URL the registry gave us."""
        base = self.base_url
        return base + path if _is_api_path(path) else urljoin(base, path)

    def _same_origin(self, url: str) -> bool:
        return _netloc(url) == _netloc(self.base_url)

    def _context(self, action: str, subject: str) -> str:
        return f"{action} {subject} on registry {self.registry}".replace("  ", " ")

    def _resolve(self, step: AuthStep, context: str) -> str | None:
        """Turn an auth step into a header, performing the token request when one is needed."""
        if not isinstance(step, TokenFetch):
            return step
        headers = {"Authorization": step.authorization} if step.authorization else {}
        params: dict[str, str | list[str]] = {}
        for name, value in step.params:
            existing = params.get(name)
            if existing is None:
                params[name] = value
            else:
                params[name] = [*(existing if isinstance(existing, list) else [existing]), value]
        reply = self._transport.send(
            "GET",
            step.url,
            headers=headers,
            params=params,
            verify=self._endpoints.verify(_netloc(step.url)),
            context=f"{context} (requesting a token from {step.realm_host})",
        )
        return self._auth.token_received(step, reply.status, reply.content)

    def _headers(self, url: str, header: str | None, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if header and self._same_origin(url):
            headers["Authorization"] = header
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        action: str,
        subject: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str | list[str]] | None = None,
        content: Body = None,
        follow_redirects: bool = False,
        limit: int | None = None,
    ) -> HttpResponse:
        """Send one API request; a 401 gets one fresh authentication and one retry.

        The response is returned whatever its status (callers decide what 404 means); a second
        401 raises :class:`~imageprep.model.errors.AuthenticationError`.
        """
        context = self._context(action, subject)
        url = self.url(path)
        header = self._resolve(self._auth.authorization(self.registry, scope), context)
        replayable = content is None or isinstance(content, bytes)
        response = self._send(method, url, header, headers, params, content, context, limit)
        if response.status == 401:
            if not replayable:
                raise self._auth.refused(self.registry, scope, "authentication was needed in mid-upload")
            step = self._auth.challenged(self.registry, scope, response.header("www-authenticate"), header)
            header = self._resolve(step, context)
            response = self._send(method, url, header, headers, params, content, context, limit)
            if response.status == 401:
                raise self._auth.refused(self.registry, scope, "HTTP 401 after authenticating")
        hops = 0
        while follow_redirects and response.status in _REDIRECTS and response.header("location"):
            hops += 1
            if hops > MAX_REDIRECTS:
                raise RegistryError(f"{context}: more than {MAX_REDIRECTS} redirects")
            url = urljoin(response.url, response.header("location") or "")
            response = self._send(method, url, header, headers, None, None, context, limit)
        return response

    def _send(
        self,
        method: str,
        url: str,
        header: str | None,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str | list[str]] | None,
        content: Body,
        context: str,
        limit: int | None = None,
    ) -> HttpResponse:
        return self._transport.send(
            method,
            url,
            headers=self._headers(url, header, headers),
            params=params,
            content=content,
            verify=self._endpoints.verify(_netloc(url)),
            context=context,
            limit=limit,
        )

    @contextmanager
    def stream(self, path: str, *, scope: str, action: str, subject: str) -> Iterator[StreamedResponse]:
        """GET a (large) body lazily; authentication and redirects as in :meth:`request`.

        Errors (including 404) are raised before anything is yielded.
        """
        context = self._context(action, subject)
        url = self.url(path)
        header = self._resolve(self._auth.authorization(self.registry, scope), context)
        authenticated_again = False
        for _ in range(MAX_REDIRECTS + 2):
            next_url: str | None = None
            challenge: str | None = None
            with self._transport.stream(
                "GET",
                url,
                headers=self._headers(url, header, None),
                verify=self._endpoints.verify(_netloc(url)),
                context=context,
            ) as response:
                location = response.header("location")
                if response.status == 401 and self._same_origin(url) and not authenticated_again:
                    challenge = response.header("www-authenticate") or ""
                    response.read()
                elif response.status in _REDIRECTS and location:
                    next_url = urljoin(response.url, location)
                    response.read()
                elif response.status == 401:
                    raise self._auth.refused(self.registry, scope, "HTTP 401 after authenticating")
                else:
                    raise_for_status(
                        response.complete() if response.status >= 300 else _EMPTY_OK,
                        registry=self.registry,
                        subject=subject,
                        action=action,
                    )
                    yield response
                    return
            if challenge is not None:
                authenticated_again = True
                step = self._auth.challenged(self.registry, scope, challenge or None, header)
                header = self._resolve(step, context)
            elif next_url is not None:
                url = next_url
        raise RegistryError(f"{context}: more than {MAX_REDIRECTS} redirects")


_EMPTY_OK = HttpResponse(200, {}, b"", "")
