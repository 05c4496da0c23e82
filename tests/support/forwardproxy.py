"""A real forward proxy for tests: Debian's tinyproxy on a free loopback port, with basic auth.

tinyproxy tunnels https with ``CONNECT`` and forwards plain http in absolute form, as corporate
proxies do, and logs every request it handles, so a test can see what went through it. The
process is stopped when the context ends.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.registry_server import free_port

TINYPROXY = "/usr/bin/tinyproxy"
STARTUP_TIMEOUT = 10.0


def proxy_available() -> bool:
    return shutil.which("tinyproxy") is not None or Path(TINYPROXY).exists()


@dataclass(frozen=True)
class ForwardProxy:
    """A running proxy; ``url`` carries the login, ``address`` does not."""

    host: str
    username: str
    password: str
    log: Path

    @property
    def url(self) -> str:
        return f"http://{self.username}:{self.password}@{self.host}"

    @property
    def address(self) -> str:
        return f"http://{self.host}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _requests(self) -> list[tuple[str, str]]:
        """``(method, target)`` of every request line the proxy logged."""
        found = []
        for line in self.log_text().splitlines():
            _, marker, request = line.partition("): ")
            if marker and "Request (file descriptor" in line:
                method, _, rest = request.partition(" ")
                found.append((method, rest.split(" ", 1)[0]))
        return found

    def tunnels(self) -> list[str]:
        """``HOST:PORT`` of every CONNECT tunnel the proxy opened (https through the proxy)."""
        return [target for method, target in self._requests() if method == "CONNECT"]

    def forwarded(self) -> list[str]:
        """Absolute URLs of the plain-HTTP requests the proxy forwarded."""
        return [target for method, target in self._requests() if method != "CONNECT"]


@contextmanager
def forward_proxy(
    directory: Path, username: str = "proxyuser", password: str = "pr0xy-S3cret"
) -> Iterator[ForwardProxy]:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = directory / "tinyproxy.log"
    config = directory / "tinyproxy.conf"
    config.write_text(
        f'Port {port}\nListen 127.0.0.1\nTimeout 60\nLogFile "{log}"\nLogLevel Info\nMaxClients 100\n'
        f"BasicAuth {username} {password}\nDisableViaHeader Yes\n"
    )
    process = subprocess.Popen(
        [TINYPROXY, "-d", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                written = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"tinyproxy exited early: {written}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"tinyproxy did not listen on port {port}") from None
                time.sleep(0.05)
        yield ForwardProxy(f"127.0.0.1:{port}", username, password, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
