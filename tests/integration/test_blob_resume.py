"""A cut download resumes where it was cut; a dropped upload is retried as an upload, from the spool.

Against a real docker-registry behind the fault proxy (which answers ``Range`` as registries do),
and against a scripted server that ignores ``Range`` (some CDNs and old registries do).
"""

from __future__ import annotations

import json
import threading
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
from tests.support.registry_server import (
    RunningRegistry,
    plain_registry_server,
    registry_available,
    tls_registry_server,
)
from tests.support.seeding import seed_image, skopeo_inspect
from tests.support.tcpcount import counting_forwarder

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


BIG = random_layer(10 * 1024 * 1024 + 12345, "parts", oci=True)  # three parts of 4 MiB
BIG_IMAGE = make_image({"name": "big"}, [BIG], oci=True)
PART = 4 * 1024 * 1024


def _copy_big(source_host: str, destination_host: str) -> object:
    with RegistrySession(retry=QUICK) as session:
        job = CopyJob(
            session.client(source_host), REPOSITORY, TAG, session.client(destination_host), REPOSITORY, TAG
        )
        return copy_images([job], architecture="amd64", retrier=Retrier(QUICK, sleep=lambda s: None))


def _big_reads(proxy: object) -> list[str | None]:
    return [e.range for e in proxy.requests if is_blob_get(e) and BIG.digest in e.path]  # type: ignore[attr-defined]


@pytest.fixture
def big_source(tmp_path: Path) -> Iterator[RunningRegistry]:
    with plain_registry_server(tmp_path / "big-source") as running:
        seed_image(running, REPOSITORY, TAG, BIG_IMAGE)
        yield running


def test_a_large_blob_comes_in_parallel_parts_reassembled_byte_for_byte(
    big_source: RunningRegistry, destination: RunningRegistry
) -> None:
    with fault_proxy(big_source.host) as proxy:
        report = _copy_big(proxy.host, destination.host)
    assert report.failed == (), report.to_json()  # type: ignore[attr-defined]
    size = len(BIG.data)
    assert sorted(_big_reads(proxy)) == sorted(
        [f"bytes=0-{PART - 1}", f"bytes={PART}-{2 * PART - 1}", f"bytes={2 * PART}-{size - 1}"]
    )
    config = len(BIG_IMAGE.blobs[0].data)
    assert report.blobs.bytes_transferred == size + config and report.blobs.bytes_refetched == 0  # type: ignore[attr-defined]
    assert skopeo_inspect(destination, REPOSITORY, TAG)["Digest"] == BIG_IMAGE.digest


def test_the_connections_that_carried_parts_are_kept_for_the_next_requests(
    tmp_path: Path, destination: RunningRegistry
) -> None:
    # Each part's answer is read to its end, so its connection goes back to the pool: a second copy
    # of the blob (into another repository, in a new run of the same session) reuses them. Over TLS,
    # where a part's last bytes come before the end of its answer is read. Attachments are left out:
    # their lookups (a tag list, the referrers API) overlap the parts in one copy and not in the
    # other as the machine's load decides, and each overlap needs a connection of its own.
    with tls_registry_server(tmp_path / "tls-source") as tls_source:
        seed_image(tls_source, REPOSITORY, TAG, BIG_IMAGE)
        with (
            counting_forwarder(tls_source.host) as counted,
            RegistrySession(retry=QUICK, ca_file=tls_source.ca_file) as session,
        ):
            source = session.client(counted.host)
            reports = []
            for target in ("first/copy", "second/copy"):
                destination_store = session.client(destination.host)
                job = CopyJob(source, REPOSITORY, TAG, destination_store, target, TAG, attachments=False)
                retrier = Retrier(QUICK, sleep=lambda s: None)
                reports.append(copy_images([job], architecture="amd64", retrier=retrier))
                if target == "first/copy":
                    opened_first = counted.connections
                    counted.reset()
    assert all(report.failed == () for report in reports)
    assert reports[1].blobs.bytes_transferred >= len(BIG.data)  # the parts were fetched again
    # Without reuse every part would open one: the same requests at once find the first copy's.
    assert opened_first >= 3 and counted.connections == 0, (opened_first, counted.connections)


def test_a_part_that_fails_is_fetched_again_alone(
    big_source: RunningRegistry, destination: RunningRegistry
) -> None:
    cut = threading.Event()

    def cut_the_second_part_once(exchange: Exchange) -> str | None:
        if exchange.range == f"bytes={PART}-{2 * PART - 1}" and not cut.is_set():
            cut.set()
            return "truncate"
        return None

    with fault_proxy(big_source.host, cut_the_second_part_once) as proxy:
        report = _copy_big(proxy.host, destination.host)
    assert report.failed == (), report.to_json()  # type: ignore[attr-defined]
    reads = _big_reads(proxy)
    assert len(reads) == 4  # three parts, and the second one's rest
    assert (
        reads.count(f"bytes=0-{PART - 1}") == 1 and reads.count(f"bytes={2 * PART}-{len(BIG.data) - 1}") == 1
    )
    assert f"bytes={PART + PART // 2}-{2 * PART - 1}" in reads  # resumed where it was cut
    assert skopeo_inspect(destination, REPOSITORY, TAG)["Digest"] == BIG_IMAGE.digest


def test_a_large_blob_from_a_source_without_range_support_comes_in_one_stream(
    destination: RunningRegistry,
) -> None:
    def handler(request: Recorded) -> Reply:
        if request.path == "/v2/":
            return Reply(200)
        if request.path.endswith(f"/manifests/{TAG}"):
            return Reply(200, {"Content-Type": BIG_IMAGE.manifest_media_type}, BIG_IMAGE.manifest)
        blob = next(b for b in BIG_IMAGE.blobs if request.path.endswith(b.digest))
        return Reply(200, {}, blob.data)  # whatever Range says

    with scripted_server(handler) as scripted:
        report = _copy_big(scripted.host, destination.host)
    assert report.failed == (), report.to_json()  # type: ignore[attr-defined]
    reads = [r for r in scripted.requests if r.path.endswith(BIG.digest)]
    assert len(reads) == 1 and reads[0].headers.get("range") == f"bytes=0-{PART - 1}"
    assert report.blobs.bytes_transferred == len(BIG.data) + len(BIG_IMAGE.blobs[0].data)  # type: ignore[attr-defined]
    assert skopeo_inspect(destination, REPOSITORY, TAG)["Digest"] == BIG_IMAGE.digest


def test_a_large_blobs_first_part_is_asked_for_while_the_destination_opens_its_upload(
    big_source: RunningRegistry,
) -> None:
    # One registry behind one proxy is both source and destination (another repository), so the
    # proxy sees both sides in order. Every upload POST is held until the big blob's first part
    # has been asked for: a copy that opens the upload first makes each hold run out.
    asked = threading.Event()
    held_too_long: list[str] = []

    def hold_uploads_until_the_first_part(exchange: Exchange) -> str | None:
        if is_blob_get(exchange) and BIG.digest in exchange.path:
            asked.set()
        elif exchange.method == "POST" and "/blobs/uploads/" in exchange.path and not asked.wait(3.0):
            held_too_long.append(exchange.path)
        return None

    with (
        fault_proxy(big_source.host, hold_uploads_until_the_first_part) as proxy,
        RegistrySession(retry=QUICK) as session,
    ):
        store = session.client(proxy.host)
        job = CopyJob(store, REPOSITORY, TAG, store, "copy/big", TAG)
        report = copy_images([job], architecture="amd64", retrier=Retrier(QUICK, sleep=lambda s: None))
    assert report.failed == (), report.to_json()
    assert held_too_long == []
    assert skopeo_inspect(big_source, "copy/big", TAG)["Digest"] == BIG_IMAGE.digest
