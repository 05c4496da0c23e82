"""The benchmark where operators live: a far-away TLS source behind a shared downlink; not a test.

``python bench/wan.py [--rtt-ms 40 --mbit 200] [--runs N] [--tools imageprep,skopeo]`` seeds a
source registry with the benchmark's 95 images (119 MiB unique), serves it over TLS with a
certificate of a CA made here, and puts :class:`~bench.wanlink.WanLink` in front of it: every byte
a fixed delay later, a round trip for each new connection, one capped downlink for everything
the source sends. Each tool copies the set into a fresh local registry (cold) and again (warm),
as an operator runs it; every destination digest is checked against the source. Reported beside
the times: the link limit (unique bytes / bandwidth), the warm floor (the round trips a warm check
needs: one for the TCP handshake, one for TLS 1.3, then one per 16 images checked at once), the
connections each run opened through the link, and the requests the source answered.

Right after each imageprep warm run, the floor client (:mod:`bench.floor`) checks the same
destination through the same link, over as many TLS connections as imageprep opens to a host,
making only the requests the check needs (with the tag lists when imageprep brought signatures):
``floor`` and ``floor-nosig`` are what any client pays here, measured in the same minute, so the
imageprep/floor ratio is the part of a warm run that is imageprep's own.

imageprep runs with one home directory for the whole benchmark, as an operator's is: the bench's CA
is trusted there (``certs.d``), and imageprep's per-user cache (the compiled catalogue) is built by
one untimed ``--dry-run --offline`` before the first round. A cold copy is one into an empty
destination, not imageprep's first run on the machine; what that first run costs on top is
printed on its own (``first run ever``).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.imageserve_servers import make_tls_files  # noqa: E402

from bench.accesslog import read_traffic  # noqa: E402
from bench.catalogue_names import TAG, repositories  # noqa: E402
from bench.registry_server import RegistryServer  # noqa: E402
from bench.run import compile_sources, run_floor, run_imageprep_prepare, run_skopeo  # noqa: E402
from bench.seed import generate, manifest_digests, push  # noqa: E402
from bench.stopping import stop_cleanly_on_sigterm  # noqa: E402
from bench.wanlink import WanLink  # noqa: E402

CHECKS_AT_ONCE = 16
# The floor client's connections to the source: as many as imageprep opens to one host.
FLOOR_CONNECTIONS = 32
# imageprep as it runs by default (signatures and attachments copied: one more request per
# repository), and with --remove-signatures (the images alone, as skopeo sync copies them here).
IMAGEPREP_VARIANTS: dict[str, tuple[str, ...]] = {
    "imageprep": (),
    "imageprep-nosig": ("--remove-signatures",),
}
# The floor client's warm check measured beside each variant: the same requests, nothing else.
FLOOR_OF_VARIANT: dict[str, tuple[str, tuple[str, ...]]] = {
    "imageprep": ("floor", ("--tag-lists",)),
    "imageprep-nosig": ("floor-nosig", ()),
}


def _build_caches(source: str, work: Path, env: dict[str, str]) -> float:
    """Fill imageprep's per-user cache with a ``--dry-run --offline``, as an operator's first run
    does; return how much longer that first run took than a second, cached one."""
    directory = work / "first-run"
    directory.mkdir()

    def dry_run() -> float:
        started = time.perf_counter()
        run_imageprep_prepare(source, "127.0.0.1:9", directory, options=("--dry-run", "--offline"), env=env)
        return time.perf_counter() - started

    first = dry_run()
    return first - dry_run()


@dataclass
class _Rounds:
    """Times each run through the link, counts what it asked of the source, checks the copy; each
    run's figures go to ``results`` (the caller's list, read once every round is done)."""

    link: WanLink
    source: RegistryServer
    repos: list[str]
    expected: dict[str, str | None]
    results: list[dict[str, object]]

    def measure(self, name: str, phase: str, round_: int, destination: str, run: Callable[[], None]) -> None:
        self.link.reset_counts()
        log_start = self.source.log_size()
        started = time.perf_counter()
        run()
        seconds = time.perf_counter() - started
        time.sleep(0.2)  # the access log catches up
        result: dict[str, object] = {
            "tool": name,
            "phase": phase,
            "round": round_,
            "seconds": seconds,
            "connections": self.link.stats.connections,
            "requests": read_traffic(self.source.log_path, log_start).requests,
            "mib_down": self.link.stats.bytes_down / 2**20,
            "digests_match": manifest_digests(destination, self.repos, TAG) == self.expected,
        }
        self.results.append(result)
        print(
            f"round {round_} {name:<15} {phase}: {seconds:6.2f}s, "
            f"{result['connections']} connections, {result['requests']} requests, "
            f"{result['mib_down']:.1f} MiB down, digests {'ok' if result['digests_match'] else 'DIFFER'}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--rtt-ms", type=float, default=40.0, help="round trip added by the link (default 40)"
    )
    parser.add_argument("--mbit", type=float, default=200.0, help="downlink, Mbit/s (default 200)")
    parser.add_argument("--runs", type=int, default=3, help="rounds per tool (default 3)")
    parser.add_argument(
        "--tools",
        default="imageprep,imageprep-nosig,skopeo",
        help="comma-separated: imageprep, imageprep-nosig (--remove-signatures), skopeo (default: all)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    tools = [tool for tool in args.tools.split(",") if tool]
    compile_sources()
    repos = repositories()
    image_set = generate(repos)
    unique_bytes = sum(image_set.unique_blobs.values())
    bandwidth = args.mbit * 1e6 / 8
    rtt = args.rtt_ms / 1000
    link_limit = unique_bytes / bandwidth
    warm_floor = rtt * (2 + math.ceil(len(repos) / CHECKS_AT_ONCE))
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="imageprep-wan-") as scratch:
        work = Path(scratch)
        tls = make_tls_files(work / "certs")
        with RegistryServer(work / "source") as plain:
            push(plain.host, image_set, TAG)
            expected = manifest_digests(plain.host, repos, TAG)
        with (
            RegistryServer(work / "source", tls=(tls.certificate, tls.key)) as source,
            WanLink(source.host, delay=rtt / 2, bandwidth=bandwidth) as link,
        ):
            rounds = _Rounds(link, source, repos, expected, results)
            # The bench's CA trusted for the source alone, in certs.d as podman reads it: like a
            # far-away registry, the source is then not asked whether it speaks plain HTTP (only
            # loopback hosts without a CA of their own are).
            home = work / "home"
            trust = home / ".config/containers/certs.d" / link.host
            trust.mkdir(parents=True)
            shutil.copy(tls.ca, trust / "ca.crt")
            env = {"HOME": str(home)}
            if any(tool in IMAGEPREP_VARIANTS for tool in tools):
                first_run = _build_caches(link.host, work, env)
                print(f"imageprep's first run ever (its cache built): {first_run:+.2f}s against a later one")
            for round_ in range(1, args.runs + 1):
                for tool in tools if round_ % 2 else list(reversed(tools)):
                    directory = work / f"dest-{tool}-{round_}"
                    with RegistryServer(directory) as destination:
                        run: Callable[[], None] = (
                            partial(
                                run_imageprep_prepare,
                                link.host,
                                destination.host,
                                directory,
                                options=IMAGEPREP_VARIANTS[tool],
                                env=env,
                            )
                            if tool in IMAGEPREP_VARIANTS
                            else partial(run_skopeo, link.host, destination.host, repos, "yaml", directory)
                        )
                        for phase in ("cold", "warm"):
                            rounds.measure(tool, phase, round_, destination.host, run)
                        if tool in FLOOR_OF_VARIANT:
                            floor, extra = FLOOR_OF_VARIANT[tool]
                            options = ("--tls-ca", str(tls.ca), "--threads", str(FLOOR_CONNECTIONS), *extra)
                            check = partial(run_floor, link.host, destination.host, repos, "warm", options)
                            rounds.measure(floor, "warm", round_, destination.host, check)
                    shutil.rmtree(directory, ignore_errors=True)
    print(
        f"\nlink: {args.rtt_ms:g} ms round trip, {args.mbit:g} Mbit/s shared downlink, TLS; "
        f"{len(repos)} images, {unique_bytes / 2**20:.0f} MiB unique"
    )
    print(f"link limit (unique bytes / bandwidth): {link_limit:.2f}s; warm floor: {warm_floor:.2f}s")
    summary: dict[str, object] = {"link_limit_s": link_limit, "warm_floor_s": warm_floor, "results": results}
    measured = [r["tool"] for r in results]
    for tool in dict.fromkeys(measured):
        for phase, limit in (("cold", link_limit), ("warm", warm_floor)):
            runs = [r for r in results if r["tool"] == tool and r["phase"] == phase]
            if not runs:
                continue
            seconds = statistics.median(float(r["seconds"]) for r in runs)  # type: ignore[arg-type]
            connections = statistics.median(int(r["connections"]) for r in runs)  # type: ignore[call-overload]
            requests = statistics.median(int(r["requests"]) for r in runs)  # type: ignore[call-overload]
            print(
                f"{tool:<15} {phase}: median {seconds:6.2f}s = {seconds / limit:5.2f}x the "
                f"{'link limit' if phase == 'cold' else 'warm floor'}; {connections:g} connections, "
                f"{requests:g} requests"
            )
            summary[f"{tool}_{phase}_median_s"] = seconds
    for variant, (floor, _) in FLOOR_OF_VARIANT.items():
        ours, theirs = summary.get(f"{variant}_warm_median_s"), summary.get(f"{floor}_warm_median_s")
        if isinstance(ours, float) and isinstance(theirs, float):
            print(f"{variant} warm / {floor} warm, measured in the same rounds: {ours / theirs:.2f}x")
            summary[f"{variant}_warm_floor_ratio"] = ours / theirs
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    ok = all(r["digests_match"] for r in results)
    print("checks:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    stop_cleanly_on_sigterm()
    sys.exit(main())
