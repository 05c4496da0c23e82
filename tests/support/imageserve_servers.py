"""Serve an image-serve tree for tests: ``imageprep serve``, Debian's apache2 and nginx, on loopback.

Each context manager starts one real server on a free 127.0.0.1 port, waits until ``GET /v2/``
answers, yields ``HOST:PORT`` and always stops the process. Apache and nginx run with the
configuration ``imageprep serve --print-config`` printed, included from a minimal main
configuration written here. Apache refuses to serve as root, so as root both run their workers as
``nobody`` (the tree must then sit in a world-readable directory).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.support.registry_server import free_port
from tests.support.seeding import skopeo

STARTUP_TIMEOUT = 20.0
APACHE_MODULES = Path("/usr/lib/apache2/modules")
APACHE = "/usr/sbin/apache2"
NGINX = "/usr/sbin/nginx"
SKOPEO_TIMEOUT = 120


def apache_available() -> bool:
    return Path(APACHE).exists() and (APACHE_MODULES / "mod_negotiation.so").exists()


def nginx_available() -> bool:
    return Path(NGINX).exists()


def imageprep_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "imageprep.cli.app", *args]


def print_config(kind: str, root: Path, host: str) -> str:
    result = subprocess.run(
        imageprep_command("serve", "--print-config", kind, "--root", str(root), "--listen", host),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


@contextlib.contextmanager
def world_readable_directory(prefix: str) -> Iterator[Path]:
    """A temporary directory web server workers (``nobody``) can read."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _wait_ready(host: str, process: subprocess.Popen[bytes], log: Path | None = None) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            detail = log.read_text(errors="replace") if log and log.exists() else ""
            raise AssertionError(f"server exited with {process.returncode} before answering: {detail}")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(f"http://{host}/v2/", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"server on {host} did not answer within {STARTUP_TIMEOUT}s")


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
    return process.returncode


class ServeProcess:
    """A running ``imageprep serve``."""

    def __init__(self, process: subprocess.Popen[bytes], host: str) -> None:
        self.process = process
        self.host = host
        self.stderr = b""

    def stop(self) -> int:
        """SIGTERM, wait; the exit status."""
        code = _stop(self.process)
        if self.process.stderr is not None and not self.process.stderr.closed:
            self.stderr = self.process.stderr.read()
            self.process.stderr.close()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


@contextlib.contextmanager
def imageprep_serving(root: Path, *extra: str) -> Iterator[ServeProcess]:
    """``imageprep serve --root ROOT --listen 127.0.0.1:0``; the bound address is read from its stdout."""
    process = subprocess.Popen(
        imageprep_command(*extra, "serve", "--root", str(root), "--listen", "127.0.0.1:0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    served = ServeProcess(process, "")
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        match = re.search(r"http://(127\.0\.0\.1:\d+)/", line)
        if match is None:
            _stop(process)
            raise AssertionError(f"imageprep serve did not start: {line!r} {process.stderr.read()!r}")  # type: ignore[union-attr]
        served.host = match.group(1)
        _wait_ready(served.host, process)
        yield served
    finally:
        served.stop()


def _apache_main_config(workdir: Path, vhost: Path) -> str:
    modules = ["mpm_event", "authz_core", "mime", "rewrite", "headers", "negotiation"]
    loads = "\n".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so" for m in modules)
    user = "User nobody\nGroup nogroup\n" if os.geteuid() == 0 else ""
    return f"""\
ServerRoot "{workdir}"
PidFile "{workdir}/httpd.pid"
Mutex file:{workdir} default
DefaultRuntimeDir "{workdir}"
{loads}
ServerName localhost
{user}ErrorLog "{workdir}/error.log"
LogLevel warn
LogFormat "%h %l %u %t \\"%r\\" %>s %b" combined
TypesConfig /etc/mime.types
Define APACHE_LOG_DIR {workdir}
Include "{vhost}"
"""


@contextlib.contextmanager
def apache_serving(root: Path, workdir: Path) -> Iterator[str]:
    """Debian's apache2 (``-X``, one process) with the printed vhost for ``root``; yields HOST:PORT."""
    host = f"127.0.0.1:{free_port()}"
    workdir.mkdir(parents=True, exist_ok=True)
    vhost = workdir / "image-serve.conf"
    vhost.write_text(print_config("apache", root, host))
    main = workdir / "httpd.conf"
    main.write_text(_apache_main_config(workdir, vhost))
    log = (workdir / "stderr.log").open("wb")
    process = subprocess.Popen(
        [APACHE, "-X", "-f", str(main)],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env={"PATH": "/usr/sbin:/usr/bin:/bin", "LANG": "C"},
    )
    try:
        _wait_ready(host, process, workdir / "stderr.log")
        yield host
    finally:
        _stop(process)
        log.close()


@contextlib.contextmanager
def nginx_serving(root: Path, workdir: Path) -> Iterator[str]:
    """Debian's nginx (``daemon off``) with the printed server block for ``root``; yields HOST:PORT."""
    host = f"127.0.0.1:{free_port()}"
    workdir.mkdir(parents=True, exist_ok=True)
    server = workdir / "image-serve.conf"
    server.write_text(print_config("nginx", root, host))
    user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
    temp_paths = "\n".join(
        f"    {kind}_temp_path {workdir}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (workdir / "nginx.conf").write_text(
        f"""\
{user}pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    access_log {workdir}/access.log;
{temp_paths}
    include {server};
}}
"""
    )
    log = (workdir / "stderr.log").open("wb")
    process = subprocess.Popen(
        [NGINX, "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        _wait_ready(host, process, workdir / "stderr.log")
        yield host
    finally:
        _stop(process, signal.SIGQUIT)
        log.close()


def remote_digest(host: str, repository: str, tag: str) -> str:
    """The manifest digest ``skopeo inspect`` reports for ``host/repository:tag`` (the tag's own)."""
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{host}/{repository}:{tag}")
    import hashlib

    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def inspect(host: str, repository: str, tag: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(
        skopeo("inspect", "--tls-verify=false", f"docker://{host}/{repository}:{tag}")
    )
    return result
