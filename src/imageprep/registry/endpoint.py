"""Which URL reaches a registry, and whether TLS there is verified.

Verified TLS is the rule. Plain HTTP or unverified TLS is used only for hosts the caller declared
insecure, and plain HTTP also for loopback registries that do not speak TLS at all (a test or
bootstrap registry on 127.0.0.1). Such hosts are asked in plain HTTP first, which costs a TLS
registry one short request and a plain one nothing more than its first request; any other host
is not asked at all (verified TLS is its only answer), nor is a loopback host with CA certificates
of its own in ``certs.d`` (it speaks TLS: that is what they are for). Probe results are cached per host; the
hosts found or declared insecure are what ``DockerInsecureRegistryAddress`` must list, so the
caller can ask for them.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterable
from typing import Literal, Protocol
from urllib.parse import urlsplit

from imageprep.model.errors import ConfigurationError
from imageprep.model.reference import DOCKER_HUB, DOCKER_HUB_API_HOST

Scheme = Literal["https", "https-noverify", "http"]


ProbeOutcome = int | Literal["tls-error", "unreachable"]

# What ``/v2/`` of a registry answers. A TLS-only server spoken to in plain HTTP answers 400,
# which must not be mistaken for a plain-HTTP registry.
_BUSY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REGISTRY_STATUSES = frozenset({200, 401, 403})


class Prober(Protocol):
    """One un-retried GET: the HTTP status, or ``tls-error`` / ``unreachable``."""

    def probe(self, url: str, *, verify: bool) -> ProbeOutcome: ...


def api_host(host: str) -> str:
    """The host that serves a registry's API (Docker Hub's differs from its name)."""
    return DOCKER_HUB_API_HOST if host == DOCKER_HUB else host


def split_host_port(host: str) -> tuple[str, int | None]:
    """``[::1]:5000`` → (``::1``, 5000); ``localhost`` → (``localhost``, None)."""
    if host.startswith("["):
        address, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return address, int(port) if port.isdigit() else None
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        return name, int(port)
    return host, None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (with or without port) is ``localhost``, 127.0.0.0/8 or ``::1``."""
    name, _ = split_host_port(host)
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def normalise_mirror(url: str) -> str:
    """A ``DockerRegistryMirror`` URL with exactly one trailing slash; validated."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"DockerRegistryMirror {url!r} is not an http(s) URL", hint="for example http://192.0.2.2:5001/"
        )
    return url.strip().rstrip("/") + "/"


class EndpointPolicy:
    """Base URLs and TLS verification per registry host, from probes cached for the run."""

    def __init__(
        self,
        prober: Prober,
        *,
        insecure: Iterable[str] = (),
        mirror: str | None = None,
        speaks_tls: Callable[[str], bool] = lambda host: False,
    ) -> None:
        self._prober = prober
        self._speaks_tls = speaks_tls
        self._declared = frozenset(h.strip().lower() for h in insecure if h.strip())
        self._mirror = normalise_mirror(mirror) if mirror else None
        self._results: dict[str, Scheme] = {}
        # API hosts reached over unverified TLS; replaced whole (never changed in place), so the
        # per-request checks read it without taking a lock.
        self._unverified_netlocs: frozenset[str] = frozenset()
        self._host_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def declared_insecure(self, host: str) -> bool:
        """Whether the caller declared ``host`` insecure."""
        return host.lower() in self._declared

    def _host_lock(self, host: str) -> threading.Lock:
        with self._lock:
            return self._host_locks.setdefault(host, threading.Lock())

    def probe(self, host: str) -> Scheme:
        """How ``host`` is reached; probed once (concurrent callers wait for the first probe)."""
        known = self._results.get(host)  # every request asks: answered without a lock once known
        if known is not None:
            return known
        with self._host_lock(host):
            with self._lock:
                known = self._results.get(host)
            if known is not None:
                return known
            result, conclusive = self._probe(api_host(host))
            if conclusive:
                with self._lock:
                    self._results[host] = result
                    if result == "https-noverify":
                        self._unverified_netlocs = self._unverified_netlocs | {api_host(host).lower()}
            return result

    def _probe(self, host: str) -> tuple[Scheme, bool]:
        """The scheme, and whether the answer is conclusive (worth remembering for the run)."""
        declared = self.declared_insecure(host)
        if not declared and (not is_loopback(host) or self._speaks_tls(host)):
            # Verified TLS or nothing: there is no other answer to look for, so nothing is asked
            # (the first real request finds out whether the host is there).
            return "https", True
        # Plain HTTP first: a plain-HTTP registry (the usual loopback case) answers at once, with
        # no TLS handshake and no CA bundle loaded; a TLS server answers it 400 (or hangs up).
        answer = self._prober.probe(f"http://{host}/v2/", verify=False)
        if answer in _REGISTRY_STATUSES:
            return "http", True
        if answer in _BUSY_STATUSES:
            # A plain-HTTP server that is busy right now: use HTTP, but ask again next time
            # rather than remembering a guess for the whole run.
            return "http", False
        tls: Scheme = "https-noverify" if declared else "https"
        if isinstance(answer, int):
            # It answers, but not as a plain-HTTP registry: TLS. Its certificate is checked by the
            # first real request (a declared-insecure one is not checked at all), so no second probe.
            return tls, True
        speaks_tls = self._prober.probe(f"https://{host}/v2/", verify=False)
        if speaks_tls == "unreachable":
            # Nothing answered at all: keep the secure default and let the real request report it.
            return "https", False
        return tls, True

    def base_url(self, host: str) -> str:
        """The ``.../v2/`` URL that API paths are appended to (the mirror's for Docker Hub)."""
        if host == DOCKER_HUB and self._mirror:
            return f"{self._mirror}v2/"
        scheme = "http" if self.probe(host) == "http" else "https"
        return f"{scheme}://{api_host(host)}/v2/"

    def verify(self, netloc: str) -> bool:
        """Whether TLS to ``netloc`` (a URL's host[:port]) is verified."""
        return not self.declared_insecure(netloc) and netloc not in self._unverified_netlocs

    def insecure_hosts(self) -> frozenset[str]:
        """Hosts probed as plain HTTP or unverifiable TLS, plus every declared-insecure host."""
        with self._lock:
            probed = {host for host, scheme in self._results.items() if scheme != "https"}
        return frozenset(probed | self._declared)
