"""Pure protocol logic of the registry layer: endpoints, error mapping, streams, links."""

from __future__ import annotations

import pytest

from imageprep.model.errors import (
    AuthenticationError,
    ConfigurationError,
    DigestMismatchError,
    NotFoundError,
    RegistryError,
    TransientError,
)
from imageprep.model.manifest import Descriptor, sha256_digest
from imageprep.registry.client import next_link
from imageprep.registry.digests import Slicer
from imageprep.registry.endpoint import EndpointPolicy, ProbeOutcome, api_host, is_loopback
from imageprep.registry.errordocs import error_details, raise_for_status
from imageprep.registry.request import wire_headers, with_params
from imageprep.registry.responses import HttpResponse
from imageprep.registry.retryafter import parse_retry_after


class FakeProber:
    """Answers probes from a table ``{url: outcome}``; anything else is unreachable."""

    def __init__(self, table: dict[tuple[str, bool], ProbeOutcome]) -> None:
        self.table = table
        self.calls: list[tuple[str, bool]] = []

    def probe(self, url: str, *, verify: bool) -> ProbeOutcome:
        self.calls.append((url, verify))
        return self.table.get((url, verify), "unreachable")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1:5000", True),
        ("127.3.4.5", True),
        ("localhost:8787", True),
        ("[::1]:5000", True),
        ("192.168.24.1:8787", False),
        ("quay.io", False),
        ("localhost.example", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_docker_hub_is_reached_through_its_api_host() -> None:
    assert api_host("docker.io") == "registry-1.docker.io"
    assert api_host("quay.io") == "quay.io"
    prober = FakeProber({("https://registry-1.docker.io/v2/", True): 401})
    policy = EndpointPolicy(prober)
    assert policy.base_url("docker.io") == "https://registry-1.docker.io/v2/"


def test_verified_tls_is_the_default_and_costs_no_probe() -> None:
    prober = FakeProber({("https://quay.io/v2/", True): 200})
    policy = EndpointPolicy(prober)
    assert policy.probe("quay.io") == "https"
    assert policy.probe("quay.io") == "https"
    assert prober.calls == []  # the answer could not be anything else: nothing is asked
    assert policy.insecure_hosts() == frozenset()


def plain_http_server(host: str, status: ProbeOutcome = 200) -> dict[tuple[str, bool], ProbeOutcome]:
    """What probes of a registry that speaks no TLS get: a failed handshake, or ``status`` in HTTP."""
    return {
        (f"https://{host}/v2/", True): "tls-error",
        (f"https://{host}/v2/", False): "tls-error",
        (f"http://{host}/v2/", False): status,
    }


def test_loopback_without_tls_falls_back_to_plain_http() -> None:
    prober = FakeProber(plain_http_server("127.0.0.1:5000"))
    policy = EndpointPolicy(prober)
    assert policy.base_url("127.0.0.1:5000") == "http://127.0.0.1:5000/v2/"
    assert policy.insecure_hosts() == {"127.0.0.1:5000"}


def test_finding_a_plain_http_loopback_registry_never_needs_the_ca_bundle() -> None:
    prober = FakeProber(plain_http_server("127.0.0.1:5000"))
    assert EndpointPolicy(prober).probe("127.0.0.1:5000") == "http"
    assert all(not verify for _, verify in prober.calls)


def tls_server(host: str, verifies: bool = True) -> dict[tuple[str, bool], ProbeOutcome]:
    """A registry that speaks TLS only: 400 to plain HTTP (as Go's server answers), 200 in TLS."""
    return {
        (f"http://{host}/v2/", False): 400,
        (f"https://{host}/v2/", False): 200,
        (f"https://{host}/v2/", True): 200 if verifies else "tls-error",
    }


def test_loopback_registry_with_tls_costs_one_plain_probe_and_is_verified() -> None:
    prober = FakeProber(tls_server("127.0.0.1:5443"))
    policy = EndpointPolicy(prober)
    assert policy.probe("127.0.0.1:5443") == "https"
    assert policy.verify("127.0.0.1:5443") is True
    # No handshake at all to find out; the first real request verifies the certificate.
    assert prober.calls == [("http://127.0.0.1:5443/v2/", False)]


def test_a_tls_server_that_hangs_up_on_plain_http_is_asked_in_tls() -> None:
    table = tls_server("127.0.0.1:5443")
    del table[("http://127.0.0.1:5443/v2/", False)]  # unreachable in plain HTTP
    prober = FakeProber(table)
    assert EndpointPolicy(prober).probe("127.0.0.1:5443") == "https"
    assert ("https://127.0.0.1:5443/v2/", False) in prober.calls


def test_loopback_registry_with_a_bad_certificate_is_not_trusted_unless_declared() -> None:
    table = tls_server("127.0.0.1:5443", verifies=False)
    assert EndpointPolicy(FakeProber(table)).probe("127.0.0.1:5443") == "https"
    assert EndpointPolicy(FakeProber(table), insecure=["127.0.0.1:5443"]).probe("127.0.0.1:5443") == (
        "https-noverify"
    )


def test_remote_host_is_never_downgraded_unless_declared() -> None:
    prober = FakeProber(plain_http_server("10.0.0.5:5000"))
    assert EndpointPolicy(prober).probe("10.0.0.5:5000") == "https"
    assert prober.calls == []
    declared = EndpointPolicy(prober, insecure=["10.0.0.5:5000"])
    assert declared.probe("10.0.0.5:5000") == "http"


def test_declared_insecure_host_with_bad_certificate_is_used_without_verification() -> None:
    prober = FakeProber(
        {("https://192.0.2.9:8787/v2/", True): "tls-error", ("https://192.0.2.9:8787/v2/", False): 401}
    )  # it speaks TLS, but its certificate does not verify
    policy = EndpointPolicy(prober, insecure=["192.0.2.9:8787"])
    assert policy.probe("192.0.2.9:8787") == "https-noverify"
    assert policy.base_url("192.0.2.9:8787") == "https://192.0.2.9:8787/v2/"
    assert policy.verify("192.0.2.9:8787") is False
    assert policy.verify("quay.io") is True
    assert policy.insecure_hosts() == {"192.0.2.9:8787"}


def test_tls_only_loopback_server_answering_400_to_http_is_not_taken_for_plain_http() -> None:
    # A handshake that failed for another reason sends the probe to plain HTTP, where a TLS-only
    # server answers 400: that is no registry, so TLS stays the answer.
    prober = FakeProber(plain_http_server("127.0.0.1:5443", 400))
    assert EndpointPolicy(prober).probe("127.0.0.1:5443") == "https"


def test_unreachable_host_is_not_cached() -> None:
    prober = FakeProber({})
    policy = EndpointPolicy(prober)
    assert policy.probe("127.0.0.1:1") == "https"
    assert policy.probe("127.0.0.1:1") == "https"
    assert len(prober.calls) == 4  # plain HTTP, then TLS, each time: nothing is remembered


def test_docker_hub_mirror_takes_all_docker_io_calls() -> None:
    prober = FakeProber({})
    policy = EndpointPolicy(prober, mirror="http://127.0.0.1:5001")
    assert policy.base_url("docker.io") == "http://127.0.0.1:5001/v2/"
    assert prober.calls == []
    with pytest.raises(ConfigurationError, match="DockerRegistryMirror"):
        EndpointPolicy(prober, mirror="127.0.0.1:5001")


# --- transport helpers -------------------------------------------------------------------------


def test_retry_after_in_seconds_and_as_a_date() -> None:
    assert parse_retry_after("7", 0.0) == 7.0
    assert parse_retry_after(None, 0.0) is None
    assert parse_retry_after("soon", 0.0) is None
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:30 GMT", 10.0) == pytest.approx(20.0)


def _response(status: int, body: bytes = b"") -> HttpResponse:
    return HttpResponse(status, {}, body, "http://127.0.0.1:5000/v2/x")


def test_registry_error_json_becomes_the_message() -> None:
    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}'
    assert error_details(body) == "MANIFEST_UNKNOWN: manifest unknown"
    with pytest.raises(NotFoundError) as caught:
        raise_for_status(
            _response(404, body), registry="127.0.0.1:5000", subject="manifest a/b:c", action="reading"
        )
    message = str(caught.value)
    assert "127.0.0.1:5000" in message and "a/b:c" in message and "manifest unknown" in message


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, b"", AuthenticationError),
        (
            403,
            b'{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}',
            AuthenticationError,
        ),
        (404, b"", NotFoundError),
        (
            400,
            b'{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match"}]}',
            DigestMismatchError,
        ),
        (400, b"<html>bad</html>", RegistryError),
        (503, b"", TransientError),
    ],
)
def test_status_codes_map_to_error_classes(status: int, body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        raise_for_status(_response(status, body), registry="r", subject="s", action="a")
    raise_for_status(_response(201), registry="r", subject="s", action="a")


# --- streams and links -------------------------------------------------------------------------


def _descriptor(data: bytes) -> Descriptor:
    return Descriptor("application/octet-stream", sha256_digest(data), len(data))


def test_an_upload_stream_is_sliced_without_gathering_its_pieces() -> None:
    slicer = Slicer([b"ab", b"cdefg", b"h"])
    assert list(slicer.take(3)) == [b"ab", b"c"]  # pieces as they come, cut where the slice ends
    assert list(slicer.take(3)) == [b"def"]
    assert list(slicer.take(2)) == [b"g", b"h"]
    assert slicer.rest() == b""
    short = Slicer([b"ab"])
    with pytest.raises(EOFError):
        list(short.take(3))
    long = Slicer([b"abcd"])
    assert b"".join(long.take(3)) == b"abc" and long.rest() == b"d"


def test_next_link_is_resolved_against_the_current_url() -> None:
    current = "http://127.0.0.1:5000/v2/a/tags/list?n=2"
    header = '</v2/a/tags/list?last=t2&n=2>; rel="next"'
    assert next_link(header, current) == "http://127.0.0.1:5000/v2/a/tags/list?last=t2&n=2"
    assert next_link('<https://x/y>; rel="prev", <https://x/z>; rel=next', current) == "https://x/z"
    assert next_link(None, current) is None
    assert next_link('<https://x/y>; rel="prev"', current) is None


def test_registry_client_satisfies_the_image_store_protocol() -> None:
    from imageprep.registry import RegistrySession
    from imageprep.transfer.store import ImageStore

    def location_of(store: ImageStore) -> str:  # mypy checks the structural match here
        return store.location

    with RegistrySession() as session:
        assert location_of(session.client("127.0.0.1:5000")) == "127.0.0.1:5000"


def test_registry_layer_does_not_import_higher_layers() -> None:
    from pathlib import Path

    import imageprep.registry

    package = Path(imageprep.registry.__file__).parent
    for module in package.glob("*.py"):
        text = module.read_text()
        for layer in ("transfer", "prepare", "catalogue", "cli"):
            assert f"imageprep.{layer}" not in text, f"{module.name} imports imageprep.{layer}"


def test_busy_plain_http_loopback_registry_is_used_over_http_and_asked_again_later() -> None:
    prober = FakeProber(plain_http_server("127.0.0.1:5000", 503))
    policy = EndpointPolicy(prober)
    assert policy.probe("127.0.0.1:5000") == "http"
    prober.table[("http://127.0.0.1:5000/v2/", False)] = 200
    assert policy.probe("127.0.0.1:5000") == "http"
    assert policy.probe("127.0.0.1:5000") == "http"
    assert len(prober.calls) == 2  # one request per probe; the second probe's answer is remembered


def test_query_parameters_are_added_to_an_upload_location_without_touching_its_own_query() -> None:
    location = "http://127.0.0.1:5000/v2/ns/app/blobs/uploads/u-1?_state=a%2Bb%3D%3D"
    assert with_params(location, {"digest": "sha256:" + "ab" * 32}) == (
        f"{location}&digest=sha256%3A{'ab' * 32}"
    )
    assert with_params("http://h/v2/token", {"scope": ["a", "b"], "service": "s"}) == (
        "http://h/v2/token?scope=a&scope=b&service=s"
    )
    assert with_params("http://h/v2/x?", {"n": "2"}) == "http://h/v2/x?n=2"
    assert with_params("http://h/v2/x", {}) == "http://h/v2/x"


def test_requests_carry_host_agent_and_body_framing() -> None:
    def headers(content: bytes | list[bytes] | None, given: dict[str, str]) -> dict[bytes, bytes]:
        return dict(wire_headers("http://127.0.0.1:5000/v2/a", given, content))

    plain = headers(None, {})
    assert plain[b"Host"] == b"127.0.0.1:5000"
    assert plain[b"User-Agent"].startswith(b"imageprep/")
    assert b"Content-Length" not in plain and b"Transfer-Encoding" not in plain
    assert headers(b"abc", {})[b"Content-Length"] == b"3"
    assert headers([b"abc"], {})[b"Transfer-Encoding"] == b"chunked"
    streamed = headers([b"abc"], {"Content-Length": "3"})
    assert streamed[b"Content-Length"] == b"3" and b"Transfer-Encoding" not in streamed


@pytest.mark.parametrize(
    "path",
    [
        "tripleomaster/centos-binary-nova-api/manifests/current-tripleo",
        "ceph/daemon/blobs/sha256:" + "a" * 64,
        "_catalog",
        "a/b/blobs/uploads/?mount=sha256:" + "b" * 64 + "&from=c/d",
        "/v2/a/blobs/uploads/8d3f?_state=x",
        "http://127.0.0.1:5000/v2/a/blobs/uploads/8d3f",
        "https://cdn.example/blob?sig=1",
        "../outside",
        "a/./b",
        "?only=query",
    ],
)
def test_api_paths_and_registry_urls_join_as_urljoin_does(path: str) -> None:
    from urllib.parse import urljoin

    from imageprep.registry.auth import Authenticator
    from imageprep.registry.connection import Connection
    from imageprep.registry.credentials import CredentialStore
    from imageprep.registry.tokens import TokenCache

    policy = EndpointPolicy(FakeProber({}), mirror="http://127.0.0.1:5001")
    connection = Connection("docker.io", None, policy, Authenticator(CredentialStore(), TokenCache()))  # type: ignore[arg-type]
    assert connection.url(path) == urljoin("http://127.0.0.1:5001/v2/", path)
