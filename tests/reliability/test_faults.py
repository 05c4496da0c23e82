"""A catalogue mirror through a flaky, corrupting network finishes and equals a clean mirror."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.catalogue import (
    corrupt_stored_blobs,
    expected_tags,
    mirrored_tags,
    write_environment,
)
from tests.reliability.conftest import Catalogue, run_mirror
from tests.support.faultproxy import SeededSchedule, fault_proxy
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
