"""Hostile input is refused: one clear error line, no traceback, bounded memory, nothing written.

Environment files with path tricks, NUL, absurd lengths, YAML bombs, Python-object tags, endless
or huge content; and a malicious registry whose manifests are huge, claim absurd sizes, use digests
we cannot verify (or that are paths), or whose labels would make a tag out of a path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from imageprep.model import mediatypes
from imageprep.model.manifest import sha256_digest

pytestmark = pytest.mark.integration
PREVIOUS = "# the previous output\n"
MAX_RSS_KIB = 200 * 1024  # the CLI needs well under 100 MiB; an unbounded read of the inputs would not
UNREACHABLE = "127.0.0.1:9"  # discard port: nothing listens, and nothing may get that far


# The CLI is started by this small program, which reports the CLI's peak resident memory: a
# process started straight from pytest would count pytest's own peak as its own (Linux keeps a
# process's peak across exec, and a vfork child shares its parent's memory until then), which
# with every suite loaded in one pytest is above the bound by itself.
_MEASURE = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as report:
    report.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(tmp_path: Path, *args: str) -> tuple[int, str, int]:
    """Run the CLI in ``tmp_path``; exit code, stderr and peak resident memory (KiB) of that process."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}
    peak = tmp_path / "peak-rss.txt"
    with open(tmp_path / "stderr.txt", "w+b") as errors:
        process = subprocess.Popen(
            [sys.executable, "-c", _MEASURE, str(peak), sys.executable, "-m", "imageprep.cli.app", *args],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            stdin=subprocess.DEVNULL,
            env=environment,
            start_new_session=True,
        )
        watchdog = threading.Timer(120, os.killpg, (process.pid, signal.SIGKILL))
        watchdog.start()
        try:
            code = process.wait()
        finally:
            watchdog.cancel()
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace")
    # No report: the CLI never finished (killed by the watchdog), so there is no peak to judge.
    assert peak.exists(), f"the CLI did not finish (exit {code}): {stderr}"
    return code, stderr, int(peak.read_text())


def assert_refused(tmp_path: Path, code: int, stderr: str, rss: int, expected_code: int, text: str) -> None:
    assert code == expected_code, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert text in errors[0], stderr
    assert rss < MAX_RSS_KIB, f"peak memory {rss} KiB"
    assert (tmp_path / "out.yaml").read_text() == PREVIOUS


# --- environment files ------------------------------------------------------------------------------


def _entry(**overrides: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "push_destination": UNREACHABLE,
        "includes": ["nova-api"],
        "set": {"namespace": f"{UNREACHABLE}/tripleomaster", "name_prefix": "centos-binary-", "tag": "t"},
    }
    sets = {key[4:]: value for key, value in overrides.items() if key.startswith("set_")}
    entry["set"] = {**entry["set"], **sets}  # type: ignore[dict-item]
    entry.update({key: value for key, value in overrides.items() if not key.startswith("set_")})
    return entry


def _document(entry: dict[str, object]) -> str:
    return yaml.safe_dump({"parameter_defaults": {"ContainerImagePrepare": [entry]}})


def _bomb(levels: int = 9) -> str:
    """A "billion laughs": nine mappings of nine aliases each, 9**9 leaves once expanded."""
    lines = ["  L0: &L0 {a: lol, b: lol, c: lol, d: lol, e: lol, f: lol, g: lol, h: lol, i: lol}"]
    for level in range(1, levels + 1):
        keys = ", ".join(f"{key}: *L{level - 1}" for key in "abcdefghi")
        lines.append(f"  L{level}: &L{level} {{{keys}}}")
    return "parameter_defaults:\n" + "\n".join(lines) + f"\n  Bomb: *L{levels}\n"


ENVIRONMENTS: dict[str, tuple[str, str]] = {
    # name: (file content, what the one error line says)
    "namespace with ..": (_document(_entry(set_namespace=f"{UNREACHABLE}/../../etc")), "invalid repository"),
    "absolute namespace": (_document(_entry(set_namespace="/etc/passwd")), "invalid repository"),
    "tag with ..": (_document(_entry(set_tag="../../x")), "invalid image reference"),
    "name prefix with ../": (_document(_entry(set_name_prefix="../")), "invalid repository"),
    "NUL in a tag": (_document(_entry(set_tag="current\x00tripleo")), "invalid tag"),
    "very long name": (_document(_entry(set_name_prefix="a" * 100_000)), "invalid image reference"),
    "very long tag": (_document(_entry(set_tag="t" * 300)), "invalid"),
    "push_destination with ..": (_document(_entry(push_destination="../../tmp/x")), "not a registry"),
    "absolute push_destination": (_document(_entry(push_destination="/tmp/x")), "not a registry"),
    "python object tag": (
        "parameter_defaults:\n  X: !!python/object/apply:os.system ['touch pwned']\n",
        "could not determine a constructor",
    ),
    "YAML bomb": (_bomb(), "expands to more than"),
    "recursive alias": ("parameter_defaults:\n  X: &r {a: *r}\n", "recursive alias"),
    "deep nesting": ("parameter_defaults:\n  X: " + "[" * 20_000 + "]" * 20_000 + "\n", "nested too deeply"),
    "huge file": ("parameter_defaults:\n" + "  P: " + "v" * (9 * 1024 * 1024) + "\n", "larger than 8 MiB"),
}


@pytest.mark.parametrize("case", list(ENVIRONMENTS))
def test_hostile_environment_file_is_refused(case: str, tmp_path: Path) -> None:
    content, message = ENVIRONMENTS[case]
    (tmp_path / "env.yaml").write_text(content)
    (tmp_path / "out.yaml").write_text(PREVIOUS)
    code, stderr, rss = run_measured(tmp_path, "prepare", "-e", "env.yaml", "--output-env-file", "out.yaml")
    assert_refused(tmp_path, code, stderr, rss, 2, message)
    assert not (tmp_path / "pwned").exists()


def test_endless_environment_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out.yaml").write_text(PREVIOUS)
    code, stderr, rss = run_measured(tmp_path, "prepare", "-e", "/dev/zero", "--output-env-file", "out.yaml")
    assert_refused(tmp_path, code, stderr, rss, 2, "larger than 8 MiB")


# --- a malicious registry -----------------------------------------------------------------------------

CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"v": "../../evil"}}})
CONFIG_BYTES = CONFIG.encode()


def _manifest(layer: dict[str, object]) -> bytes:
    config = {"mediaType": mediatypes.OCI_CONFIG, "digest": sha256_digest(CONFIG_BYTES), "size": len(CONFIG)}
    document = {"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST, "config": config, "layers": [layer]}
    return json.dumps(document).encode()


def _layer(digest: str, size: int) -> dict[str, object]:
    return {"mediaType": mediatypes.OCI_LAYER_GZIP, "digest": digest, "size": size}


GOOD_DIGEST = "sha256:" + "ab" * 32
MANIFESTS: dict[str, tuple[bytes | None, str]] = {
    # name: (manifest served for the tag, None for an endless one; what the error says)
    "huge manifest": (None, "larger than 4194304 bytes"),
    "absurd layer size": (_manifest(_layer(GOOD_DIGEST, 2**62)), "claims a size"),
    "negative layer size": (_manifest(_layer(GOOD_DIGEST, -1)), "claims a size"),
    "md5 digest": (_manifest(_layer("md5:" + "ab" * 16, 10)), "not a sha256/sha384/sha512 digest"),
    "digest that is a path": (_manifest(_layer("sha256:../../../v2/x/manifests/y", 10)), "not a sha256"),
    "label that is a path": (_manifest(_layer(GOOD_DIGEST, 10)), "is not a valid tag"),
}


@contextmanager
def malicious_registry(manifest: bytes | None) -> Iterator[str]:
    """A registry that serves ``manifest`` for every tag (or an endless one) and the config above."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/v2/":
                self._send(200, b"{}")
            elif "/tags/list" in self.path:
                self._send(200, json.dumps({"name": "x", "tags": ["t", "../../evil"]}).encode())
            elif "/blobs/" in self.path:
                self._send(200, CONFIG_BYTES, "application/octet-stream")
            elif manifest is not None:
                self._send(200, manifest, mediatypes.OCI_MANIFEST)
            else:
                self.send_response(200)
                self.send_header("Content-Type", mediatypes.OCI_MANIFEST)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b" " * 65536
                try:
                    for _ in range(4096):  # 256 MiB at most, if nobody stops reading
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    return

        do_HEAD = do_GET

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("case", list(MANIFESTS))
def test_malicious_registry_is_refused(case: str, tmp_path: Path) -> None:
    manifest, message = MANIFESTS[case]
    with malicious_registry(manifest) as host:
        entry = _entry(set_namespace=f"{host}/tripleomaster")
        if case == "label that is a path":
            entry["tag_from_label"] = "v"
        (tmp_path / "env.yaml").write_text(_document(entry))
        (tmp_path / "out.yaml").write_text(PREVIOUS)
        args = ("prepare", "-e", "env.yaml", "--output-env-file", "out.yaml")
        code, stderr, rss = run_measured(tmp_path, *args)
    expected_code = 4 if case == "label that is a path" else 5
    assert_refused(tmp_path, code, stderr, rss, expected_code, message)
