"""``imageprep serve``: the image-serve tree as a read-only registry on a listening socket.

:func:`make_server` binds the socket (one error line for an address it cannot have) and hands
back an :class:`ImageServeServer`, whose :meth:`~ImageServeServer.serve_forever` runs the event
loop (:mod:`.eventloop`) that answers every connection with the registry API (:mod:`.api`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import resource
import socket
import ssl
import threading
from pathlib import Path

from imageprep.imageserve.api import RegistryApi
from imageprep.imageserve.eventloop import EventLoop, Limits
from imageprep.imageserve.reader import TreeReader
from imageprep.model.errors import ImageServeError

LOG = logging.getLogger("imageprep.serve")
LISTEN_BACKLOG = 1024
SPARE_DESCRIPTORS = 64


class ImageServeServer:
    """A bound listening socket and the loop that serves it; :meth:`shutdown` works from any thread."""

    def __init__(
        self,
        listener: socket.socket,
        tree: TreeReader,
        *,
        log_requests: bool = False,
        tls: ssl.SSLContext | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.server_address: tuple[str, int] = listener.getsockname()[:2]
        self._loop = EventLoop(listener, RegistryApi(tree), tls=tls, limits=limits, log_requests=log_requests)
        self._stopped = threading.Event()
        self._stopped.set()

    def serve_forever(self, poll_interval: float = 0.5, *, parent: int | None = None) -> None:
        """Answer requests until :meth:`shutdown` is called (or a signal handler raises).

        ``parent``: the supervisor of a forked worker, whose end ends the serving too.
        """
        self._stopped.clear()
        try:
            self._loop.run(poll_interval, parent)
        finally:
            self._stopped.set()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop :meth:`serve_forever` and wait (at most ``timeout``) until it has returned."""
        self._loop.stop()
        self._stopped.wait(timeout)

    def server_close(self) -> None:
        """Close the listening socket and every connection."""
        self._loop.close()


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` as ``(host, port)``; ValueError says what is wrong with it."""
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write IPv6 addresses in brackets, [ADDRESS]:PORT")
    return host, int(port)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def _fit_open_files(limits: Limits) -> Limits:
    """``limits`` with room for two descriptors per connection (socket, blob) under RLIMIT_NOFILE.

    The soft limit is raised toward the hard one when it is too low (it is often 1024 while the
    hard limit is far higher); if even the hard limit is too low, fewer connections are taken.
    """
    wanted = 2 * limits.max_connections + SPARE_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
            soft = new_soft
    if soft != resource.RLIM_INFINITY and soft < wanted:
        fitting = max((soft - SPARE_DESCRIPTORS) // 2, 1)
        LOG.warning(
            "the open-files limit (%d) allows %d connections per worker, not %d",
            soft,
            fitting,
            limits.max_connections,
        )
        return dataclasses.replace(limits, max_connections=fitting)
    return limits


def make_server(
    root: Path,
    host: str,
    port: int,
    *,
    log_requests: bool = False,
    tls: ssl.SSLContext | None = None,
    limits: Limits | None = None,
) -> ImageServeServer:
    """A server for the tree at ``root`` bound to ``host:port`` (port 0: any free port)."""
    if not root.is_dir():
        raise ImageServeError(
            f"the image-serve root {root} does not exist",
            hint="copy images into it first (prepare with push_destination: true), or give --root",
        )
    try:
        listener = _listen(host, port)
    except OSError as exc:
        raise ImageServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    limits = _fit_open_files(limits or Limits())
    return ImageServeServer(listener, TreeReader(root), log_requests=log_requests, tls=tls, limits=limits)
