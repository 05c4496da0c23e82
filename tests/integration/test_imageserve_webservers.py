"""``imageprep serve`` and the printed Apache and nginx configurations answer like a registry.

The same requests go to all three (Debian's apache2 and nginx run the printed configurations):
errors are OCI error JSON with the spec's codes, ETags are quoted digests, and a manifest fetched
by tag carries its digest. What a static server cannot do is in docs/serving.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from imageprep.imageserve import ImageServeTree
from imageprep.model.manifest import Manifest
from imageprep.transfer import CopyJob, copy_images
from tests.support.imagegen import GeneratedImage, make_image, make_layer
from tests.support.imageserve_images import GeneratedIndex
from tests.support.imageserve_servers import http_request, world_readable_directory
from tests.support.memory_store import MemoryStore

pytestmark = pytest.mark.integration
ZEROS = "sha256:" + "0" * 64
SHA512 = "sha512:" + "ab" * 64


@pytest.fixture(scope="module")
def image() -> GeneratedImage:
    return make_image({"name": "answers"}, [make_layer({"etc/answers": b"answers " * 64})])


@pytest.fixture(scope="module")
def index() -> GeneratedIndex:
    children = {arch: make_image({"arch": arch}, oci=True, architecture=arch) for arch in ("amd64", "arm64")}
    return GeneratedIndex(children)


@pytest.fixture(scope="module")
def root(image: GeneratedImage, index: GeneratedIndex) -> Iterator[Path]:
    with world_readable_directory("imageprep-answers-") as base:
        source = MemoryStore("memory")
        source.add_image("t/nova-api", "latest", image)
        for child in index.children.values():
            source.add_image("t/multi", None, child)
        source.add_manifest("t/multi", "latest", Manifest.parse(index.raw, None, "t/multi"))
        tree = ImageServeTree(base / "tree")
        jobs = [
            CopyJob(source, "t/nova-api", "latest", tree, "t/nova-api", "latest"),
            CopyJob(source, "t/multi", "latest", tree, "t/multi", "latest", all_architectures=True),
        ]
        assert not copy_images(jobs).failed
        yield tree.root


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/v2/t/nova-api/manifests/missing", "MANIFEST_UNKNOWN"),
        (f"/v2/t/nova-api/manifests/{ZEROS}", "MANIFEST_UNKNOWN"),
        ("/v2/t/nope/manifests/latest", "NAME_UNKNOWN"),
        ("/v2/t/nope/tags/list", "NAME_UNKNOWN"),
        (f"/v2/t/nova-api/blobs/{ZEROS}", "BLOB_UNKNOWN"),
        (f"/v2/t/nova-api/blobs/{SHA512}", "BLOB_UNKNOWN"),
        (f"/v2/t/nope/blobs/{ZEROS}", "NAME_UNKNOWN"),
        ("/v2/t/nova-api/manifests/latest.type-map", "MANIFEST_UNKNOWN"),
        ("/secret.txt", "NAME_UNKNOWN"),
        ("/.imageprep/lock", "NAME_UNKNOWN"),
    ],
)
def test_what_is_not_there_is_a_404_with_the_spec_error_code(host: str, path: str, code: str) -> None:
    status, headers, body = http_request(host, "GET", path)
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert headers["docker-distribution-api-version"] == "registry/2.0"
    assert json.loads(body)["errors"][0]["code"] == code


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_writes_are_a_405_with_allow_and_unsupported(host: str, method: str) -> None:
    status, headers, body = http_request(host, method, "/v2/t/nova-api/blobs/uploads/")
    assert status == 405
    # Apache adds an empty Allow of its own after ours: the methods listed are still GET and HEAD.
    assert {method.strip() for method in headers["allow"].split(",")} - {""} == {"GET", "HEAD"}
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["errors"][0]["code"] == "UNSUPPORTED"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_manifest_by_tag_carries_its_digest_and_a_quoted_etag(
    host: str, image: GeneratedImage, method: str
) -> None:
    status, headers, body = http_request(host, method, "/v2/t/nova-api/manifests/latest")
    assert status == 200
    assert body == (image.manifest if method == "GET" else b"")
    assert headers["docker-content-digest"] == image.digest
    assert headers["etag"] == f'"{image.digest}"'


def test_an_index_by_tag_carries_its_digest(host: str, index: GeneratedIndex) -> None:
    accept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"
    status, headers, body = http_request(host, "GET", "/v2/t/multi/manifests/latest", accept)
    assert (status, body) == (200, index.raw)
    assert headers["docker-content-digest"] == index.digest
    assert headers["etag"] == f'"{index.digest}"'


def test_manifests_by_digest_and_blobs_carry_quoted_etags(host: str, image: GeneratedImage) -> None:
    status, headers, _ = http_request(host, "GET", f"/v2/t/nova-api/manifests/{image.digest}")
    assert status == 200
    assert (headers["etag"], headers["docker-content-digest"]) == (f'"{image.digest}"', image.digest)
    layer = image.layers[0]
    status, headers, body = http_request(host, "GET", f"/v2/t/nova-api/blobs/{layer.digest}")
    assert (status, body) == (200, layer.data)
    assert (headers["etag"], headers["docker-content-digest"]) == (f'"{layer.digest}"', layer.digest)
    assert headers["content-type"] == "application/octet-stream"
