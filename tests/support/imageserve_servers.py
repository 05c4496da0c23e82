"""Serve an image-serve tree for tests: ``imageprep serve``, Debian's apache2 and nginx, on loopback.

Each context manager starts one real server on a free 127.0.0.1 port, waits until ``GET /v2/``
answers, yields ``HOST:PORT`` and always stops the process. Apache and nginx run with the
configuration ``imageprep serve --print-config`` printed, included from a minimal main
configuration written here. Apache refuses to serve as root, so as root both run their workers as
``nobody`` (the tree must then sit in a world-readable directory).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

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


@dataclass(frozen=True)
class TlsFiles:
    """A server certificate for 127.0.0.1 from a test CA, as files."""

    certificate: Path
    key: Path
    ca: Path

    @property
    def cert_dir(self) -> Path:
        """A directory holding only the CA as ``ca.crt``, as skopeo's ``--cert-dir`` wants it."""
        return self.ca.parent

    def options(self) -> list[str]:
        return ["--tls-cert", str(self.certificate), "--tls-key", str(self.key)]

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def make_tls_files(directory: Path) -> TlsFiles:
    """A trustme CA and a certificate for 127.0.0.1 and localhost, readable by web server workers."""
    import trustme

    (directory / "ca").mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(directory / "server.pem", directory / "server.key", directory / "ca" / "ca.crt")
    files.certificate.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(files.key))
    ca.cert_pem.write_to_path(str(files.ca))
    for path in (directory, directory / "ca", files.certificate, files.key, files.ca):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return files


def print_config(kind: str, root: Path, host: str, tls: TlsFiles | None = None) -> str:
    result = subprocess.run(
        imageprep_command(
            "serve",
            "--print-config",
            kind,
            "--root",
            str(root),
            "--listen",
            host,
            *(tls.options() if tls else []),
        ),
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


def _wait_ready(
    host: str, process: subprocess.Popen[bytes], log: Path | None = None, tls: TlsFiles | None = None
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    url = f"{'https' if tls else 'http'}://{host}/v2/"
    context = tls.client_context() if tls else None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            detail = log.read_text(errors="replace") if log and log.exists() else ""
            raise AssertionError(f"server exited with {process.returncode} before answering: {detail}")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(url, timeout=2, context=context) as response,
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
def imageprep_serving(
    root: Path, *extra: str, serve_options: tuple[str, ...] = (), tls: TlsFiles | None = None
) -> Iterator[ServeProcess]:
    """``imageprep [EXTRA] serve --root ROOT --listen 127.0.0.1:0 [OPTIONS]``; the address from its stdout."""
    options = [*serve_options, *(tls.options() if tls else [])]
    process = subprocess.Popen(
        imageprep_command(*extra, "serve", "--root", str(root), "--listen", "127.0.0.1:0", *options),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    served = ServeProcess(process, "")
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        match = re.search(r"https?://(127\.0\.0\.1:\d+)/", line)
        if match is None:
            _stop(process)
            raise AssertionError(f"imageprep serve did not start: {line!r} {process.stderr.read()!r}")  # type: ignore[union-attr]
        served.host = match.group(1)
        _wait_ready(served.host, process, tls=tls)
        yield served
    finally:
        served.stop()


# What Debian's apache2.conf and mods-available/mpm_event.conf set, for a production-like Apache.
APACHE_DEBIAN_DEFAULTS = """\
Timeout 300
KeepAlive On
MaxKeepAliveRequests 100
KeepAliveTimeout 5
StartServers 2
MinSpareThreads 25
MaxSpareThreads 75
ThreadLimit 64
ThreadsPerChild 25
MaxRequestWorkers 150
MaxConnectionsPerChild 0
"""


def _apache_main_config(workdir: Path, vhost: Path, extra: str, tls: bool) -> str:
    modules = ["mpm_event", "authz_core", "mime", "rewrite", "headers", "negotiation"]
    modules += ["socache_shmcb", "ssl"] if tls else []
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
{extra}Include "{vhost}"
"""


@contextlib.contextmanager
def apache_serving(
    root: Path, workdir: Path, *, production: bool = False, tls: TlsFiles | None = None
) -> Iterator[str]:
    """Debian's apache2 with the printed vhost for ``root``; yields HOST:PORT.

    By default one process (``-X``), quick to start and stop; ``production=True`` runs it as a
    Debian install does (its own processes and Debian's event-MPM and keep-alive settings).
    """
    host = f"127.0.0.1:{free_port()}"
    workdir.mkdir(parents=True, exist_ok=True)
    vhost = workdir / "image-serve.conf"
    vhost.write_text(print_config("apache", root, host, tls))
    main = workdir / "httpd.conf"
    settings = APACHE_DEBIAN_DEFAULTS if production else ""
    main.write_text(_apache_main_config(workdir, vhost, settings, tls is not None))
    log = (workdir / "stderr.log").open("wb")
    process = subprocess.Popen(
        [APACHE, "-DFOREGROUND" if production else "-X", "-f", str(main)],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env={"PATH": "/usr/sbin:/usr/bin:/bin", "LANG": "C"},
    )
    try:
        _wait_ready(host, process, workdir / "stderr.log", tls)
        yield host
    finally:
        _stop(process)
        log.close()


NGINX_DEBIAN_DEFAULTS = "    sendfile on;\n    tcp_nopush on;\n    keepalive_timeout 65;\n"


@contextlib.contextmanager
def nginx_serving(
    root: Path, workdir: Path, *, production: bool = False, tls: TlsFiles | None = None
) -> Iterator[str]:
    """Debian's nginx (``daemon off``) with the printed server block for ``root``; yields HOST:PORT.

    By default one worker; ``production=True`` uses what Debian's nginx.conf sets (a worker per
    core, 768 connections each, sendfile and tcp_nopush).
    """
    host = f"127.0.0.1:{free_port()}"
    workdir.mkdir(parents=True, exist_ok=True)
    server = workdir / "image-serve.conf"
    server.write_text(print_config("nginx", root, host, tls))
    user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
    temp_paths = "\n".join(
        f"    {kind}_temp_path {workdir}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (workdir / "nginx.conf").write_text(
        f"""\
{user}pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
worker_processes {"auto" if production else 1};
events {{ worker_connections {768 if production else 64}; }}
http {{
    access_log {workdir}/access.log;
{NGINX_DEBIAN_DEFAULTS if production else ""}
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
        _wait_ready(host, process, workdir / "stderr.log", tls)
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


@contextlib.contextmanager
def served_by(kind: str, root: Path, workdir: Path) -> Iterator[str]:
    """The tree at ``root`` served by ``imageprep`` serve, ``apache`` or ``nginx`` (the printed
    configurations); the ``HOST:PORT``. Skips the test when that web server is not installed."""
    if kind == "imageprep":
        with imageprep_serving(root) as served:
            yield served.host
    elif kind == "apache":
        if not apache_available():
            pytest.skip("needs apache2 with mod_negotiation")
        with apache_serving(root, workdir) as address:
            yield address
    else:
        if not nginx_available():
            pytest.skip("needs nginx")
        with nginx_serving(root, workdir) as address:
            yield address


def http_request(host: str, method: str, path: str, accept: str = "") -> tuple[int, dict[str, str], bytes]:
    """One request to a server of the tree: status, headers (names lowercased; a repeated header's
    values joined by ", ", as RFC 9110 allows), body."""
    connection = http.client.HTTPConnection(host, timeout=10)
    try:
        connection.request(method, path, headers={"Accept": accept} if accept else {})
        response = connection.getresponse()
        headers: dict[str, str] = {}
        for name, value in response.getheaders():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return response.status, headers, response.read()
    finally:
        connection.close()
