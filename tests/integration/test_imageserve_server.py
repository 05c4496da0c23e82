"""``imageprep serve``'s server over a real tree: the read side of the distribution API, and nothing more."""

from __future__ import annotations

import hashlib
import http.client
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from imageprep.imageserve import ImageServeTree
from imageprep.model import mediatypes
from imageprep.model.manifest import Manifest
from imageprep.transfer import CopyJob, copy_images
from tests.support.imagegen import GeneratedImage, make_image, make_layer, random_layer
from tests.support.imageserve_images import GeneratedIndex
from tests.support.imageserve_running import serving_in_thread
from tests.support.memory_store import MemoryStore

SECRET = b"secret outside the tree"
TAGS = ["a", "b", "c", "d", "latest"]


@dataclass
class Served:
    host: str
    port: int
    root: Path
    image: GeneratedImage
    index: GeneratedIndex

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("served")
    (base / "secret.txt").write_bytes(SECRET)
    root = base / "tree"
    source = MemoryStore("memory")
    image = make_image({"name": "nova"}, [random_layer(300_000, "big"), make_layer({"a": b"a"})])
    for tag in TAGS:
        source.add_image("t/nova-api", tag, image)
    children = {arch: make_image({"arch": arch}, oci=True, architecture=arch) for arch in ("amd64", "arm64")}
    for child in children.values():
        source.add_image("t/multi", None, child)
    index = GeneratedIndex(children)
    source.add_manifest("t/multi", "latest", Manifest.parse(index.raw, None, "t/multi"))
    tree = ImageServeTree(root)
    jobs = [CopyJob(source, "t/nova-api", tag, tree, "t/nova-api", tag) for tag in TAGS]
    jobs.append(CopyJob(source, "t/multi", "latest", tree, "t/multi", "latest", all_architectures=True))
    assert not copy_images(jobs).failed
    # A temporary a killed writer could have left next to real blobs: never servable.
    (root / "v2/t/nova-api/blobs/.tmp-1-abc").write_bytes(SECRET)
    with serving_in_thread(root) as server:
        host, port = server.server_address[:2]
        yield Served(str(host), int(port), root, image, index)


def test_api_version_check(served: Served) -> None:
    status, headers, body = served.request("GET", "/v2/")
    assert (status, json.loads(body)) == (200, {})
    assert headers["docker-distribution-api-version"] == "registry/2.0"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("reference", ["latest", "digest", "escaped-digest"])
def test_manifest_by_tag_or_digest(served: Served, method: str, reference: str) -> None:
    digest = served.image.digest
    ref = {"latest": "latest", "digest": digest, "escaped-digest": digest.replace(":", "%3A")}[reference]
    status, headers, body = served.request(method, f"/v2/t/nova-api/manifests/{ref}")
    assert status == 200
    assert headers["content-type"] == mediatypes.DOCKER_MANIFEST
    assert headers["docker-content-digest"] == digest
    assert headers["content-length"] == str(len(served.image.manifest))
    assert body == (served.image.manifest if method == "GET" else b"")


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (f"{mediatypes.OCI_INDEX}, {mediatypes.OCI_MANIFEST}", "index"),
        (mediatypes.OCI_MANIFEST, "amd64"),
        (None, "index"),
    ],
)
def test_manifest_negotiation_between_list_and_default_child(
    served: Served, accept: str | None, expected: str
) -> None:
    status, headers, body = served.request(
        "GET", "/v2/t/multi/manifests/latest", {"Accept": accept} if accept else {}
    )
    want = served.index.raw if expected == "index" else served.index.children["amd64"].manifest
    assert status == 200
    assert body == want
    assert headers["docker-content-digest"] == "sha256:" + hashlib.sha256(want).hexdigest()


def test_blob_whole_partial_and_unsatisfiable(served: Served) -> None:
    blob = served.image.layers[0]
    path = f"/v2/t/nova-api/blobs/{blob.digest}"
    status, headers, body = served.request("GET", path)
    assert (status, body) == (200, blob.data)
    assert headers["content-type"] == "application/octet-stream"
    assert headers["docker-content-digest"] == blob.digest
    assert headers["accept-ranges"] == "bytes"

    status, headers, body = served.request("GET", path, {"Range": "bytes=100-199"})
    assert (status, body) == (206, blob.data[100:200])
    assert headers["content-range"] == f"bytes 100-199/{len(blob.data)}"

    status, _, body = served.request("GET", path, {"Range": "bytes=-10"})
    assert (status, body) == (206, blob.data[-10:])

    status, headers, body = served.request("GET", path, {"Range": f"bytes={len(blob.data)}-"})
    assert status == 416
    assert headers["content-range"] == f"bytes */{len(blob.data)}"

    status, headers, body = served.request("HEAD", path)
    assert (status, body, headers["content-length"]) == (200, b"", str(len(blob.data)))


def test_many_pulls_at_once(served: Served) -> None:
    blob = served.image.layers[0]

    def fetch(_: int) -> bytes:
        return served.request("GET", f"/v2/t/nova-api/blobs/{blob.digest}")[2]

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(fetch, range(24)))
    assert all(result == blob.data for result in results)


def test_tags_list_pagination_follows_link_headers(served: Served) -> None:
    seen: list[str] = []
    path: str | None = "/v2/t/nova-api/tags/list?n=2"
    for _ in range(10):
        if path is None:
            break
        status, headers, body = served.request("GET", path)
        assert status == 200
        document = json.loads(body)
        assert document["name"] == "t/nova-api"
        seen += document["tags"]
        link = headers.get("link")
        path = link.split(">")[0].lstrip("<") if link else None
    assert seen == TAGS
    status, _, body = served.request("GET", "/v2/t/nova-api/tags/list?n=x")
    assert status == 400
    assert json.loads(body)["errors"][0]["code"] == "UNSUPPORTED"  # the spec has no code of its own for it


def test_catalog_pagination(served: Served) -> None:
    status, headers, body = served.request("GET", "/v2/_catalog?n=1")
    assert (status, json.loads(body)) == (200, {"repositories": ["t/multi"]})
    assert headers["link"] == '</v2/_catalog?n=1&last=t/multi>; rel="next"'
    status, headers, body = served.request("GET", "/v2/_catalog?n=1&last=t/multi")
    assert json.loads(body) == {"repositories": ["t/nova-api"]}
    assert "link" not in headers


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v2/t/nova-api/manifests/nope", 404, "MANIFEST_UNKNOWN"),
        ("/v2/t/nope/manifests/latest", 404, "NAME_UNKNOWN"),
        ("/v2/t/nope/tags/list", 404, "NAME_UNKNOWN"),
        ("/v2/t/nova-api/blobs/sha256:" + "0" * 64, 404, "BLOB_UNKNOWN"),
        ("/v2/t/nova-api/blobs/sha512:" + "0" * 128, 404, "BLOB_UNKNOWN"),
        ("/v2/t/nova-api/blobs/sha512:00", 400, "DIGEST_INVALID"),
        ("/v2/t/nova-api/blobs/sha256:ABC", 400, "DIGEST_INVALID"),
        ("/v2/T/NOVA/manifests/latest", 400, "NAME_INVALID"),
    ],
)
def test_errors_are_oci_error_json(served: Served, path: str, status: int, code: str) -> None:
    got, headers, body = served.request("GET", path)
    assert got == status
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["errors"][0]["code"] == code


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("path", ["/v2/t/nova-api/blobs/uploads/", "/v2/t/nova-api/manifests/latest"])
def test_every_write_is_refused_with_405(served: Served, method: str, path: str) -> None:
    status, headers, body = served.request(method, path)
    assert status == 405
    assert headers["allow"] == "GET, HEAD"
    assert json.loads(body)["errors"][0]["code"] == "UNSUPPORTED"
    assert served.request("GET", "/v2/t/nova-api/manifests/latest")[0] == 200


def _hostile_paths(digest: str) -> list[str]:
    return [
        "/v2/../secret.txt",
        "/v2/../../secret.txt",
        "/v2/%2e%2e/secret.txt",
        "/v2/%2e%2e/%2e%2e/secret.txt",
        "/v2/%252e%252e/secret.txt",
        "/secret.txt",
        "//secret.txt",
        "/etc/passwd",
        "/v2/t/nova-api/blobs/..%2f..%2f..%2f..%2fsecret.txt",
        "/v2/t/nova-api/blobs/../../../../secret.txt",
        "/v2/t/nova-api/manifests/..%2f..%2f..%2f..%2f..%2fsecret.txt",
        "/v2/t/nova-api/manifests/../../../../../secret.txt/tags/list",
        "/v2/../../secret.txt/tags/list",
        "/v2/%2Fetc/manifests/passwd",
        "/v2//etc/manifests/passwd",
        "/v2/t/nova-api%00/tags/list",
        "/v2/t/nova-api/blobs/.tmp-1-abc",
        "/v2/t/nova-api/manifests/latest.type-map",
        "/v2/t/nova-api/manifests/latest.ref",
        f"/v2/t/nova-api/manifests/{digest}/index.json",
        f"/v2/t/nova-api/manifests/{digest}%2f.htaccess",
        "/.imageprep/lock",
        "/v2/.imageprep/lock",
        "/v2/_catalog/../../secret.txt",
        "http://127.0.0.1/v2/../secret.txt",
    ]


def test_paths_outside_the_api_are_never_served(served: Served) -> None:
    for path in _hostile_paths(served.image.digest):
        status, _, body = served.request("GET", path)
        assert status in (400, 404), path
        assert SECRET not in body, path
        assert b"Header set" not in body and b"URI:" not in body, path
