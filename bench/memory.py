"""Peak memory copying one 2 GiB layer: registry to registry, and into the image-serve tree; not a test.

``python bench/memory.py [--gib 2]`` streams a layer of that size (deterministic bytes, never held
in memory) into a source registry, then runs ``imageprep push`` twice as an operator would, into
a second registry and into the local registry's tree, and reports each run's peak resident
memory (the kernel's accounting of the finished process) beside the layer's size. Both copies are
checked digest for digest.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.registry_server import RegistryServer  # noqa: E402
from bench.seed import manifest_digests  # noqa: E402
from bench.stopping import stop_cleanly_on_sigterm  # noqa: E402

CHUNK = 1024 * 1024
REPOSITORY = "tripleomaster/centos-binary-big"
TAG = "current-tripleo"


def _layer(size: int) -> Iterator[bytes]:
    """The same incompressible bytes every time, a MiB at a time."""
    draw = random.Random(f"imageprep-memory-{size}")
    left = size
    while left:
        piece = draw.randbytes(min(CHUNK, left))
        left -= len(piece)
        yield piece


def _put(host: str, path: str, body: bytes | Iterator[bytes], length: int, content_type: str) -> int:
    connection = http.client.HTTPConnection(host, timeout=600)
    try:
        headers = {"Content-Type": content_type, "Content-Length": str(length)}
        connection.request("PUT", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _push_blob(host: str, digest: str, size: int, chunks: Iterator[bytes]) -> None:
    connection = http.client.HTTPConnection(host, timeout=60)
    connection.request("POST", f"/v2/{REPOSITORY}/blobs/uploads/")
    response = connection.getresponse()
    response.read()
    location = urllib.parse.urlsplit(response.getheader("Location") or "")
    connection.close()
    query = f"{location.query}&" if location.query else ""
    path = f"{location.path}?{query}digest={urllib.parse.quote(digest)}"
    status = _put(host, path, chunks, size, "application/octet-stream")
    if status != 201:
        raise RuntimeError(f"blob upload answered HTTP {status}")


def seed(host: str, size: int) -> str:
    """Push a one-layer image whose layer is ``size`` bytes; its manifest digest."""
    hasher = hashlib.sha256()
    for piece in _layer(size):
        hasher.update(piece)
    layer = "sha256:" + hasher.hexdigest()
    _push_blob(host, layer, size, _layer(size))
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    _push_blob(host, config_digest, len(config), iter([config]))
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": size}
            ],
        }
    ).encode()
    status = _put(
        host,
        f"/v2/{REPOSITORY}/manifests/{TAG}",
        manifest,
        len(manifest),
        "application/vnd.oci.image.manifest.v1+json",
    )
    if status != 201:
        raise RuntimeError(f"manifest answered HTTP {status}")
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


# Run in a process of its own, so that the peak it reports is the push's alone.
_MEASURED = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True)\n"
    "sys.stderr.write(done.stderr.decode(errors='replace')[-2000:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(done.returncode)\n"
)


def run_push(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """``imageprep push ARGS``: its wall seconds and peak resident MiB (of that process alone)."""
    command = [
        sys.executable,
        "-c",
        _MEASURED,
        str(Path(sys.executable).with_name("imageprep")),
        "push",
        *args,
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"imageprep push failed: {done.stderr}")
    return seconds, int(done.stdout.split()[-1]) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--gib", type=float, default=2.0, help="layer size in GiB (default 2)")
    args = parser.parse_args(argv)
    size = int(args.gib * 2**30)
    with tempfile.TemporaryDirectory(prefix="imageprep-memory-") as scratch:
        work = Path(scratch)
        env = {**os.environ, "HOME": str(work), "TMPDIR": str(work)}
        with RegistryServer(work / "source") as source, RegistryServer(work / "destination") as destination:
            started = time.perf_counter()
            digest = seed(source.host, size)
            print(f"seeded a {size / 2**30:g} GiB layer in {time.perf_counter() - started:.0f}s", flush=True)
            image = f"{source.host}/{REPOSITORY}:{TAG}"
            seconds, peak = run_push([image, "--registry-url", destination.host], env)
            same = manifest_digests(destination.host, [REPOSITORY], TAG)[REPOSITORY] == digest
            verdict = "ok" if same else "DIFFERS"
            print(f"registry to registry: {seconds:.0f}s, peak {peak:.0f} MiB, digest {verdict}")
            tree = work / "tree"
            seconds, peak_tree = run_push([image, "--image-serve-root", str(tree)], env)
            stored = (tree / "v2" / REPOSITORY / "blobs").is_dir()
            verdict = "ok" if stored else "MISSING"
            print(f"into the image-serve tree: {seconds:.0f}s, peak {peak_tree:.0f} MiB, stored {verdict}")
    return 0 if same and stored else 1


if __name__ == "__main__":
    stop_cleanly_on_sigterm()
    sys.exit(main())
