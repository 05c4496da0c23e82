"""A prepare killed (SIGKILL) at any point leaves nothing broken: the re-run completes and verifies.

Kill points are picked by watching the traffic: the fault proxy holds one chosen request half-way
(``hold``) and tells the test, which then kills the CLI while that request is in flight.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.reliability.catalogue import (
    BASE,
    corrupt_stored_blobs,
    expected_tags,
    mirrored_tags,
    write_environment,
)
from tests.reliability.conftest import Catalogue, Cli, finish, temporary_leftovers
from tests.support.faultproxy import Exchange, Trigger, fault_proxy, no_faults
from tests.support.registry_server import RunningRegistry

pytestmark = pytest.mark.integration
PREVIOUS = "# the previous output\n"


def _once(predicate: Callable[[Exchange], bool], skip: int = 0) -> Trigger:
    """Hold the request after the first ``skip`` that ``predicate`` picks; nothing else."""
    lock = threading.Lock()
    picked = [0]

    def trigger(exchange: Exchange) -> str | None:
        if not predicate(exchange):
            return None
        with lock:
            picked[0] += 1
            return "hold" if picked[0] == skip + 1 else None

    return trigger


def _discovery(exchange: Exchange) -> bool:  # the first label read: a manifest of the source
    return exchange.method == "GET" and "/manifests/" in exchange.path


def _mid_blob(exchange: Exchange) -> bool:  # the shared base layer: read only by the copy
    return exchange.method == "GET" and exchange.path.endswith(f"/blobs/{BASE.digest}")


def _manifest_put(exchange: Exchange) -> bool:  # held after the registry stored it: answer pending
    return exchange.method == "PUT" and "/manifests/" in exchange.path


# where the proxy that holds sits, what it holds, and how many such requests go through first
POINTS: dict[str, tuple[str, Callable[[Exchange], bool], int]] = {
    "during tag discovery": ("source", _discovery, 0),
    "mid-blob": ("source", _mid_blob, 0),
    "between manifests": ("destination", _manifest_put, 3),
}


@pytest.mark.parametrize("point", list(POINTS))
def test_killed_prepare_reruns_to_a_verified_mirror(
    point: str, cli: Cli, tmp_path: Path, catalogue: Catalogue, destination: RunningRegistry
) -> None:
    side, predicate, skip = POINTS[point]
    hold = _once(predicate, skip)
    with (
        fault_proxy(catalogue.registry.host, hold if side == "source" else no_faults) as source,
        fault_proxy(destination.host, hold if side == "destination" else no_faults) as target,
    ):
        env = write_environment(tmp_path / "env.yaml", source.host, target.host)
        out = tmp_path / "out.yaml"
        out.write_text(PREVIOUS)
        args = ("prepare", "-e", str(env), "--output-env-file", str(out))

        process = cli(*args)
        watched = source if side == "source" else target
        assert watched.held.wait(60), f"the run never reached the kill point ({point})"
        process.kill()
        finish(process)
        assert out.read_text() == PREVIOUS  # the old file, untouched
        assert temporary_leftovers(tmp_path) == []

        watched.release.set()
        code, _, stderr = finish(cli(*args))
        assert code == 0, stderr
        parameters = yaml.safe_load(out.read_text())["parameter_defaults"]  # the complete new one
    wanted = expected_tags(catalogue.published)
    assert mirrored_tags(destination, wanted) == wanted
    images = {value.split("/", 1)[1] for key, value in parameters.items() if key.startswith("Container")}
    assert set(wanted) <= images
    assert corrupt_stored_blobs(destination) == []
