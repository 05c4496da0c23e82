"""The 95-image mirror through sustained faults on both sides at once; not a test.

``python bench/faults.py [--seed N]`` seeds a source registry with the benchmark's image set (95
images, 119 MiB), puts the test suite's fault proxy in front of it and of an empty destination,
each answering about one request in five 503 or 429 (``Retry-After: 1``), cutting every fourth
blob download at half and dropping about one upload in ten unanswered, and runs the prepare use
case through them with the default retry policy (real waits). It prints the faults met, the
retries made, the bytes downloaded twice against the bytes the cuts kept back, and whether every
image ended at its source digest. Only loopback registries are used; all are stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.faultproxy import SustainedSchedule, fault_proxy  # noqa: E402

from bench.catalogue_names import TAG, prepare_environment, repositories  # noqa: E402
from bench.registry_server import RegistryServer  # noqa: E402
from bench.seed import generate, manifest_digests, push  # noqa: E402
from bench.stopping import stop_cleanly_on_sigterm  # noqa: E402
from imageprep.settings import Settings  # noqa: E402
from imageprep.usecases.prepare import PrepareRequest, prepare_images  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    repos = repositories()
    image_set = generate(repos)
    with tempfile.TemporaryDirectory(prefix="imageprep-faults-") as scratch:
        work = Path(scratch)
        with RegistryServer(work / "source") as source, RegistryServer(work / "destination") as destination:
            push(source.host, image_set, TAG)
            with (
                fault_proxy(source.host, SustainedSchedule(seed=args.seed)) as source_faults,
                fault_proxy(destination.host, SustainedSchedule(seed=args.seed + 1)) as destination_faults,
            ):
                environment = work / "env.yaml"
                environment.write_text(
                    json.dumps(prepare_environment(source_faults.host, destination_faults.host))
                )
                settings = Settings(image_serve_root=work / "tree", cache_directory=work / "cache")
                started = time.monotonic()
                outcome = prepare_images(PrepareRequest(environment_files=(environment,)), settings)
                seconds = time.monotonic() - started
            wanted = manifest_digests(source.host, repos, TAG)
            got = manifest_digests(destination.host, repos, TAG)
    report = outcome.report
    assert report is not None
    requests = len(source_faults.requests) + len(destination_faults.requests)
    faults = source_faults.total_injected + destination_faults.total_injected
    images, failed = len(report.images), len(report.failed)
    print(f"{images} images, {failed} failed, digests match: {wanted == got}, {seconds:.1f} s")
    print(f"faults: {faults} in {requests} requests; source {dict(source_faults.injected)}, "
          f"destination {dict(destination_faults.injected)}")  # fmt: skip
    print(f"retries: {report.retries.retries} ({dict(report.retries.by_cause)})")
    blobs = report.blobs
    print(
        f"downloaded {blobs.bytes_transferred / 2**20:.1f} MiB; downloaded twice {blobs.bytes_refetched} "
        f"bytes; cut off by the proxy {source_faults.cut_bytes / 2**20:.1f} MiB"
    )
    return 0 if wanted == got and not report.failed else 1


if __name__ == "__main__":
    stop_cleanly_on_sigterm()
    sys.exit(main())
