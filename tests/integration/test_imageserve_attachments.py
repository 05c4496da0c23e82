"""The tree keeps what hangs on its images, and serves it: the referrers API (``imageprep serve``,
with the ``artifactType`` filter), the fallback tag and lookaside signatures (all three servers:
``imageprep serve`` and Debian's Apache and nginx with the printed configurations)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from imageprep.imageserve import ImageServeTree
from imageprep.model.attachments import cosign_tags, digest_tag
from imageprep.transfer import CopyJob, copy_images
from tests.support.imagegen import make_artifact, make_image, make_layer
from tests.support.imageserve_servers import http_request, imageprep_serving, world_readable_directory
from tests.support.memory_store import MemoryStore

pytestmark = pytest.mark.integration
REPO = "t/nova-api"
SBOM = "application/spdx+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
IMAGE = make_image({"name": "signed"}, [make_layer({"etc/signed": b"signed " * 32})])
SIGNATURES = [b"gpg signature one", b"gpg signature two"]
REFERRERS = [
    make_artifact(b"sbom", subject=IMAGE, artifact_type=SBOM),
    make_artifact(b"bundle", subject=IMAGE, artifact_type=BUNDLE),
]
COSIGN = make_artifact(b"cosign signature")
HEX = IMAGE.digest.removeprefix("sha256:")


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    with world_readable_directory("imageprep-attached-") as base:
        source = MemoryStore("memory")
        source.add_image(REPO, "latest", IMAGE)
        for referrer in REFERRERS:
            source.add_image(REPO, None, referrer)
        source.add_image(REPO, cosign_tags(IMAGE.digest)[0], COSIGN)
        source.signatures[(REPO, IMAGE.digest)] = SIGNATURES
        tree = ImageServeTree(base / "tree")
        report = copy_images([CopyJob(source, REPO, "latest", tree, REPO, "latest")])
        assert not report.failed and report.attachments.copied == 5, report.to_json()
        yield tree.root


def test_the_tree_records_referrers_and_signatures_where_its_readers_find_them(root: Path) -> None:
    tree = ImageServeTree(root)
    assert sorted(d.digest for d in tree.referrers(REPO, IMAGE.digest)) == sorted(r.digest for r in REFERRERS)
    assert {d.artifact_type for d in tree.referrers(REPO, IMAGE.digest)} == {SBOM, BUNDLE}
    assert tree.read_signatures(REPO, IMAGE.digest) == SIGNATURES
    assert (root / "sigstore" / f"{REPO}@sha256={HEX}" / "signature-2").read_bytes() == SIGNATURES[1]
    fallback = tree.get_manifest(REPO, digest_tag(IMAGE.digest))
    assert sorted(d.digest for d in fallback.manifests) == sorted(r.digest for r in REFERRERS)
    # Attachment tags are tags of the repository, but no images: list leaves them out.
    assert set(tree.list_tags(REPO)) == {"latest", digest_tag(IMAGE.digest), cosign_tags(IMAGE.digest)[0]}


def test_lookaside_signatures_are_served_and_the_first_missing_one_is_a_404(host: str) -> None:
    for index, signature in enumerate(SIGNATURES, start=1):
        status, _, body = http_request(host, "GET", f"/sigstore/{REPO}@sha256={HEX}/signature-{index}")
        assert (status, body) == (200, signature)
    assert http_request(host, "GET", f"/sigstore/{REPO}@sha256={HEX}/signature-3")[0] == 404
    assert http_request(host, "GET", f"/sigstore/{REPO}@sha256={HEX}/.tmp-1-x")[0] == 404


def test_the_fallback_tag_lists_the_referrers_on_every_server(host: str) -> None:
    status, headers, body = http_request(
        host,
        "GET",
        f"/v2/{REPO}/manifests/{digest_tag(IMAGE.digest)}",
        "application/vnd.oci.image.index.v1+json",
    )
    assert status == 200 and headers["content-type"].startswith("application/vnd.oci.image.index.v1+json")
    assert sorted(entry["digest"] for entry in json.loads(body)["manifests"]) == sorted(
        r.digest for r in REFERRERS
    )


def test_the_cosign_signature_tag_is_served_as_the_manifest_it_is(host: str) -> None:
    status, _, body = http_request(
        host, "GET", f"/v2/{REPO}/manifests/{cosign_tags(IMAGE.digest)[0]}", COSIGN.manifest_media_type
    )
    assert (status, body) == (200, COSIGN.manifest)


def test_imageprep_serve_answers_the_referrers_api_with_its_filter(root: Path) -> None:
    with imageprep_serving(root) as served:
        status, headers, body = http_request(served.host, "GET", f"/v2/{REPO}/referrers/{IMAGE.digest}")
        assert status == 200 and headers["content-type"] == "application/vnd.oci.image.index.v1+json"
        assert {entry["artifactType"] for entry in json.loads(body)["manifests"]} == {SBOM, BUNDLE}
        assert "oci-filters-applied" not in headers
        status, headers, body = http_request(
            served.host, "GET", f"/v2/{REPO}/referrers/{IMAGE.digest}?artifactType={quote(SBOM, safe='')}"
        )
        assert [entry["digest"] for entry in json.loads(body)["manifests"]] == [REFERRERS[0].digest]
        assert headers["oci-filters-applied"] == "artifactType"
        # No referrers is an empty index, never a 404 (which would mean "no referrers API").
        status, _, body = http_request(served.host, "GET", f"/v2/{REPO}/referrers/sha256:{'0' * 64}")
        assert status == 200 and json.loads(body)["manifests"] == []
        assert http_request(served.host, "GET", f"/v2/{REPO}/referrers/sha256:nothex")[0] == 400


def test_a_signature_file_too_large_to_be_one_gets_a_500_not_a_dropped_connection(tmp_path: Path) -> None:
    source = MemoryStore("memory")
    source.add_image(REPO, "latest", IMAGE)
    source.signatures[(REPO, IMAGE.digest)] = SIGNATURES[:1]
    tree = ImageServeTree(tmp_path / "tree")
    assert not copy_images([CopyJob(source, REPO, "latest", tree, REPO, "latest")]).failed
    damaged = tree.root / "sigstore" / f"{REPO}@sha256={HEX}" / "signature-1"
    damaged.write_bytes(b"x" * (4 * 1024 * 1024 + 1))
    with imageprep_serving(tree.root) as served:
        status, headers, body = http_request(served.host, "GET", f"/sigstore/{REPO}@sha256={HEX}/signature-1")
        assert status == 500 and headers["content-type"] == "application/json"
        assert json.loads(body)["errors"][0]["code"] == "UNKNOWN"
