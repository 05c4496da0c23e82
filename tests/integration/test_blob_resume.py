"""A cut download resumes where it was cut; a dropped upload is retried as an upload, from the spool.

Against a real docker-registry behind the fault proxy (which answers ``Range`` as registries do),
and against a scripted server that ignores ``Range`` (some CDNs and old registries do).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from imageprep.model.retry import Retrier, RetryPolicy
from imageprep.registry import RegistrySession
from imageprep.transfer import CopyJob, Outcome, copy_images
from tests.support.faultproxy import Exchange, fault_proxy, is_blob_get, is_blob_upload
from tests.support.httpserver import Recorded, Reply, scripted_server
from tests.support.imagegen import make_image, random_layer
from tests.support.memory_store import MemoryStore
from tests.support.registry_server import RunningRegistry, plain_registry_server, registry_available
from tests.support.seeding import seed_image, skopeo_inspect

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not registry_available(), reason="needs docker-registry"),
]
REPOSITORY = "tripleomaster/centos-binary-nova-api"
TAG = "current-tripleo"
LAYER = random_layer(3 * 1024 * 1024, "resume", oci=True)  # large enough to go through a file spool
IMAGE = make_image({"name": "nova-api"}, [LAYER], oci=True)
QUICK = RetryPolicy(attempts=5, backoff=0.01, max_backoff=0.02)


@pytest.fixture
def source(tmp_path: Path) -> Iterator[RunningRegistry]:
    with plain_registry_server(tmp_path / "source") as running:
        seed_image(running, REPOSITORY, TAG, IMAGE)
        yield running


@pytest.fixture
def destination(tmp_path: Path) -> Iterator[RunningRegistry]:
    with plain_registry_server(tmp_path / "destination") as running:
        yield running


def _copy(source_host: str, destination_host: str | None = None) -> tuple[object, MemoryStore]:
    memory = MemoryStore("memory.example:1")
    with RegistrySession(retry=QUICK) as session:
        destination = session.client(destination_host) if destination_host else memory
        job = CopyJob(session.client(source_host), REPOSITORY, TAG, destination, REPOSITORY, TAG)
        report = copy_images([job], architecture="amd64", retrier=Retrier(QUICK, sleep=lambda s: None))
    return report, memory


def test_a_download_cut_mid_body_resumes_with_a_range_request(
    source: RunningRegistry, destination: RunningRegistry
) -> None:
    def cut_the_layer_once(exchange: Exchange) -> str | None:
        wanted = is_blob_get(exchange) and LAYER.digest in exchange.path and exchange.attempt == 0
        return "truncate" if wanted else None

    with fault_proxy(source.host, cut_the_layer_once) as proxy:
        report, _ = _copy(proxy.host, destination.host)
    assert report.failed == (), report.to_json()  # type: ignore[attr-defined]
    reads = [e for e in proxy.requests if is_blob_get(e) and LAYER.digest in e.path]
    half = len(LAYER.data) // 2
    assert [e.range for e in reads] == [None, f"bytes={half}-"]  # from the byte where it was cut
    assert report.blobs.bytes_refetched == 0  # type: ignore[attr-defined]
    assert skopeo_inspect(destination, REPOSITORY, TAG)["Digest"] == IMAGE.digest


def test_a_dropped_upload_is_sent_again_without_downloading_again(
    source: RunningRegistry, destination: RunningRegistry
) -> None:
    def drop_the_first_layer_upload(exchange: Exchange) -> str | None:
        first = is_blob_upload(exchange) and LAYER.digest in exchange.key and exchange.attempt == 0
        return "drop" if first else None

    with (
        fault_proxy(destination.host, drop_the_first_layer_upload) as proxy,
        fault_proxy(source.host) as counted,
    ):
        report, _ = _copy(counted.host, proxy.host)
    assert report.failed == (), report.to_json()  # type: ignore[attr-defined]
    assert proxy.injected["drop"] == 1
    uploads = [e for e in proxy.requests if is_blob_upload(e) and LAYER.digest in e.key]
    assert len(uploads) == 2  # retried as an upload ...
    assert (
        len([e for e in counted.requests if is_blob_get(e) and LAYER.digest in e.path]) == 1
    )  # ... once read
    assert skopeo_inspect(destination, REPOSITORY, TAG)["Digest"] == IMAGE.digest


def test_a_source_that_ignores_range_is_read_again_from_the_start() -> None:
    manifest = IMAGE.manifest
    config = IMAGE.blobs[0]

    def handler(request: Recorded) -> Reply:
        if request.path == "/v2/":
            return Reply(200)
        if request.path.endswith(f"/manifests/{TAG}"):
            return Reply(200, {"Content-Type": IMAGE.manifest_media_type}, manifest)
        if request.path.endswith(config.digest):
            return Reply(200, {}, config.data)
        layer_reads = [r for r in scripted.requests if r.path.endswith(LAYER.digest)]
        # The first read breaks off half-way; after that the whole blob, whatever Range says.
        return Reply(200, {}, LAYER.data, cut_at=len(LAYER.data) // 2 if len(layer_reads) == 1 else None)

    with scripted_server(handler) as scripted:
        report, memory = _copy(scripted.host)
    assert report.failed == (), json.dumps(report.to_dict())  # type: ignore[attr-defined]
    layer_reads = [r for r in scripted.requests if r.path.endswith(LAYER.digest)]
    assert [r.headers.get("range") for r in layer_reads] == [None, f"bytes={len(LAYER.data) // 2}-"]
    assert memory.blobs[(REPOSITORY, LAYER.digest)] == LAYER.data
    assert report.blobs.bytes_refetched == len(LAYER.data) // 2  # type: ignore[attr-defined]
    assert report.images[0].outcome is Outcome.COPIED  # type: ignore[attr-defined]
