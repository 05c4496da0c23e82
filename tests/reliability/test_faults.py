"""A catalogue mirror through a flaky, corrupting network finishes and equals a clean mirror."""

from __future__ import annotations

from pathlib import Path

import pytest

from imageprep.model.retry import RetryPolicy
from tests.reliability.catalogue import (
    corrupt_stored_blobs,
    expected_tags,
    mirrored_tags,
    write_environment,
)
from tests.reliability.conftest import Catalogue, run_mirror
from tests.support.faultproxy import SeededSchedule, SustainedSchedule, fault_proxy
from tests.support.registry_server import RunningRegistry

pytestmark = pytest.mark.integration
STALL = 2.5  # past the suite's read timeout


def test_clean_mirror_matches_the_source(
    catalogue: Catalogue, destination: RunningRegistry, tmp_path: Path
) -> None:
    env = write_environment(tmp_path / "env.yaml", catalogue.registry.host, destination.host)
    report = run_mirror(env)
    assert not report.failed, report.to_json()
    wanted = expected_tags(catalogue.published)
    assert mirrored_tags(destination, wanted) == wanted


def test_mirror_through_a_faulty_source_equals_a_clean_one(
    catalogue: Catalogue, destination: RunningRegistry, tmp_path: Path
) -> None:
    schedule = SeededSchedule(seed=6, rate=0.35)
    with fault_proxy(catalogue.registry.host, schedule, stall_seconds=STALL) as proxy:
        env = write_environment(tmp_path / "env.yaml", proxy.host, destination.host)
        report = run_mirror(env)
    assert not report.failed, report.to_json()
    wanted = expected_tags(catalogue.published)
    assert mirrored_tags(destination, wanted) == wanted
    assert corrupt_stored_blobs(destination) == []
    assert set(proxy.injected) == {"503", "429", "reset", "truncate", "stall", "corrupt"}, proxy.injected
    print(f"source faults injected and survived: {dict(proxy.injected)}")


def test_mirror_through_a_faulty_destination_equals_a_clean_one(
    catalogue: Catalogue, destination: RunningRegistry, tmp_path: Path
) -> None:
    with fault_proxy(destination.host, SeededSchedule(seed=7, rate=0.35), stall_seconds=STALL) as proxy:
        env = write_environment(tmp_path / "env.yaml", catalogue.registry.host, proxy.host)
        report = run_mirror(env)
    assert not report.failed, report.to_json()
    wanted = expected_tags(catalogue.published)
    assert mirrored_tags(destination, wanted) == wanted
    assert corrupt_stored_blobs(destination) == []
    assert {"503", "429", "reset", "stall", "corrupt"} <= set(proxy.injected), proxy.injected
    print(f"destination faults injected and survived: {dict(proxy.injected)}")


# The default attempts and budget, with waits shortened: sustained faults need the real patience.
SUSTAINED_RETRY = RetryPolicy(backoff=0.05, max_backoff=0.5, max_retry_after=2.0)


def test_a_mirror_survives_sustained_faults_on_both_sides_at_once(
    catalogue: Catalogue, destination: RunningRegistry, tmp_path: Path
) -> None:
    """About one request in five answered 503 or 429, every fourth blob download cut at half,
    about one upload in ten dropped unanswered, for the whole mirror, at the source and the
    destination together: every image still ends at its source digest."""
    with (
        fault_proxy(catalogue.registry.host, SustainedSchedule(seed=21)) as source,
        fault_proxy(destination.host, SustainedSchedule(seed=22)) as target,
    ):
        env = write_environment(tmp_path / "env.yaml", source.host, target.host)
        report = run_mirror(env, retry=SUSTAINED_RETRY)
    assert not report.failed, report.to_json()
    wanted = expected_tags(catalogue.published)
    assert mirrored_tags(destination, wanted) == wanted
    assert corrupt_stored_blobs(destination) == []
    assert {"503", "429", "truncate"} <= set(source.injected), source.injected
    assert {"503", "429", "drop"} <= set(target.injected), target.injected
    faults = source.total_injected + target.total_injected
    requests = len(source.requests) + len(target.requests)
    assert faults >= requests // 8  # the rates really were sustained
    blobs = report.blobs
    # Cut downloads resume where they stopped: next to nothing is downloaded twice.
    assert blobs.bytes_refetched <= source.cut_bytes // 10
    print(
        f"sustained faults survived: {faults} faults in {requests} requests (source {dict(source.injected)}, "
        f"destination {dict(target.injected)}); {report.retries.retries} retries; "
        f"{blobs.bytes_refetched} bytes downloaded twice, of {source.cut_bytes} cut off; "
        f"{blobs.bytes_transferred} bytes downloaded in all"
    )
