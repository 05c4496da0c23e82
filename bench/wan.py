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
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.imageserve_servers import make_tls_files  # noqa: E402

from bench.accesslog import read_traffic  # noqa: E402
from bench.catalogue_names import TAG, repositories  # noqa: E402
from bench.registry_server import RegistryServer  # noqa: E402
from bench.run import compile_sources, run_imageprep_prepare, run_skopeo  # noqa: E402
from bench.seed import generate, manifest_digests, push  # noqa: E402
from bench.stopping import stop_cleanly_on_sigterm  # noqa: E402
from bench.wanlink import WanLink  # noqa: E402

CHECKS_AT_ONCE = 16
# imageprep as it runs by default (signatures and attachments copied: one more request per
# repository), and with --remove-signatures (the images alone, as skopeo sync copies them here).
IMAGEPREP_VARIANTS: dict[str, tuple[str, ...]] = {
    "imageprep": (),
    "imageprep-nosig": ("--remove-signatures",),
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
                        for phase in ("cold", "warm"):
                            link.reset_counts()
                            log_start = source.log_size()
                            started = time.perf_counter()
                            if tool in IMAGEPREP_VARIANTS:
                                run_imageprep_prepare(
                                    link.host,
                                    destination.host,
                                    directory,
                                    options=IMAGEPREP_VARIANTS[tool],
                                    env=env,
                                )
                            else:
                                run_skopeo(link.host, destination.host, repos, "yaml", directory)
                            seconds = time.perf_counter() - started
                            time.sleep(0.2)  # the access log catches up
                            result = {
                                "tool": tool,
                                "phase": phase,
                                "round": round_,
                                "seconds": seconds,
                                "connections": link.stats.connections,
                                "requests": read_traffic(source.log_path, log_start).requests,
                                "mib_down": link.stats.bytes_down / 2**20,
                                "digests_match": manifest_digests(destination.host, repos, TAG) == expected,
                            }
                            results.append(result)
                            print(
                                f"round {round_} {tool:<15} {phase}: {seconds:6.2f}s, "
                                f"{result['connections']} connections, {result['requests']} requests, "
                                f"{result['mib_down']:.1f} MiB down, "
                                f"digests {'ok' if result['digests_match'] else 'DIFFER'}",
                                flush=True,
                            )
                    shutil.rmtree(directory, ignore_errors=True)
    print(
        f"\nlink: {args.rtt_ms:g} ms round trip, {args.mbit:g} Mbit/s shared downlink, TLS; "
        f"{len(repos)} images, {unique_bytes / 2**20:.0f} MiB unique"
    )
    print(f"link limit (unique bytes / bandwidth): {link_limit:.2f}s; warm floor: {warm_floor:.2f}s")
    summary: dict[str, object] = {"link_limit_s": link_limit, "warm_floor_s": warm_floor, "results": results}
    for tool in tools:
        for phase, limit in (("cold", link_limit), ("warm", warm_floor)):
            runs = [r for r in results if r["tool"] == tool and r["phase"] == phase]
            seconds = statistics.median(float(r["seconds"]) for r in runs)  # type: ignore[arg-type]
            connections = statistics.median(int(r["connections"]) for r in runs)  # type: ignore[call-overload]
            requests = statistics.median(int(r["requests"]) for r in runs)  # type: ignore[call-overload]
            print(
                f"{tool:<15} {phase}: median {seconds:6.2f}s = {seconds / limit:5.2f}x the "
                f"{'link limit' if phase == 'cold' else 'warm floor'}; {connections:g} connections, "
                f"{requests:g} requests"
            )
            summary[f"{tool}_{phase}_median_s"] = seconds
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    ok = all(r["digests_match"] for r in results)
    print("checks:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    stop_cleanly_on_sigterm()
    sys.exit(main())
