"""The registry client against real docker-registry instances and scripted edge-case servers."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from imageprep.model import mediatypes
from imageprep.model.blobs import BytesBody, StreamBody
from imageprep.model.errors import AuthenticationError, DigestMismatchError, NotFoundError, RegistryError
from imageprep.model.manifest import Descriptor, Manifest, sha256_digest
from imageprep.model.retry import RetryPolicy
from imageprep.registry import (
    Credential,
    CredentialStore,
    RegistryClient,
    RegistrySession,
    UploadPolicy,
)
from imageprep.registry.request import HttpRequest
from imageprep.registry.transport import Transport
from tests.support.httpserver import Recorded, Reply, scripted_server
from tests.support.imagegen import GeneratedImage, make_image, random_layer
from tests.support.registry_server import RunningRegistry
from tests.support.seeding import seed_image, skopeo_inspect, skopeo_raw_manifest

pytestmark = pytest.mark.integration

VARIANTS = ["plain_registry", "basic_auth_registry", "token_registry", "tls_registry"]
FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02)


def session_for(registry: RunningRegistry, **options: object) -> RegistrySession:
    credentials = CredentialStore(
        {registry.host: Credential(registry.username, registry.password or "")} if registry.username else {}
    )
    return RegistrySession(credentials, ca_file=registry.ca_file, retry=FAST_RETRY, **options)  # type: ignore[arg-type]


@pytest.fixture(params=VARIANTS)
def registry(request: pytest.FixtureRequest) -> RunningRegistry:
    running: RunningRegistry = request.getfixturevalue(request.param)
    return running


@pytest.fixture
def client(registry: RunningRegistry) -> Iterator[RegistryClient]:
    with session_for(registry) as session:
        yield session.client(registry.host)


def push_image(client: RegistryClient, repository: str, tag: str, image: GeneratedImage) -> Manifest:
    for blob in image.blobs:
        descriptor = Descriptor(blob.media_type, blob.digest, len(blob.data))
        if not client.has_blob(repository, blob.digest):
            client.write_blob(
                repository,
                descriptor,
                StreamBody([blob.data[i : i + 1000] for i in range(0, len(blob.data), 1000)]),
            )
    manifest = Manifest.parse(image.manifest, image.manifest_media_type, f"{repository}:{tag}")
    client.put_manifest(repository, tag, manifest)
    return manifest


# --- every variant -------------------------------------------------------------------------------


def test_ping_succeeds(client: RegistryClient) -> None:
    client.ping()


def test_pushed_image_is_seen_by_skopeo_with_the_same_digest(
    registry: RunningRegistry, client: RegistryClient
) -> None:
    image = make_image({"name": "pushed", "variant": registry.url})
    manifest = push_image(client, "imageprep/pushed", "v1", image)
    assert skopeo_inspect(registry, "imageprep/pushed", "v1")["Digest"] == manifest.digest == image.digest
    assert skopeo_raw_manifest(registry, "imageprep/pushed", "v1") == image.manifest
    assert client.manifest_digest("imageprep/pushed", "v1") == image.digest
    assert client.labels("imageprep/pushed", "v1") == {"name": "pushed", "variant": registry.url}


def test_manifest_seeded_by_skopeo_is_read_byte_for_byte(
    registry: RunningRegistry, client: RegistryClient
) -> None:
    image = make_image({"seeded": "yes"}, oci=True)
    seed_image(registry, "imageprep/seeded", "v1", image)
    manifest = client.get_manifest("imageprep/seeded", "v1")
    assert manifest.raw == image.manifest
    assert manifest.media_type == mediatypes.OCI_MANIFEST
    assert client.get_manifest("imageprep/seeded", image.digest).raw == image.manifest
    assert client.get_config("imageprep/seeded", manifest)["config"]["Labels"] == {"seeded": "yes"}
    layer = image.layers[0]
    with client.read_blob(
        "imageprep/seeded", Descriptor(layer.media_type, layer.digest, len(layer.data))
    ) as chunks:
        assert b"".join(chunks) == layer.data


def test_missing_things_are_reported_as_missing(client: RegistryClient, registry: RunningRegistry) -> None:
    assert client.manifest_digest("imageprep/absent", "v1") is None
    assert client.list_tags("imageprep/absent") == []
    assert client.has_blob("imageprep/absent", sha256_digest(b"nothing")) is False
    with pytest.raises(NotFoundError) as caught:
        client.get_manifest("imageprep/absent", "v1")
    assert registry.host in str(caught.value) and "imageprep/absent:v1" in str(caught.value)


def test_blob_mount_across_repositories(client: RegistryClient) -> None:
    image = make_image({"mount": "source"})
    push_image(client, "imageprep/mount-source", "v1", image)
    layer = image.layers[0]
    assert client.mount_blob("imageprep/mount-target", layer.digest, "imageprep/mount-source") is True
    assert client.has_blob("imageprep/mount-target", layer.digest)
    missing = sha256_digest(b"never pushed")
    assert client.mount_blob("imageprep/mount-target", missing, "imageprep/mount-source") is False
    assert not client.has_blob("imageprep/mount-target", missing)


# --- pagination, chunking, atomicity -------------------------------------------------------------


@pytest.mark.parametrize("variant", ["plain_registry", "token_registry"])
def test_tags_and_catalog_follow_pagination(variant: str, request: pytest.FixtureRequest) -> None:
    registry: RunningRegistry = request.getfixturevalue(variant)
    with session_for(registry, page_size=2) as session:
        client = session.client(registry.host)
        image = make_image({"paged": "yes"})
        manifest = push_image(client, "imageprep/paged", "t0", image)
        tags = [f"t{i}" for i in range(7)]
        for tag in tags[1:]:
            client.put_manifest("imageprep/paged", tag, manifest)
        # docker-registry 2.8 ignores ``n`` for tags (see the scripted test below) and does not sort.
        assert sorted(client.list_tags("imageprep/paged")) == tags
        push_image(client, "imageprep/paged-2", "x", image)
        push_image(client, "imageprep/paged-3", "x", image)
        catalog = client.catalog()
        assert {"imageprep/paged", "imageprep/paged-2", "imageprep/paged-3"} <= set(catalog)
        assert len(catalog) == len(set(catalog))


@pytest.mark.parametrize("variant", ["plain_registry", "token_registry"])
def test_blob_larger_than_the_threshold_is_uploaded_in_chunks(
    variant: str, request: pytest.FixtureRequest
) -> None:
    registry: RunningRegistry = request.getfixturevalue(variant)
    layer = random_layer(300_000, f"chunked-{variant}")
    descriptor = Descriptor(layer.media_type, layer.digest, len(layer.data))
    upload = UploadPolicy(monolithic_limit=64 * 1024, chunk_size=50_000)
    with session_for(registry, upload=upload) as session:
        client = session.client(registry.host)
        client.write_blob(
            "imageprep/chunked",
            descriptor,
            StreamBody([layer.data[i : i + 7000] for i in range(0, len(layer.data), 7000)]),
        )
        with client.read_blob("imageprep/chunked", descriptor) as chunks:
            assert b"".join(chunks) == layer.data


@pytest.mark.parametrize("size", [1000, 200_000])
def test_failing_stream_commits_nothing(plain_registry: RunningRegistry, size: int) -> None:
    layer = random_layer(size, f"aborted-{size}")
    descriptor = Descriptor(layer.media_type, layer.digest, len(layer.data))

    def chunks() -> Iterator[bytes]:
        yield layer.data[: size // 2]
        raise OSError("source disappeared")

    with session_for(
        plain_registry, upload=UploadPolicy(monolithic_limit=64 * 1024, chunk_size=20_000)
    ) as session:
        client = session.client(plain_registry.host)
        with pytest.raises(OSError, match="source disappeared"):
            client.write_blob("imageprep/aborted", descriptor, StreamBody(chunks()))
        assert not client.has_blob("imageprep/aborted", layer.digest)
        wrong = Descriptor(layer.media_type, sha256_digest(b"other"), len(layer.data))
        with pytest.raises(DigestMismatchError):
            client.write_blob("imageprep/aborted", wrong, BytesBody(layer.data))
        assert not client.has_blob("imageprep/aborted", wrong.digest)


# --- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["basic_auth_registry", "token_registry"])
def test_wrong_credentials_are_an_authentication_error_naming_registry_and_user(
    variant: str, request: pytest.FixtureRequest
) -> None:
    registry: RunningRegistry = request.getfixturevalue(variant)
    wrong_password = "definitely-Wrong-pw"
    store = CredentialStore({registry.host: Credential("mallory", wrong_password)})
    with RegistrySession(store, retry=FAST_RETRY) as session, pytest.raises(AuthenticationError) as caught:
        session.client(registry.host).ping()
    message = str(caught.value)
    assert registry.host in message and "mallory" in message
    assert wrong_password not in message


def test_basic_registry_without_credentials_says_what_is_missing(
    basic_auth_registry: RunningRegistry,
) -> None:
    with RegistrySession(retry=FAST_RETRY) as session, pytest.raises(AuthenticationError, match="requires"):
        session.client(basic_auth_registry.host).get_manifest("imageprep/x", "v1")


def test_bearer_tokens_are_fetched_once_per_scope(token_registry: RunningRegistry) -> None:
    assert token_registry.token_server is not None
    requests = token_registry.token_server.requests
    with session_for(token_registry) as session:
        client = session.client(token_registry.host)
        image = make_image({"tokens": "cached"})
        push_image(client, "imageprep/tokens", "v1", image)
        before = len(requests)
        for _ in range(5):
            client.get_manifest("imageprep/tokens", "v1")
            client.manifest_digest("imageprep/tokens", "v1")
        assert len(requests) - before <= 1, "the pull token must be fetched once and reused"
    assert all(r["authorization"] for r in requests[before:])


def test_anonymous_pull_from_token_registry_cannot_push(token_registry: RunningRegistry) -> None:
    with RegistrySession(retry=FAST_RETRY) as session:
        client = session.client(token_registry.host)
        blob = b"anonymous"
        with pytest.raises(AuthenticationError):
            client.write_blob(
                "imageprep/anon",
                Descriptor("application/octet-stream", sha256_digest(blob), 9),
                BytesBody(blob),
            )


# --- TLS -----------------------------------------------------------------------------------------


def test_tls_registry_is_verified_and_not_reported_insecure(tls_registry: RunningRegistry) -> None:
    with session_for(tls_registry) as session:
        session.client(tls_registry.host).ping()
        assert session.probe(tls_registry.host) == "https"
        assert session.insecure_hosts() == frozenset()


def test_untrusted_certificate_fails_unless_declared_insecure(tls_registry: RunningRegistry) -> None:
    with RegistrySession(retry=FAST_RETRY) as session, pytest.raises(RegistryError, match="TLS") as caught:
        session.client(tls_registry.host).ping()
    assert tls_registry.host in str(caught.value)
    with RegistrySession(retry=FAST_RETRY, insecure=[tls_registry.host]) as session:
        session.client(tls_registry.host).ping()
        assert session.probe(tls_registry.host) == "https-noverify"
        assert session.insecure_hosts() == {tls_registry.host}


def test_plain_http_loopback_registry_is_reported_insecure(plain_registry: RunningRegistry) -> None:
    with session_for(plain_registry) as session:
        assert session.probe(plain_registry.host) == "http"
        assert session.insecure_hosts() == {plain_registry.host}


# --- scripted servers: corrupt blobs, redirects, retries ------------------------------------------


def _v2_ok(request: Recorded) -> Reply | None:
    if request.path == "/v2/":
        return Reply(200, {"Docker-Distribution-Api-Version": "registry/2.0"})
    return None


def test_blob_with_wrong_bytes_is_refused() -> None:
    good = b"the real layer"
    descriptor = Descriptor("application/octet-stream", sha256_digest(good), len(good))

    def handler(request: Recorded) -> Reply:
        return _v2_ok(request) or Reply(200, {"Content-Type": "application/octet-stream"}, b"the evil layer")

    with scripted_server(handler) as server, RegistrySession(retry=FAST_RETRY) as session:
        client = session.client(server.host)
        with pytest.raises(DigestMismatchError) as caught:
            client.read_blob_bytes("a/b", descriptor)
        assert descriptor.digest in str(caught.value)


def test_manifest_not_matching_its_digest_is_refused() -> None:
    image = make_image({"x": "y"})

    def handler(request: Recorded) -> Reply:
        body = image.manifest.replace(b'"schemaVersion": 2', b'"schemaVersion":2')
        return _v2_ok(request) or Reply(200, {"Content-Type": image.manifest_media_type}, body)

    with (
        scripted_server(handler) as server,
        RegistrySession(retry=FAST_RETRY) as session,
        pytest.raises(DigestMismatchError),
    ):
        session.client(server.host).get_manifest("a/b", image.digest)


def _second_loopback_address() -> str:
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", 0))
        return "127.0.0.2"
    except OSError:
        return "127.0.0.1"


def test_redirect_to_another_host_does_not_carry_the_authorization_header() -> None:
    data = b"layer bytes served by a CDN"
    descriptor = Descriptor("application/octet-stream", sha256_digest(data), len(data))
    expected = Credential("foo", "bar").basic_header()

    def cdn(request: Recorded) -> Reply:
        return Reply(200, {"Content-Type": "application/octet-stream"}, data)

    with scripted_server(cdn, _second_loopback_address()) as cdn_server:

        def registry(request: Recorded) -> Reply:
            if request.headers.get("authorization") != expected:
                return Reply(401, {"WWW-Authenticate": 'Basic realm="test"'})
            if request.path.startswith("/v2/a/b/blobs/"):
                return Reply(307, {"Location": f"{cdn_server.url}/cdn/blob?signature=abc"})
            return Reply(200)

        with scripted_server(registry) as registry_server:
            store = CredentialStore({registry_server.host: Credential("foo", "bar")})
            with RegistrySession(store, retry=FAST_RETRY) as session:
                client = session.client(registry_server.host)
                with client.read_blob("a/b", descriptor) as chunks:
                    assert b"".join(chunks) == data
            assert any(r.headers.get("authorization") == expected for r in registry_server.requests)
    assert [r.path for r in cdn_server.requests] == ["/cdn/blob?signature=abc"]
    assert "authorization" not in cdn_server.requests[0].headers


def test_503_is_retried_honouring_retry_after() -> None:
    answers = [Reply(503, {"Retry-After": "7"}), Reply(503), Reply(200, {"Content-Type": "application/json"})]
    image = make_image({"retry": "yes"})

    def handler(request: Recorded) -> Reply:
        if request.path == "/v2/":
            return Reply(200)
        reply = answers.pop(0) if len(answers) > 1 else answers[0]
        if reply.status == 200:
            return Reply(200, {"Content-Type": image.manifest_media_type}, image.manifest)
        return reply

    slept: list[float] = []
    retry = RetryPolicy(attempts=5, backoff=0.5, max_backoff=1.0)
    with scripted_server(handler) as server, RegistrySession(retry=retry, sleep=slept.append) as session:
        manifest = session.client(server.host).get_manifest("a/b", "v1")
    assert manifest.raw == image.manifest
    assert slept[0] == 7.0
    assert len(slept) == 2 and 0 <= slept[1] <= 1.0


def test_persistent_503_becomes_a_transient_error_after_bounded_attempts() -> None:
    from imageprep.model.errors import TransientError

    def handler(request: Recorded) -> Reply:
        return _v2_ok(request) or Reply(503, {}, json.dumps({"errors": [{"code": "UNAVAILABLE"}]}).encode())

    slept: list[float] = []
    with (
        scripted_server(handler) as server,
        RegistrySession(retry=FAST_RETRY, sleep=slept.append) as session,
        pytest.raises(TransientError, match="503") as caught,
    ):
        session.client(server.host).list_tags("a/b")
    assert server.host in str(caught.value)
    assert len(slept) == FAST_RETRY.attempts - 1


def test_tag_list_pages_are_followed_through_link_headers() -> None:
    pages = {
        "/v2/a/b/tags/list?n=2": (["t1", "t2"], '</v2/a/b/tags/list?last=t2&n=2>; rel="next"'),
        "/v2/a/b/tags/list?last=t2&n=2": (["t3", "t4"], "<{url}/v2/a/b/tags/list?last=t4&n=2>; rel=next"),
        "/v2/a/b/tags/list?last=t4&n=2": (["t5"], None),
    }

    def handler(request: Recorded) -> Reply:
        if request.path == "/v2/":
            return Reply(200)
        tags, link = pages[request.path]
        headers = {"Content-Type": "application/json"}
        if link:
            headers["Link"] = link.replace("{url}", f"http://{request.headers['host']}")
        return Reply(200, headers, json.dumps({"name": "a/b", "tags": tags}).encode())

    with scripted_server(handler) as server, RegistrySession(retry=FAST_RETRY, page_size=2) as session:
        assert session.client(server.host).list_tags("a/b") == ["t1", "t2", "t3", "t4", "t5"]
    assert [r.path for r in server.requests if r.path != "/v2/"] == list(pages)


def test_a_ca_file_is_checked_at_once_and_loaded_only_for_the_first_https_request(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot read CA certificates from .*missing.pem"):
        Transport(ca_file=str(tmp_path / "missing.pem"))
    (tmp_path / "empty.pem").write_text("")
    with pytest.raises(RegistryError, match="holds no PEM certificate"):
        Transport(ca_file=str(tmp_path / "empty.pem"))
    (tmp_path / "broken.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
    )
    transport = Transport(ca_file=str(tmp_path / "broken.pem"))  # looks like PEM: loaded when needed
    for _ in range(2):  # the same error every time, the file loaded once
        with pytest.raises(RegistryError, match="cannot load CA certificates from .*broken.pem"):
            transport.send(HttpRequest("GET", "https://127.0.0.1:9/v2/", context="contacting the v2 API"))
    transport.close()
