"""Time ``imageprep prepare`` against ``skopeo sync`` on local registries; not a test.

``python bench/run.py [--runs N]`` seeds a source registry with 95 TripleO-like images (shared 16 MiB
and 8 MiB layers, 1 MiB of their own), then, alternating the tools in each round, copies everything
into a fresh empty registry (cold) and again into the now-full one (warm). imageprep runs as an
operator runs it (a new ``imageprep prepare`` process reading a heat environment and writing the
output file); ``--imageprep engine`` times the copy engine alone, in-process. A third contestant,
``floor`` (:mod:`bench.floor`), makes only the requests the copy needs over raw sockets: how fast
the registries let any client go here, so skopeo/floor is the largest ratio this machine allows.
It prints medians, the skopeo/imageprep and skopeo/floor ratios, and whether every unique blob
reached the destination exactly once (counted from the destination registry's access log). Only
loopback registries are used, and every registry started is stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: make ``bench`` and ``tests.support`` importable from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.accesslog import read_traffic  # noqa: E402
from bench.catalogue_names import TAG, prepare_environment, repositories  # noqa: E402
from bench.registry_server import RegistryServer  # noqa: E402
from bench.seed import ImageSet, generate, manifest_digests, push  # noqa: E402
from bench.stopping import stop_cleanly_on_sigterm  # noqa: E402
from bench.stores import make_registry_store  # noqa: E402
from imageprep.transfer import CopyJob, copy_images  # noqa: E402

SKOPEO = "/usr/bin/skopeo"
SKOPEO_TIMEOUT = 1800.0
TOOLS = ("imageprep", "skopeo", "floor")
FLOOR = Path(__file__).resolve().with_name("floor.py")
TARGETS = {"cold": 3.0, "warm": 2.0}


@dataclass
class Measurement:
    """One timed copy of the whole set, and what the destination registry saw."""

    tool: str
    phase: str
    round: int
    seconds: float
    uploads: int
    unique_uploads: int
    duplicate_uploads: int
    mounts: int
    digests_match: bool
    each_blob_once: bool


def run_imageprep(
    source: str, destination: str, repos: list[str], concurrency: int, image_concurrency: int | None
) -> None:
    """Copy every repository with the engine alone (``--imageprep engine``); fail if any image failed."""
    with make_registry_store(source) as src, make_registry_store(destination) as dst:
        jobs = [CopyJob(src, repo, TAG, dst, repo, TAG) for repo in repos]
        report = copy_images(jobs, concurrency=concurrency, image_concurrency=image_concurrency)
    report.raise_for_failures()


def compile_sources() -> None:
    """Byte-compile imageprep's sources, as installing a package does: with
    ``PYTHONDONTWRITEBYTECODE`` set (as in some shells and CI), a module edited since its last
    compile would otherwise be compiled again by every timed run."""
    import compileall

    import imageprep

    compileall.compile_dir(str(Path(imageprep.__file__).parent), quiet=1)


def run_imageprep_prepare(
    source: str,
    destination: str,
    workdir: Path,
    concurrency: int | None = None,
    options: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
) -> None:
    """``imageprep prepare [OPTIONS]`` as an operator runs it: a new process, the env file, the output
    file; ``concurrency`` (default: imageprep's own) and ``env`` (added to this process's) as given."""
    environment = workdir / "bench-env.yaml"
    environment.write_text(json.dumps(prepare_environment(source, destination)))  # JSON is YAML
    command = [
        str(Path(sys.executable).with_name("imageprep")),
        "prepare",
        "-e",
        str(environment),
        "--output-env-file",
        str(workdir / "bench-images.yaml"),
        *(("--concurrency", str(concurrency)) if concurrency is not None else ()),
        "-q",
        *options,
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        timeout=SKOPEO_TIMEOUT,
        check=False,
        env={**os.environ, **env} if env is not None else None,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.decode(errors='replace')[-2000:]}")


def run_floor(
    source: str, destination: str, repos: list[str], phase: str, options: tuple[str, ...] = ()
) -> None:
    """The yardstick client (:mod:`bench.floor`), in a process of its own like the other two."""
    command = [sys.executable, str(FLOOR), *options, phase, source, destination, *repos]
    done = subprocess.run(command, capture_output=True, timeout=SKOPEO_TIMEOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"floor client failed: {done.stderr.decode(errors='replace')[-2000:]}")


def run_skopeo(source: str, destination: str, repos: list[str], mode: str, workdir: Path) -> None:
    """``skopeo sync`` every repository: one process per repository (docker) or per namespace (yaml).

    skopeo puts an image at ``DESTINATION/<last path component>``, so each run's destination is
    the repository's own namespace there: the copies land under the same names as the sources.
    """
    common = [SKOPEO, "sync", "--dest", "docker", "--dest-tls-verify=false"]
    namespaces: dict[str, list[str]] = {}
    for repo in repos:
        namespaces.setdefault(repo.rsplit("/", 1)[0], []).append(repo)
    if mode == "yaml":
        commands = []
        for index, (namespace, members) in enumerate(sorted(namespaces.items())):
            spec = {source: {"tls-verify": False, "images": {repo: [TAG] for repo in members}}}
            spec_file = workdir / f"skopeo-sync-{index}.yaml"
            spec_file.write_text(json.dumps(spec))  # JSON is YAML
            commands.append([*common, "--src", "yaml", str(spec_file), f"{destination}/{namespace}"])
    else:
        commands = [
            [
                *common,
                "--src",
                "docker",
                "--src-tls-verify=false",
                f"{source}/{repo}:{TAG}",
                f"{destination}/{repo.rsplit('/', 1)[0]}",
            ]
            for repo in repos
        ]
    for command in commands:
        done = subprocess.run(command, capture_output=True, timeout=SKOPEO_TIMEOUT, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.decode(errors='replace')[-2000:]}")


def measure(
    tool: str,
    phase: str,
    round_: int,
    source: RegistryServer,
    destination: RegistryServer,
    image_set: ImageSet,
    expected: dict[str, str | None],
    args: argparse.Namespace,
) -> Measurement:
    """Time one copy of the set and check the destination afterwards."""
    repos = list(image_set.images)
    log_start = destination.log_size()
    started = time.perf_counter()
    if tool == "imageprep" and args.imageprep == "prepare":
        options = ("--remove-signatures",) if args.remove_signatures else ()
        run_imageprep_prepare(source.host, destination.host, destination.directory, args.concurrency, options)
    elif tool == "imageprep":
        run_imageprep(source.host, destination.host, repos, args.concurrency, args.image_concurrency)
    elif tool == "floor":
        run_floor(source.host, destination.host, repos, phase)
    else:
        run_skopeo(source.host, destination.host, repos, args.skopeo_source, destination.directory)
    seconds = time.perf_counter() - started
    time.sleep(0.2)  # let the registry flush its access log
    traffic = read_traffic(destination.log_path, log_start)
    unique = image_set.unique_blobs
    if phase == "cold":
        once = (
            dict(traffic.uploads) == dict.fromkeys(unique, 1) and unique.keys() <= destination.stored_blobs()
        )
    else:
        once = not traffic.uploads
    return Measurement(
        tool=tool,
        phase=phase,
        round=round_,
        seconds=seconds,
        uploads=sum(traffic.uploads.values()),
        unique_uploads=len(traffic.uploads),
        duplicate_uploads=sum(n - 1 for n in traffic.uploads.values()),
        mounts=sum(traffic.mounts.values()),
        digests_match=manifest_digests(destination.host, repos, TAG) == expected,
        each_blob_once=once,
    )


def median(results: list[Measurement], tool: str, phase: str) -> float | None:
    """Median seconds of one tool and phase, or None when it was not run."""
    times = [m.seconds for m in results if m.tool == tool and m.phase == phase]
    return statistics.median(times) if times else None


def report(results: list[Measurement], image_set: ImageSet) -> dict[str, object]:
    """Print the table and return the figures as a JSON-ready mapping."""
    summary: dict[str, object] = {
        "images": len(image_set.images),
        "unique_blobs": len(image_set.unique_blobs),
    }
    print(
        f"\n{len(image_set.images)} images, {len(image_set.unique_blobs)} unique blobs, "
        f"{sum(image_set.unique_blobs.values()) / 2**20:.0f} MiB unique"
    )
    print(
        f"{'phase':<6} {'imageprep s':>12} {'skopeo s':>10} {'floor s':>9} {'skopeo/imageprep':>17} "
        f"{'skopeo/floor':>13} {'target':>7}"
    )
    nan = float("nan")
    for phase, target in TARGETS.items():
        ours, theirs = median(results, "imageprep", phase), median(results, "skopeo", phase)
        floor = median(results, "floor", phase)
        ratio = theirs / ours if ours and theirs else None
        ceiling = theirs / floor if floor and theirs else None
        summary[phase] = {
            "imageprep_median_s": ours,
            "skopeo_median_s": theirs,
            "floor_median_s": floor,
            "ratio": ratio,
            "floor_ratio": ceiling,
            "target": target,
        }
        ours_s, theirs_s, floor_s = (nan if v is None else v for v in (ours, theirs, floor))
        print(
            f"{phase:<6} {ours_s:>12.2f} {theirs_s:>10.2f} {floor_s:>9.2f} "
            f"{ratio if ratio is not None else nan:>16.2f}x "
            f"{ceiling if ceiling is not None else nan:>12.2f}x {target:>6.1f}x"
            + ("" if ratio is None else ("  ok" if ratio >= target else "  BELOW TARGET"))
        )
    for m in results:
        print(
            f"  round {m.round} {m.tool:<9} {m.phase:<4} {m.seconds:7.2f}s uploads={m.uploads} "
            f"(unique {m.unique_uploads}, duplicates {m.duplicate_uploads}) mounts={m.mounts} "
            f"digests_match={m.digests_match} each_blob_once={m.each_blob_once}"
        )
    summary["measurements"] = [asdict(m) for m in results]
    return summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds per tool (default 3)")
    parser.add_argument("--concurrency", type=int, default=8, help="imageprep blob workers (default 8)")
    parser.add_argument(
        "--image-concurrency", type=int, help="imageprep images in flight (default 4 per worker)"
    )
    parser.add_argument(
        "--imageprep",
        choices=["prepare", "engine"],
        default="prepare",
        help="prepare: time the 'imageprep prepare' command (default); engine: the copy engine in-process",
    )
    parser.add_argument(
        "--skopeo-source",
        choices=["docker", "yaml"],
        default="yaml",
        help="yaml: one 'skopeo sync --src yaml' per namespace (default); docker: one per repository",
    )
    parser.add_argument(
        "--tools",
        default=",".join(TOOLS),
        help="comma-separated subset of imageprep,skopeo,floor (default: all)",
    )
    parser.add_argument(
        "--remove-signatures",
        action="store_true",
        help="run imageprep prepare with --remove-signatures: the images alone, no tag list per "
        "repository for their signatures (default: as an operator runs it)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when a correctness check failed."""
    args = parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    if unknown := set(tools) - set(TOOLS):
        raise SystemExit(f"unknown tools: {', '.join(sorted(unknown))}")
    compile_sources()
    repos = repositories()
    started = time.perf_counter()
    image_set = generate(repos)
    print(f"generated {len(repos)} images in {time.perf_counter() - started:.1f}s", flush=True)
    results: list[Measurement] = []
    with (
        tempfile.TemporaryDirectory(prefix="imageprep-bench-") as tmp,
        RegistryServer(Path(tmp) / "source") as source,
    ):
        started = time.perf_counter()
        push(source.host, image_set, TAG)
        expected = manifest_digests(source.host, repos, TAG)
        print(f"seeded {source.host} in {time.perf_counter() - started:.1f}s", flush=True)
        for round_ in range(1, args.runs + 1):
            order = tools if round_ % 2 else list(reversed(tools))
            for tool in order:
                directory = Path(tmp) / f"dest-{tool}-{round_}"
                with RegistryServer(directory) as destination:
                    for phase in ("cold", "warm"):
                        result = measure(tool, phase, round_, source, destination, image_set, expected, args)
                        results.append(result)
                        print(f"round {round_} {tool} {phase}: {result.seconds:.2f}s", flush=True)
                shutil.rmtree(directory, ignore_errors=True)
    unit = "namespace" if args.skopeo_source == "yaml" else "repository"
    print(f"\nimageprep: {args.imageprep}; skopeo: one 'skopeo sync' per {unit}")
    summary = report(results, image_set)
    summary["imageprep_mode"] = args.imageprep
    summary["skopeo_mode"] = args.skopeo_source
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    ok = all(m.digests_match for m in results) and all(
        m.each_blob_once for m in results if m.tool in ("imageprep", "floor")
    )
    print("checks:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    stop_cleanly_on_sigterm()
    sys.exit(main())
