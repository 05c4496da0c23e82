"""``imageprep serve`` under a bounded loopback load hands out only correct bytes and no errors.

The tree holds the reliability catalogue (the multi-arch image copied whole, so pulls go through
an index too). CLIENTS threads each keep one connection and pull PULLS times; a pull is what a
container engine does: the manifest by tag with its Accept list (then the amd64 child when it gets
an index), then the config and every layer. Every body is hashed against its digest.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from imageprep.imageserve import ImageServeTree
from imageprep.registry import RegistrySession
from imageprep.transfer import CopyJob, Outcome, copy_images
from tests.reliability.catalogue import TEMPLATE_TAG, Published
from tests.reliability.conftest import Catalogue
from tests.support.imageserve_check import verify_tree
from tests.support.imageserve_servers import imageprep_serving

pytestmark = pytest.mark.integration
CLIENTS = 50
PULLS = 20
REQUEST_TIMEOUT = 20.0
BUDGET_SECONDS = 30.0  # far above what it takes (about 5 s); a hung or crawling server fails here
ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


@pytest.fixture(scope="module")
def populated(catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An image-serve tree holding every catalogue image under its template tag."""
    root = tmp_path_factory.mktemp("load") / "image-serve"
    tree = ImageServeTree(root)
    with RegistrySession() as session:
        source = session.client(catalogue.registry.host)
        jobs = [
            CopyJob(
                source,
                item.repository,
                TEMPLATE_TAG,
                tree,
                item.repository,
                TEMPLATE_TAG,
                all_architectures=True,
            )
            for item in catalogue.published.values()
        ]
        report = copy_images(jobs, concurrency=4)
    assert [result.error for result in report.images if result.outcome is Outcome.FAILED] == []
    assert verify_tree(root) == []
    yield root


@dataclass
class Tally:
    """What the clients saw, shared between their threads."""

    requests: int = 0
    bytes: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, requests: int, size: int, errors: list[str]) -> None:
        with self.lock:
            self.requests += requests
            self.bytes += size
            self.errors += errors


class Puller:
    """One client: one keep-alive connection, reopened only if the server closed it."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.connection = http.client.HTTPConnection(host, timeout=REQUEST_TIMEOUT)
        self.requests = 0
        self.bytes = 0

    def get(self, path: str, headers: dict[str, str], digest: str | None) -> tuple[bytes, str]:
        """GET ``path``; the body and its content type, checked against ``digest`` when given."""
        self.connection.request("GET", path, headers=headers)
        response = self.connection.getresponse()
        body = response.read()
        self.requests += 1
        self.bytes += len(body)
        if response.will_close:
            self.connection.close()
        if response.status != 200:
            raise AssertionError(f"GET {path}: {response.status} {body[:200]!r}")
        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        served = response.getheader("Docker-Content-Digest")
        if digest is not None and actual != digest:
            raise AssertionError(f"GET {path}: body hashes to {actual}, wanted {digest}")
        if served is not None and served != actual:
            raise AssertionError(f"GET {path}: Docker-Content-Digest {served}, body {actual}")
        return body, response.getheader("Content-Type") or ""

    def pull(self, item: Published) -> None:
        base = f"/v2/{item.repository}"
        document, media_type = self.get(
            f"{base}/manifests/{TEMPLATE_TAG}", {"Accept": ACCEPT}, item.tagged_digest
        )
        manifest = json.loads(document)
        if "manifests" in manifest:  # an index: take the amd64 child, as an amd64 engine would
            child = next(m for m in manifest["manifests"] if m["platform"]["architecture"] == "amd64")
            document, media_type = self.get(
                f"{base}/manifests/{child['digest']}", {"Accept": child["mediaType"]}, child["digest"]
            )
            manifest = json.loads(document)
        if media_type != manifest.get("mediaType", media_type):
            raise AssertionError(f"{base}: served as {media_type}, the manifest says {manifest['mediaType']}")
        for blob in [manifest["config"], *manifest["layers"]]:
            body, _ = self.get(f"{base}/blobs/{blob['digest']}", {}, blob["digest"])
            if len(body) != blob["size"]:
                raise AssertionError(
                    f"{base} blob {blob['digest']}: {len(body)} bytes, wanted {blob['size']}"
                )


def _client(host: str, number: int, items: list[Published], tally: Tally, start: threading.Event) -> None:
    puller = Puller(host)
    errors: list[str] = []
    start.wait(REQUEST_TIMEOUT)
    try:
        for pull in range(PULLS):
            item = items[(number + pull) % len(items)]  # every client walks the catalogue
            try:
                puller.pull(item)
            except (AssertionError, OSError, http.client.HTTPException, ValueError) as error:
                errors.append(f"client {number} pull {pull} of {item.repository}: {error!r}")
                puller.connection.close()
    finally:
        puller.connection.close()
        tally.add(puller.requests, puller.bytes, errors)


def test_serve_answers_fifty_parallel_clients_with_only_correct_bytes(
    populated: Path, catalogue: Catalogue, record_property: Callable[[str, object], None]
) -> None:
    items = sorted(catalogue.published.values(), key=lambda item: item.repository)
    tally = Tally()
    start = threading.Event()
    with imageprep_serving(populated) as served:
        threads = [
            threading.Thread(target=_client, args=(served.host, number, items, tally, start), daemon=True)
            for number in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        began = time.monotonic()
        start.set()
        deadline = began + BUDGET_SECONDS
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.1))
        seconds = time.monotonic() - began
        alive = sum(thread.is_alive() for thread in threads)
    assert served.process.returncode == 0, served.stderr  # it ran to the end and stopped on SIGTERM
    assert b"Traceback" not in served.stderr

    record_property("clients_x_pulls", f"{CLIENTS}x{PULLS}")
    record_property("requests", tally.requests)
    record_property("seconds", round(seconds, 2))
    print(
        f"\nimageprep serve: {CLIENTS} clients x {PULLS} pulls, {tally.requests} requests, "
        f"{tally.bytes} bytes in {seconds:.2f}s, {len(tally.errors)} errors"
    )
    assert alive == 0, f"{alive} clients still pulling after {BUDGET_SECONDS}s"
    assert tally.errors == []
    # a pull is 4 requests for a plain image (manifest, config, 2 layers), more for nova/heat/index
    assert tally.requests >= CLIENTS * PULLS * 4
