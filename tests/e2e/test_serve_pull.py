"""Images copied into the tree by the copy engine come back out of ``imageprep serve``, Apache and nginx.

The source is Debian's docker-registry seeded with generated images (OCI, Docker schema 2 and a
two-architecture OCI index); the engine copies them into a tree; skopeo, podman and buildah pull
them back from each server, and the manifest digest must be the source's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imageprep.imageserve import ImageServeTree
from imageprep.registry import RegistrySession
from imageprep.transfer import CopyJob, Outcome, copy_images
from tests.e2e.conftest import Run
from tests.support.imagegen import make_image, make_layer
from tests.support.imageserve_check import verify_tree
from tests.support.imageserve_images import GeneratedIndex, seed_docker_image, seed_index
from tests.support.imageserve_servers import (
    apache_available,
    apache_serving,
    imageprep_serving,
    nginx_available,
    nginx_serving,
    remote_digest,
    skopeo,
    world_readable_directory,
)
from tests.support.registry_server import RunningRegistry, plain_registry_server, registry_available
from tests.support.seeding import seed_image

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not registry_available(), reason="needs docker-registry and skopeo"),
]
BASE = make_layer({"usr/share/base": b"base layer of every image " * 40}, oci=True)
IMAGES = ["tripleo/nova-api", "tripleo/keystone", "tripleo/multi"]
TAG = "current"
PULL_TIMEOUT = 120


def _image(name: str, architecture: str = "amd64"):  # type: ignore[no-untyped-def]
    own = make_layer({f"etc/{name}": f"{name} {architecture}".encode()}, oci=True)
    return make_image({"name": name}, [BASE, own], oci=True, architecture=architecture)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with plain_registry_server(tmp_path_factory.mktemp("serve-source")) as registry:
        seed_image(registry, "tripleo/nova-api", TAG, _image("nova-api"))
        seed_docker_image(registry, "tripleo/keystone", TAG, _image("keystone"))
        index = GeneratedIndex({arch: _image("multi", arch) for arch in ("amd64", "arm64")})
        seed_index(registry, "tripleo/multi", TAG, index)
        yield registry


@pytest.fixture(scope="module")
def source_digests(source: RunningRegistry) -> dict[str, str]:
    return {name: remote_digest(source.host, name, TAG) for name in IMAGES}


@pytest.fixture(scope="module")
def root(source: RunningRegistry) -> Iterator[Path]:
    """A tree the engine filled from the registry, readable by web server workers."""
    with world_readable_directory("imageprep-serve-tree-") as directory:
        tree = ImageServeTree(directory / "image-serve")
        with RegistrySession() as session:
            client = session.client(source.host)
            jobs = [
                CopyJob(client, name, TAG, tree, name, TAG, all_architectures=name.endswith("multi"))
                for name in IMAGES
            ]
            report = copy_images(jobs)
        assert [r.outcome for r in report.images] == [Outcome.COPIED] * 3, [r.error for r in report.images]
        assert verify_tree(tree.root) == []
        yield tree.root


@pytest.fixture(scope="module")
def served(root: Path) -> Iterator[str]:
    with imageprep_serving(root) as server:
        yield server.host


def _copy_digest(host: str, name: str, *options: str) -> str:
    """skopeo copy out of ``host`` into a dir: and the digest of the manifest it wrote."""
    with tempfile.TemporaryDirectory(prefix="imageprep-pulled-") as target:
        skopeo("copy", "--src-tls-verify=false", *options, f"docker://{host}/{name}:{TAG}", f"dir:{target}")
        return "sha256:" + hashlib.sha256((Path(target) / "manifest.json").read_bytes()).hexdigest()


def test_skopeo_sees_the_source_digests(served: str, source_digests: dict[str, str]) -> None:
    for name in IMAGES:
        assert remote_digest(served, name, TAG) == source_digests[name], name


def test_skopeo_copies_every_image_out_with_the_source_digest(
    served: str, source_digests: dict[str, str]
) -> None:
    for name in IMAGES:
        options = ("--all",) if name.endswith("multi") else ()
        assert _copy_digest(served, name, *options) == source_digests[name], name


def _container_tool(tool: str, storage: Path, *args: str) -> str:
    command = [
        tool,
        "--root",
        str(storage / "root"),
        "--runroot",
        str(storage / "run"),
        "--storage-driver",
        "vfs",
    ]
    if tool == "podman":
        command += [
            "--tmpdir",
            str(storage / "tmp"),
            "--events-backend",
            "none",
            "--cgroup-manager",
            "cgroupfs",
        ]
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(storage),
        "XDG_RUNTIME_DIR": str(storage / "xdg"),
        "CONTAINERS_STORAGE_CONF": str(storage / "storage.conf"),
    }
    result = subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=PULL_TIMEOUT, env=env, check=False
    )
    assert result.returncode == 0, f"{tool} {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


@pytest.mark.parametrize(("tool", "name"), [("podman", "tripleo/multi"), ("buildah", "tripleo/keystone")])
def test_podman_and_buildah_pull(tool: str, name: str, served: str, source_digests: dict[str, str]) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    # podman refuses a run root longer than 50 characters: pytest's tmp_path is too deep.
    with tempfile.TemporaryDirectory(prefix="ipp-", dir="/tmp", ignore_cleanup_errors=True) as short:
        storage = Path(short)
        (storage / "xdg").mkdir(mode=0o700)
        (storage / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\nrunroot = "{storage / "run"}"\ngraphroot = "{storage / "root"}"\n'
        )
        reference = f"{served}/{name}:{TAG}"
        _container_tool(tool, storage, "pull", "--tls-verify=false", reference)
        key = "{{.Digest}}" if tool == "podman" else "{{.FromImageDigest}}"
        command = ("image", "inspect") if tool == "podman" else ("inspect", "--type", "image")
        assert _container_tool(tool, storage, *command, "--format", key, reference) == source_digests[name]


@pytest.mark.skipif(not apache_available(), reason="needs apache2 with mod_negotiation")
def test_apache_serves_the_tree_with_the_printed_config(
    root: Path, source_digests: dict[str, str], tmp_path: Path
) -> None:
    with apache_serving(root, tmp_path / "apache") as host:
        for name in IMAGES:
            assert remote_digest(host, name, TAG) == source_digests[name], name
        assert _copy_digest(host, "tripleo/nova-api") == source_digests["tripleo/nova-api"]
        assert _copy_digest(host, "tripleo/multi", "--all") == source_digests["tripleo/multi"]
        _refuses_writes_and_hidden_files(host, root)


@pytest.mark.skipif(not nginx_available(), reason="needs nginx")
def test_nginx_serves_the_tree_with_the_printed_config(
    root: Path, source_digests: dict[str, str], tmp_path: Path
) -> None:
    with nginx_serving(root, tmp_path / "nginx") as host:
        for name in IMAGES:
            assert remote_digest(host, name, TAG) == source_digests[name], name
        assert _copy_digest(host, "tripleo/keystone") == source_digests["tripleo/keystone"]
        assert _copy_digest(host, "tripleo/multi", "--all") == source_digests["tripleo/multi"]
        _refuses_writes_and_hidden_files(host, root)


def _refuses_writes_and_hidden_files(host: str, root: Path) -> None:
    import http.client

    manifests = root / "v2/tripleo/nova-api/manifests"
    digest = next(p.name for p in manifests.iterdir() if p.name.startswith("sha256:"))
    (root / "v2/tripleo/nova-api/blobs/.tmp-1-partial").write_bytes(b"half a blob")
    try:
        probes = [
            ("POST", "/v2/tripleo/nova-api/blobs/uploads/", 405),
            ("PUT", f"/v2/tripleo/nova-api/manifests/{TAG}", 405),
            ("DELETE", f"/v2/tripleo/nova-api/manifests/{digest}", 405),
            ("GET", "/v2/tripleo/nova-api/blobs/.tmp-1-partial", 404),
            ("GET", f"/v2/tripleo/nova-api/manifests/{digest}/.htaccess", 404),
            ("GET", f"/v2/tripleo/nova-api/manifests/{digest}/index.json", 404),
            ("GET", f"/v2/tripleo/nova-api/manifests/{TAG}.type-map", 404),
            ("GET", "/.imageprep/lock", 404),
            ("GET", "/v2/%2e%2e/%2e%2e/etc/passwd", (400, 404)),
            ("GET", "/v2/tripleo/nova-api/manifests/missing", 404),
        ]
        for method, path, status in probes:
            connection = http.client.HTTPConnection(host, timeout=10)
            try:
                connection.request(method, path)
                response = connection.getresponse()
                body = response.read()
            finally:
                connection.close()
            assert response.status in (status if isinstance(status, tuple) else (status,)), (
                path,
                response.status,
            )
            assert b"half a blob" not in body and b"Header set" not in body
        blob = json.loads((manifests / digest / "index.json").read_bytes())["layers"][0]["digest"]
        connection = http.client.HTTPConnection(host, timeout=10)
        try:
            connection.request("GET", f"/v2/tripleo/nova-api/blobs/{blob}", headers={"Range": "bytes=0-9"})
            response = connection.getresponse()
            assert (response.status, len(response.read())) == (206, 10)
            assert response.getheader("Content-Type") == "application/octet-stream"
            assert response.getheader("Docker-Content-Digest") == blob
        finally:
            connection.close()
    finally:
        (root / "v2/tripleo/nova-api/blobs/.tmp-1-partial").unlink()


@contextlib.contextmanager
def ctrl_c_as_at_a_terminal() -> Iterator[None]:
    """Programs started inside get SIGINT at its default, as a command typed at a terminal does.

    A test run started as a script's background job inherits SIGINT ignored, and Python keeps an
    ignored SIGINT ignored: its Ctrl-C would then never reach the server at all.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_cleanly_on_signals(root: Path, sig: signal.Signals) -> None:
    with ctrl_c_as_at_a_terminal(), imageprep_serving(root) as server:
        server.process.send_signal(sig)
        assert server.process.wait(timeout=15) == 0
        server.stop()
    assert b"Traceback" not in server.stderr


def test_requests_are_logged_only_at_verbose(root: Path) -> None:
    with imageprep_serving(root) as quiet:
        remote_digest(quiet.host, "tripleo/nova-api", TAG)
    with imageprep_serving(root, "-v") as loud:
        remote_digest(loud.host, "tripleo/nova-api", TAG)
    assert b"GET /v2/tripleo/nova-api/manifests/current" not in quiet.stderr
    assert b"GET /v2/tripleo/nova-api/manifests/current" in loud.stderr


def test_serve_errors_are_one_line_with_an_exit_code(imageprep: Run, tmp_path: Path) -> None:
    missing = imageprep("serve", "--root", str(tmp_path / "missing"), "--listen", "127.0.0.1:0")
    assert missing.returncode == 6
    assert "image-serve root" in missing.stderr and "Traceback" not in missing.stderr
    bad = imageprep("serve", "--root", str(tmp_path), "--listen", "nowhere")
    assert bad.returncode == 2
    assert "--listen" in bad.stderr


def test_print_config_uses_the_environment_root(imageprep: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEPREP_IMAGE_SERVE_ROOT", "/srv/registry-tree")
    printed = imageprep("serve", "--print-config", "nginx", "--listen", "127.0.0.1:8787", check=True)
    assert 'root "/srv/registry-tree";' in printed.stdout
    assert "listen 127.0.0.1:8787;" in printed.stdout


def _workers_of(pid: int) -> set[int]:
    return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def test_workers_share_the_port_and_one_that_dies_is_replaced(
    root: Path, source_digests: dict[str, str]
) -> None:
    with imageprep_serving(root, serve_options=("--workers", "2")) as server:
        workers = _workers_of(server.process.pid)
        assert len(workers) == 2
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        replaced: set[int] = set()
        for _ in range(100):  # bounded: the parent restarts it within moments
            replaced = _workers_of(server.process.pid)
            if len(replaced) == 2 and victim not in replaced:
                break
            time.sleep(0.1)
        assert len(replaced) == 2 and victim not in replaced
        for name in IMAGES:
            assert remote_digest(server.host, name, TAG) == source_digests[name], name
        assert server.stop() == 0
    assert b"Traceback" not in server.stderr
    assert b"a server worker stopped (killed by signal 9)" in server.stderr
    for pid in replaced:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def _processes_serving(root: Path) -> set[int]:
    """Every process whose command line serves ``root`` (workers included, orphaned or not)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"serve" in command and str(root).encode() in command:
                found.add(int(entry.name))
    return found


def _wait_until_none_serve(root: Path) -> set[int]:
    left = _processes_serving(root)
    for _ in range(100):  # bounded: a worker notices a gone parent within a second
        if not left:
            break
        time.sleep(0.1)
        left = _processes_serving(root)
    return left


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_no_worker_outlives_its_server(root: Path, tmp_path: Path, sig: signal.Signals) -> None:
    # Its own copy of the tree, so that the processes found are this server's only.
    own = tmp_path / "own-tree"
    shutil.copytree(root, own, symlinks=True)
    command = [sys.executable, "-m", "imageprep.cli.app", "serve", "--root", str(own)]
    process = subprocess.Popen(
        [*command, "--listen", "127.0.0.1:0", "--workers", "8"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        assert b"Serving" in process.stdout.readline()
        if sig == signal.SIGKILL:  # the workers are up, and then their parent is gone at once
            for _ in range(100):
                if len(_workers_of(process.pid)) == 8:
                    break
                time.sleep(0.1)
            assert len(_workers_of(process.pid)) == 8
        process.send_signal(sig)  # a SIGTERM lands while the workers are still being forked
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
    assert _wait_until_none_serve(own) == set()
