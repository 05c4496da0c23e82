"""Serve one image-serve tree with ``imageprep serve``, Apache and nginx, and measure them; not a test.

``python bench/serve.py [--rounds N] [--json FILE]`` builds a tree of 8 TripleO-like images (each
pull: a manifest by tag, a config, a shared 16 MiB and 8 MiB layer, then layers of its own of
2 MiB, 256 KiB and 16 KiB, all incompressible), then starts the three servers on loopback:
``imageprep serve`` (its default workers), and Debian's
apache2 and nginx running the configurations ``imageprep serve --print-config`` prints, inside
main configurations with Debian's defaults (Apache's event MPM with its own processes, nginx with
a worker per core). Each round takes each measurement of all three servers one after the
other, in an order that rotates:

* **latency**: one keep-alive connection fetching the manifest by tag, one request at a time
  (median and 90th percentile);
* **manifest requests/s**: 16 keep-alive connections from 2 processes, each with one request
  outstanding, for a few seconds;
* **pull MB/s** with 1, 16 and 50 clients: each client a container engine pulling images over
  its own connection (manifest, config, every layer) for a few seconds; clients are threads of
  2 processes.

With each throughput figure goes the CPU the server's processes used for it (per 1000 manifest
requests, per GB pulled): on a machine shared with other work the throughput drifts, the CPU a
server needs for the same work much less.

Every body is hashed and checked against its digest; a wrong byte makes the run invalid. The
results are medians over the rounds, and ratios to Apache measured side by side in each round
(then the median of those). Only loopback addresses are used, and every server is stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script: make ``bench`` and ``tests.support`` importable from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.imagegen import GeneratedImage, make_image, random_layer  # noqa: E402
from tests.support.imageserve_servers import (  # noqa: E402
    apache_available,
    apache_serving,
    imageprep_serving,
    nginx_available,
    nginx_serving,
    world_readable_directory,
)
from tests.support.memory_store import MemoryStore  # noqa: E402

from bench.serveclient import Client, Image, Tally, hammer, latency, pull, pull_threads, summary  # noqa: E402
from bench.servercpu import CpuMeter  # noqa: E402
from bench.stopping import stop_cleanly_on_sigterm  # noqa: E402
from imageprep.imageserve import ImageServeTree  # noqa: E402
from imageprep.transfer import CopyJob, copy_images  # noqa: E402

REPOSITORIES = [f"tripleobench/image-{number}" for number in range(8)]
TAG = "current"
MIB = 1024 * 1024
PROCESSES = 2
HAMMER_CONNECTIONS = 16
PULL_CLIENTS = (1, 16, 50)
LATENCY_REQUESTS = 300
SERVERS = ("imageprep", "apache", "nginx")


def generate() -> dict[str, GeneratedImage]:
    """TripleO-like images: two shared base layers, then layers of their own from large to tiny."""
    shared = [random_layer(16 * MIB, "serve-base"), random_layer(8 * MIB, "serve-openstack-base")]
    own = (2 * MIB, 256 * 1024, 16 * 1024)
    return {
        name: make_image({"name": name}, [*shared, *(random_layer(size, f"{name}-{size}") for size in own)])
        for name in REPOSITORIES
    }


def build_tree(root: Path) -> list[Image]:
    """The images copied into a new tree at ``root`` by the copy engine."""
    images = generate()
    source = MemoryStore("generated")
    for repository, image in images.items():
        source.add_image(repository, TAG, image)
    tree = ImageServeTree(root)
    report = copy_images([CopyJob(source, name, TAG, tree, name, TAG) for name in REPOSITORIES])
    report.raise_for_failures()
    return [Image(name, TAG, images[name].digest) for name in REPOSITORIES]


@contextlib.contextmanager
def servers(root: Path, workdir: Path) -> Iterator[dict[str, tuple[str, int]]]:
    """Every server this machine has, serving ``root``; ``{name: (host, port)}``."""
    with contextlib.ExitStack() as stack:
        running: dict[str, str] = {"imageprep": stack.enter_context(imageprep_serving(root)).host}
        if apache_available():
            running["apache"] = stack.enter_context(apache_serving(root, workdir / "apache", production=True))
        if nginx_available():
            running["nginx"] = stack.enter_context(nginx_serving(root, workdir / "nginx", production=True))
        yield {name: (host.rsplit(":", 1)[0], int(host.rsplit(":", 1)[1])) for name, host in running.items()}


def _in_processes(function: Callable[..., Tally], arguments: list[tuple[Any, ...]]) -> Tally:
    """Run ``function(*arguments[i])`` in a process each; their tallies summed (one span)."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(len(arguments)) as pool:
        tallies = pool.starmap(function, arguments)
    total = Tally(started=min(t.started for t in tallies), ended=max(t.ended for t in tallies))
    for tally in tallies:
        total.requests += tally.requests
        total.bytes += tally.bytes
        total.errors += tally.errors
    return total


def _span(tally: Tally) -> float:
    if tally.errors:
        raise SystemExit(f"invalid run: {len(tally.errors)} errors, first: {tally.errors[0]}")
    return tally.ended - tally.started


def measure_latency(address: tuple[str, int], images: list[Image], seconds: float) -> dict[str, float]:
    """Median and 90th percentile of one connection's manifest-by-tag round trips."""
    median, p90 = summary(latency(address, images[0], LATENCY_REQUESTS))
    return {"latency_ms": median * 1000, "latency_p90_ms": p90 * 1000}


def measure_manifests(address: tuple[str, int], images: list[Image], seconds: float) -> dict[str, float]:
    """Manifest answers per second over 16 connections, and the server's CPU per 1000 of them."""
    meter = CpuMeter(address[1])
    start = time.monotonic() + 1.0  # the processes need a moment to start
    per_process = HAMMER_CONNECTIONS // PROCESSES
    meter.start()
    tally = _in_processes(hammer, [(address, images[0], per_process, start, seconds)] * PROCESSES)
    cpu = meter.stop()
    return {"manifests_per_s": tally.requests / _span(tally), "cpu_ms_per_1000": cpu / tally.requests * 1e6}


def measure_pulls(clients: int) -> Callable[[tuple[str, int], list[Image], float], dict[str, float]]:
    """A measurement of full pulls by ``clients`` clients: MB/s, and the server's CPU per GB."""

    def measure(address: tuple[str, int], images: list[Image], seconds: float) -> dict[str, float]:
        meter = CpuMeter(address[1])
        processes = min(clients, PROCESSES)
        threads = clients // processes
        start = time.monotonic() + 1.0
        arguments = [(address, images, threads, n * threads, start, seconds) for n in range(processes)]
        meter.start()
        tally = _in_processes(pull_threads, arguments)
        cpu = meter.stop()
        return {
            f"pull_{clients}_mb_s": tally.bytes / _span(tally) / 1e6,
            f"pull_{clients}_cpu_s_per_gb": cpu / tally.bytes * 1e9,
        }

    return measure


MEASUREMENTS = [measure_latency, measure_manifests, *(measure_pulls(n) for n in PULL_CLIENTS)]
LABELS = {
    "latency_ms": ("manifest latency, median", "ms", False),
    "latency_p90_ms": ("manifest latency, 90th percentile", "ms", False),
    "manifests_per_s": ("manifest requests/s, 16 connections", "/s", True),
    "cpu_ms_per_1000": ("server CPU per 1000 manifest requests", "ms", False),
}
for _clients in PULL_CLIENTS:
    _plural = "s" if _clients > 1 else ""
    LABELS[f"pull_{_clients}_mb_s"] = (f"full pulls, {_clients} client{_plural}", "MB/s", True)
    LABELS[f"pull_{_clients}_cpu_s_per_gb"] = (
        f"server CPU per GB pulled, {_clients} client{_plural}",
        "s",
        False,
    )


def report(results: dict[str, list[dict[str, float]]]) -> str:
    """The table: medians per server, and the median of the per-round ratios to Apache."""
    names = [name for name in SERVERS if name in results]
    others = [name for name in names if name != "apache"] if "apache" in results else []
    lines = [
        "| measure | " + " | ".join([*names, *(f"{name}/apache" for name in others)]) + " |",
        "| --- " * (1 + len(names) + len(others)) + "|",
    ]
    for key, (label, unit, higher_is_better) in LABELS.items():
        cells = [f"{statistics.median(r[key] for r in results[name]):,.2f} {unit}" for name in names]
        for name in others:
            pairs = zip(results[name], results["apache"], strict=True)
            cells.append(f"{statistics.median(ours[key] / theirs[key] for ours, theirs in pairs):.2f}x")
        better = "higher" if higher_is_better else "lower"
        lines.append(f"| {label} ({better} is better) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_rounds(
    running: dict[str, tuple[str, int]], images: list[Image], rounds: int, seconds: float
) -> dict[str, list[dict[str, float]]]:
    """Every measurement of every server, round after round; within a round each measurement is
    taken of all servers one after the other (in an order that rotates), so that the ratios
    compare servers measured within seconds of each other on a machine whose load drifts."""
    results: dict[str, list[dict[str, float]]] = {name: [] for name in running}
    names = list(running)
    for number in range(rounds):
        figures: dict[str, dict[str, float]] = {name: {} for name in names}
        for position, measurement in enumerate(MEASUREMENTS):
            shift = (number + position) % len(names)
            for name in names[shift:] + names[:shift]:
                figures[name].update(measurement(running[name], images, seconds))
        for name in names:
            results[name].append(figures[name])
            shown = ", ".join(f"{key} {value:,.2f}" for key, value in figures[name].items())
            print(f"round {number + 1} {name}: {shown}", flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each throughput measurement")
    parser.add_argument("--json", type=Path, help="also write every round's figures here")
    options = parser.parse_args()
    with world_readable_directory("imageprep-bench-serve-") as base:
        print("building the tree ...", flush=True)
        images = build_tree(base / "image-serve")
        with (
            tempfile.TemporaryDirectory(prefix="imageprep-bench-web-") as workdir,
            servers(base / "image-serve", Path(workdir)) as running,
        ):
            for address in running.values():  # warm the page cache and the servers
                measure_pull_once(address, images)
            results = run_rounds(running, images, options.rounds, options.seconds)
    print()
    print(report(results))
    print()
    print(targets(results))
    if options.json:
        options.json.write_text(json.dumps(results, indent=2))
    return 0


def measure_pull_once(address: tuple[str, int], images: list[Image]) -> None:
    """One pull of every image, checked (a warm-up that also proves the server answers right)."""
    client = Client(address)
    try:
        for image in images:
            pull(client, image, Tally())
    finally:
        client.close()


TARGETS = (
    ("manifests_per_s", "manifest requests/s >= half of Apache's", 0.5),
    ("pull_16_mb_s", "pull throughput >= Apache's, 16 clients", 1.0),
    ("pull_50_mb_s", "pull throughput >= Apache's, 50 clients", 1.0),
)
MAX_LATENCY_MS = 1.0


def targets(results: dict[str, list[dict[str, float]]]) -> str:
    """Whether imageprep serve met each target: latency on its median, the others on the median
    of the per-round ratios to Apache (and in how many rounds on its own)."""
    ours = results["imageprep"]
    latency = statistics.median(r["latency_ms"] for r in ours)
    rounds = sum(r["latency_ms"] <= MAX_LATENCY_MS for r in ours)
    verdict = "met" if latency <= MAX_LATENCY_MS else "NOT met"
    lines = [
        f"median manifest latency <= {MAX_LATENCY_MS:g} ms: {verdict}"
        f" ({latency:.2f} ms; in {rounds} of {len(ours)} rounds)"
    ]
    if "apache" not in results:
        return "\n".join([*lines, "(no Apache here: the other targets are not checked)"])
    for key, text, wanted in TARGETS:
        ratios = [o[key] / a[key] for o, a in zip(ours, results["apache"], strict=True)]
        ratio = statistics.median(ratios)
        rounds = sum(r >= wanted for r in ratios)
        verdict = "met" if ratio >= wanted else "NOT met"
        lines.append(f"{text}: {verdict} ({ratio:.2f}x; in {rounds} of {len(ratios)} rounds)")
    return "\n".join(lines)


if __name__ == "__main__":
    stop_cleanly_on_sigterm()
    raise SystemExit(main())
