"""Authenticated calls to one registry: drives the auth state machine and follows redirects.

The ``Authorization`` header only ever goes to the registry's own API origin. A redirect to any
other host (a CDN serving blobs, a token realm elsewhere) is followed by hand and without it, so
credentials and tokens never leak to third parties.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from urllib.parse import urljoin, urlsplit

from imageprep.model.errors import RegistryError
from imageprep.model.retry import Retrier
from imageprep.registry.auth import Authenticator, AuthStep, TokenFetch
from imageprep.registry.endpoint import EndpointPolicy
from imageprep.registry.errordocs import raise_for_status
from imageprep.registry.request import Body, HttpRequest, Params
from imageprep.registry.responses import HttpResponse, StreamedResponse
from imageprep.registry.transport import Transport

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def _netloc(url: str) -> str:
    return urlsplit(url).netloc.lower()


def _is_api_path(path: str) -> bool:
    """``repo/manifests/tag``: a path below ``/v2/`` that joins by plain concatenation."""
    return "://" not in path and not path.startswith(("/", ".", "?", "#")) and "/." not in path


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One call of the distribution API: what to send, the token scope it needs, what it is for.

    ``path`` is an API path below ``/v2/`` (``repo/manifests/tag``) or an absolute URL the
    registry handed out (an upload location). ``action`` and ``subject`` make the error messages
    (``reading`` + ``manifest repo:tag``). ``retry`` off: the transport makes one attempt and the
    caller retries the whole operation (upload steps whose effect a lost answer leaves unknown).
    """

    method: str
    path: str
    scope: str
    action: str
    subject: str
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Params | None = None
    body: Body = None
    follow_redirects: bool = False
    limit: int | None = None
    retry: bool = True
    bulk: bool = False  # blob bytes: see HttpRequest.bulk


class Connection:
    """Calls to one registry host (as operators name it, e.g. ``docker.io``)."""

    def __init__(
        self, registry: str, transport: Transport, endpoints: EndpointPolicy, authenticator: Authenticator
    ) -> None:
        self.registry = registry
        self._transport = transport
        self._endpoints = endpoints
        self._auth = authenticator

    @property
    def retrier(self) -> Retrier:
        """The run's retrier (operations made of several calls retry through it)."""
        return self._transport.retrier

    @property
    def base_url(self) -> str:
        """``<scheme>://<api host>/v2/`` (or the mirror's) after probing."""
        return self._endpoints.base_url(self.registry)

    def url(self, path: str) -> str:
        """An API path (``repo/manifests/tag``) or an absolute URL the registry gave us."""
        base = self.base_url
        return base + path if _is_api_path(path) else urljoin(base, path)

    def context(self, call: ApiCall) -> str:
        """What the call does, for messages: ``reading manifest x on registry y``."""
        return f"{call.action} {call.subject} on registry {self.registry}".replace("  ", " ")

    def check(self, response: HttpResponse, call: ApiCall) -> None:
        """Raise the matching error for an unsuccessful answer to ``call``."""
        raise_for_status(response, registry=self.registry, subject=call.subject, action=call.action)

    def _same_origin(self, url: str) -> bool:
        return _netloc(url) == _netloc(self.base_url)

    def _resolve(self, step: AuthStep, context: str) -> str | None:
        """Turn an auth step into a header, performing the token request when one is needed."""
        if not isinstance(step, TokenFetch):
            return step
        params: dict[str, str | list[str]] = {}
        for name, value in step.params:
            existing = params.get(name)
            if existing is None:
                params[name] = value
            else:
                params[name] = [*(existing if isinstance(existing, list) else [existing]), value]
        reply = self._transport.send(
            HttpRequest(
                "GET",
                step.url,
                context=f"{context} (requesting a token from {step.realm_host})",
                headers={"Authorization": step.authorization} if step.authorization else {},
                verify=self._endpoints.verify(_netloc(step.url)),
            ).with_params(params)
        )
        return self._auth.token_received(step, reply.status, reply.content)

    def _request(self, call: ApiCall, url: str, header: str | None, context: str) -> HttpRequest:
        headers = dict(call.headers)
        if header and self._same_origin(url):
            headers["Authorization"] = header
        return HttpRequest(
            call.method,
            url,
            context=context,
            headers=headers,
            body=call.body,
            verify=self._endpoints.verify(_netloc(url)),
            retry=call.retry,
            limit=call.limit,
            bulk=call.bulk,
        )

    def send(self, call: ApiCall) -> HttpResponse:
        """Make the call and read the answer; a 401 gets one fresh authentication and one retry.

        The response is returned whatever its status (callers decide what 404 means); a second
        401 raises :class:`~imageprep.model.errors.AuthenticationError`.
        """
        context = self.context(call)
        url = self.url(call.path)
        header = self._resolve(self._auth.authorization(self.registry, call.scope), context)
        first = self._request(call, url, header, context).with_params(call.params)
        response = self._transport.send(first)
        if response.status == 401:
            if not first.replayable:
                raise self._auth.refused(self.registry, call.scope, "authentication was needed in mid-upload")
            step = self._auth.challenged(
                self.registry, call.scope, response.header("www-authenticate"), header
            )
            header = self._resolve(step, context)
            response = self._transport.send(
                self._request(call, url, header, context).with_params(call.params)
            )
            if response.status == 401:
                raise self._auth.refused(self.registry, call.scope, "HTTP 401 after authenticating")
        hops = 0
        while call.follow_redirects and response.status in _REDIRECTS and response.header("location"):
            hops += 1
            if hops > MAX_REDIRECTS:
                raise RegistryError(f"{context}: more than {MAX_REDIRECTS} redirects")
            url = urljoin(response.url, response.header("location") or "")
            response = self._transport.send(self._request(replace(call, body=None), url, header, context))
        return response

    @contextmanager
    def open(self, call: ApiCall) -> Iterator[StreamedResponse]:
        """GET a (large) body lazily, in one attempt; authentication and redirects as in :meth:`send`.

        Errors (including 404) are raised before anything is yielded.
        """
        context = self.context(call)
        url = self.url(call.path)
        header = self._resolve(self._auth.authorization(self.registry, call.scope), context)
        authenticated_again = False
        for _ in range(MAX_REDIRECTS + 2):
            next_url: str | None = None
            challenge: str | None = None
            with self._transport.open(self._request(call, url, header, context)) as response:
                location = response.header("location")
                if response.status == 401 and self._same_origin(url) and not authenticated_again:
                    challenge = response.header("www-authenticate") or ""
                    response.read(limit=64 * 1024)
                elif response.status in _REDIRECTS and location:
                    next_url = urljoin(response.url, location)
                    response.read(limit=64 * 1024)
                elif response.status == 401:
                    raise self._auth.refused(self.registry, call.scope, "HTTP 401 after authenticating")
                else:
                    if response.status >= 300:
                        self.check(response.complete(limit=64 * 1024), call)
                    yield response
                    return
            if challenge is not None:
                authenticated_again = True
                step = self._auth.challenged(self.registry, call.scope, challenge or None, header)
                header = self._resolve(step, context)
            elif next_url is not None:
                url = next_url
        raise RegistryError(f"{context}: more than {MAX_REDIRECTS} redirects")
