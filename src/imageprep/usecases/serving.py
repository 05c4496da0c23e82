"""``serve``: the image-serve tree as a read-only registry, or a web server configuration for it.

What the command needs of the tree's server, behind one request value, so the command line only
parses, calls and prints (and catches its process signals).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from imageprep.imageserve.root import DEFAULT_ROOT, ROOT_VARIABLE, resolve_root
from imageprep.imageserve.server import ImageServeServer, make_server, parse_listen
from imageprep.imageserve.tlsfiles import server_context
from imageprep.imageserve.webconfig import listen_address, render_config
from imageprep.imageserve.workers import default_workers, serve_in_workers
from imageprep.model.errors import ConfigurationError

POLL_INTERVAL = 0.5
DEFAULT_LISTEN = "127.0.0.1:8787"
ROOT_HELP = f"the image-serve tree (default: ${ROOT_VARIABLE}, else {DEFAULT_ROOT})"


@dataclass(frozen=True, slots=True)
class ServeRequest:
    """How to serve: the tree (``None``: the environment's, else the default), where, TLS files,
    worker processes (``None``: one per core, at most 8), and whether to log each request."""

    root: str | None = None
    listen: str = DEFAULT_LISTEN
    tls_cert: Path | None = None
    tls_key: Path | None = None
    workers: int | None = None
    log_requests: bool = False

    @property
    def tree(self) -> Path:
        """The image-serve root served."""
        return resolve_root(self.root, os.environ)

    def address(self) -> tuple[str, int]:
        """``--listen`` as (host, port); a configuration error when it is not one."""
        try:
            return parse_listen(self.listen)
        except ValueError as exc:
            raise ConfigurationError(f"--listen {exc}") from None

    def tls_files(self) -> tuple[Path, Path] | None:
        """Both TLS files, made absolute (they may be written into a web server configuration)."""
        if self.tls_cert is None and self.tls_key is None:
            return None
        if self.tls_cert is None or self.tls_key is None:
            given, missing = ("--tls-cert", "--tls-key") if self.tls_cert else ("--tls-key", "--tls-cert")
            raise ConfigurationError(f"{given} needs {missing} too")
        return self.tls_cert.absolute(), self.tls_key.absolute()

    def worker_count(self) -> int:
        """How many processes share the port."""
        workers = default_workers() if self.workers is None else self.workers
        if workers < 1:
            raise ConfigurationError(f"--workers {workers}: give at least 1")
        return workers


def web_server_config(kind: str, request: ServeRequest, command: str) -> str:
    """The Apache (``apache``) or nginx (``nginx``) configuration serving the tree as ``request`` says."""
    host, port = request.address()
    return render_config(kind, request.tree, host, port, command, tls=request.tls_files())


class Serving:
    """A bound server, ready to run until interrupted; close it when done."""

    def __init__(self, request: ServeRequest) -> None:
        host, port = request.address()
        files = request.tls_files()
        self._workers = request.worker_count()
        tls = server_context(*files) if files else None
        self._server: ImageServeServer = make_server(
            request.tree, host, port, log_requests=request.log_requests, tls=tls
        )
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"{'https' if tls else 'http'}://{listen_address(str(bound_host), int(bound_port))}/"

    def run(self) -> None:
        """Serve until an exception (Ctrl-C, or the caller's signal handler) stops it."""
        if self._workers == 1:
            self._server.serve_forever(poll_interval=POLL_INTERVAL)
        else:
            serve_in_workers(self._server, self._workers, poll_interval=POLL_INTERVAL)

    def close(self) -> None:
        """Release the listening socket."""
        self._server.server_close()
