"""Start and always stop a Debian ``docker-registry`` on a free loopback port.

Each server stores its data in its own directory and writes its access log to a file there, which
the benchmark reads to count blob uploads and mounts.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType

REGISTRY_BINARY = "/usr/bin/docker-registry"
READY_ATTEMPTS = 100
READY_INTERVAL = 0.05
STOP_TIMEOUT = 10.0

_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: imageprep-bench
{tls}"""


def free_port() -> int:
    """A port nobody listens on right now (the registry binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RegistryServer:
    """One ``docker-registry serve`` process; use as a context manager so it is always stopped."""

    def __init__(self, directory: Path, *, tls: tuple[Path, Path] | None = None) -> None:
        """``tls``: a certificate and key to serve HTTPS with (the bench's own CA signs them)."""
        self.directory = directory
        self.tls = tls
        self.storage = directory / "storage"
        self.log_path = directory / "registry.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> RegistryServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start on a free port and wait (bounded) until ``/v2/`` answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = self.directory / "config.yml"
        tls = f"  tls:\n    certificate: {self.tls[0]}\n    key: {self.tls[1]}\n" if self.tls else ""
        config.write_text(_CONFIG.format(root=self.storage, port=self.port, tls=tls))
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [REGISTRY_BINARY, "serve", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        url = f"http://{self.host}/v2/"
        for _ in range(READY_ATTEMPTS):
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"docker-registry exited early; see {self.log_path}")
            try:
                if self.tls is not None:  # up when it accepts connections (it speaks TLS only)
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                        return
                with urllib.request.urlopen(url, timeout=1.0) as answer:
                    if answer.status == 200:
                        return
            except OSError:  # not listening yet (URLError is an OSError)
                pass
            time.sleep(READY_INTERVAL)
        raise RuntimeError(f"docker-registry on {self.host} not ready after {READY_ATTEMPTS} checks")

    def stop(self) -> None:
        """Terminate the process (kill it if it does not stop in time)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)

    def log_size(self) -> int:
        """Current length of the access log, to read only what a later phase adds."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def stored_blobs(self) -> set[str]:
        """Digests of the blobs in the registry's filesystem storage."""
        root = self.storage / "docker" / "registry" / "v2" / "blobs" / "sha256"
        if not root.exists():
            return set()
        return {f"sha256:{p.parent.name}" for p in root.glob("*/*/data")}
