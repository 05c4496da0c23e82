"""Prepares into the image-serve tree: killed at any point, or run two at once, they leave it sound.

The source is the reliability catalogue behind the fault proxy, which picks the kill moments
(``hold``: a request is answered half-way and the test kills the CLI while it is in flight). After
a kill the tree as left must already verify (a web server serving it mid-run must never hand out
a partial file); after the re-run every tag must point at the source's digest.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.reliability.catalogue import (
    BASE,
    NAMES,
    PREFIX,
    Published,
    expected_tags,
    write_environment,
)
from tests.reliability.conftest import Catalogue, Cli, finish, temporary_leftovers
from tests.support.faultproxy import Exchange, Trigger, fault_proxy
from tests.support.imageserve_check import verify_tree

pytestmark = pytest.mark.integration
PREVIOUS = "# the previous output\n"
LOCAL = "127.0.0.1:8787"  # LocalContainerRegistry 127.0.0.1 and the image-serve port
BARRIER_TIMEOUT = 30.0


def tree_environment(path: Path, source: str, names: tuple[str, ...] = NAMES) -> Path:
    """The catalogue environment with ``push_destination: true`` (into the image-serve tree)."""
    write_environment(path, source, "unused", LocalContainerRegistry="127.0.0.1")
    document = yaml.safe_load(path.read_text())
    entry = document["parameter_defaults"]["ContainerImagePrepare"][0]
    entry["push_destination"] = True
    entry["includes"] = [f"{PREFIX}{name}:" for name in names]
    path.write_text(yaml.safe_dump(document))
    return path


def tagged_in_tree(root: Path, wanted: dict[str, str]) -> dict[str, str | None]:
    """What the tree's tag links point at for each ``repository:tag`` of ``wanted``."""
    found: dict[str, str | None] = {}
    for name in wanted:
        repository, _, tag = name.rpartition(":")
        link = root / "v2" / repository / "manifests" / f"{tag}.ref"
        found[name] = os.readlink(link) if link.is_symlink() else None
    return found


def sound(root: Path) -> list[str]:
    """verify_tree, for a tree the killed run may not have created yet."""
    return verify_tree(root) if (root / "v2").exists() else []


def stale_downloads(root: Path) -> list[Path]:
    downloads = root / ".imageprep" / "tmp"
    return sorted(downloads.iterdir()) if downloads.is_dir() else []


def tree_images(parameters: dict[str, object]) -> set[str]:
    return {
        str(value).split("/", 1)[1]
        for key, value in parameters.items()
        if key.startswith("Container") and str(value).startswith(f"{LOCAL}/")
    }


def _eventually(condition: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# --- kill points ------------------------------------------------------------------------------


def _once(predicate: Callable[[Exchange], bool]) -> Trigger:
    """Hold the first request ``predicate`` picks; nothing else."""
    lock = threading.Lock()
    picked = [False]

    def trigger(exchange: Exchange) -> str | None:
        if not predicate(exchange):
            return None
        with lock:
            if picked[0]:
                return None
            picked[0] = True
            return "hold"

    return trigger


def _discovery(root: Path) -> Callable[[Exchange], bool]:  # the first label read
    return lambda exchange: exchange.method == "GET" and "/manifests/" in exchange.path


def _mid_blob(root: Path) -> Callable[[Exchange], bool]:  # the shared base layer: read by the copy
    return lambda exchange: exchange.method == "GET" and exchange.path.endswith(f"/blobs/{BASE.digest}")


def _between_manifests(root: Path) -> Callable[[Exchange], bool]:
    """The next read (a manifest or a layer) once three images are tagged in the tree (others still
    to come)."""

    def predicate(exchange: Exchange) -> bool:
        if exchange.method != "GET" or not ("/manifests/" in exchange.path or "/blobs/" in exchange.path):
            return False
        return len(list((root / "v2").glob("*/*/manifests/*.type-map"))) >= 3

    return predicate


POINTS = {
    "during tag discovery": _discovery,
    "mid-blob": _mid_blob,
    "between manifests": _between_manifests,
}


@pytest.mark.parametrize("point", list(POINTS))
def test_killed_prepare_into_the_tree_reruns_to_a_verified_tree(
    point: str, cli: Cli, tmp_path: Path, catalogue: Catalogue
) -> None:
    root = tmp_path / "image-serve"
    out = tmp_path / "out.yaml"
    out.write_text(PREVIOUS)
    with fault_proxy(catalogue.registry.host, _once(POINTS[point](root))) as source:
        env = tree_environment(tmp_path / "env.yaml", source.host)
        args = ("prepare", "-e", str(env), "--output-env-file", str(out), "--image-serve-root", str(root))

        # One blob worker, so layers one at a time: images are still to come when three are tagged.
        process = cli(*args, "--concurrency", "1")
        assert source.held.wait(60), f"the run never reached the kill point ({point})"
        if point == "mid-blob":  # half the layer sent: kill once the tree is writing it
            assert _eventually(lambda: bool(stale_downloads(root))), "the tree never started the blob"
        process.kill()
        finish(process)
        assert out.read_text() == PREVIOUS  # the old file, untouched
        assert temporary_leftovers(tmp_path) == []
        assert sound(root) == []  # what the killed run left is already servable as it is
        if point == "during tag discovery":
            assert not (root / "v2").exists()  # nothing is written before tags are known
        if point == "between manifests":
            assert 3 <= len(list((root / "v2").glob("*/*/manifests/*.type-map"))) < len(NAMES)

        source.release.set()
        code, _, stderr = finish(cli(*args))
        assert code == 0, stderr
    parameters = yaml.safe_load(out.read_text())["parameter_defaults"]  # the complete new one
    wanted = expected_tags(catalogue.published)
    assert verify_tree(root) == []
    assert tagged_in_tree(root, wanted) == wanted
    assert tree_images(parameters) == set(wanted)
    assert stale_downloads(root) == []  # the re-run removed what the killed one was writing


# --- two at once ------------------------------------------------------------------------------


def _meet_at_first_blob(barrier: threading.Barrier) -> Trigger:
    """Wait at the first blob read until the other run reaches its own: both copy at once."""
    lock = threading.Lock()
    waited = [False]

    def trigger(exchange: Exchange) -> str | None:
        if exchange.method != "GET" or "/blobs/" not in exchange.path:
            return None
        with lock:
            first = not waited[0]
            waited[0] = True
        if first:
            # When the other run never gets here, the barrier breaks and the test says so.
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(BARRIER_TIMEOUT)
        return None

    return trigger


def test_two_prepares_into_one_tree_at_once_both_succeed_and_it_verifies(
    cli: Cli, tmp_path: Path, catalogue: Catalogue
) -> None:
    root = tmp_path / "image-serve"
    first, second = NAMES[:9], NAMES[5:]  # 4 images, the base and heat layers in both
    barrier = threading.Barrier(2)
    runs = []
    with (
        fault_proxy(catalogue.registry.host, _meet_at_first_blob(barrier)) as source_a,
        fault_proxy(catalogue.registry.host, _meet_at_first_blob(barrier)) as source_b,
    ):
        for label, names, source in (("a", first, source_a), ("b", second, source_b)):
            env = tree_environment(tmp_path / f"env-{label}.yaml", source.host, names)
            out = tmp_path / f"out-{label}.yaml"
            args = ("prepare", "-e", str(env), "--output-env-file", str(out), "--image-serve-root", str(root))
            runs.append((out, cli(*args)))
        results = [finish(process) for _, process in runs]
    assert not barrier.broken, "the two prepares did not copy at the same time"
    for code, _, stderr in results:
        assert code == 0, stderr

    published: dict[str, Published] = catalogue.published
    wanted = expected_tags({name: published[name] for name in (*first, *second)})
    assert verify_tree(root) == []
    assert tagged_in_tree(root, wanted) == wanted
    catalog = yaml.safe_load((root / "v2" / "_catalog").read_text())
    assert sorted(catalog["repositories"]) == sorted({name.rpartition(":")[0] for name in wanted})
    for (out, _), names in zip(runs, (first, second), strict=True):
        parameters = yaml.safe_load(out.read_text())["parameter_defaults"]
        assert tree_images(parameters) == set(expected_tags({name: published[name] for name in names}))
