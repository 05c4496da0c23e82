"""``serve``: the image-serve tree over HTTP, or a web server configuration for it."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from imageprep.cli.base import ImageprepCommand, command_line
from imageprep.imageserve.root import DEFAULT_ROOT, ROOT_VARIABLE, resolve_root
from imageprep.imageserve.server import make_server, parse_listen
from imageprep.imageserve.tlsfiles import server_context
from imageprep.imageserve.webconfig import listen_address, render_config
from imageprep.imageserve.workers import default_workers, serve_in_workers
from imageprep.model.errors import ConfigurationError

LOG = logging.getLogger(__name__)
DEFAULT_LISTEN = "127.0.0.1:8787"


class _Stopped(Exception):
    """SIGTERM arrived."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


class Serve(ImageprepCommand):
    """Serve the local image-serve tree as a read-only registry, or print an Apache / nginx config."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = super().get_parser(prog_name)
        parser.add_argument(
            "--root",
            "--image-serve-root",
            dest="root",
            metavar="DIR",
            help=f"the image-serve tree (default: ${ROOT_VARIABLE}, else {DEFAULT_ROOT})",
        )
        parser.add_argument(
            "--listen",
            default=DEFAULT_LISTEN,
            metavar="HOST:PORT",
            help=f"address to serve on; port 0 picks a free one (default: {DEFAULT_LISTEN})",
        )
        parser.add_argument(
            "--print-config",
            choices=("apache", "nginx"),
            help="print a configuration with which Apache httpd or nginx serves the tree, and exit",
        )
        parser.add_argument(
            "--tls-cert",
            metavar="FILE",
            type=Path,
            help="serve HTTPS with this PEM certificate (and chain); needs --tls-key",
        )
        parser.add_argument("--tls-key", metavar="FILE", type=Path, help="the certificate's PEM private key")
        parser.add_argument(
            "--workers",
            type=int,
            metavar="N",
            help="server processes sharing the port (default: one per core, at most 8)",
        )
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        root = resolve_root(parsed_args.root, os.environ)
        try:
            host, port = parse_listen(parsed_args.listen)
        except ValueError as exc:
            raise ConfigurationError(f"--listen {exc}") from None
        tls_files = _tls_files(parsed_args.tls_cert, parsed_args.tls_key)
        workers = default_workers() if parsed_args.workers is None else parsed_args.workers
        if workers < 1:
            raise ConfigurationError(f"--workers {workers}: give at least 1")
        if parsed_args.print_config:
            command = command_line("imageprep")
            text = render_config(parsed_args.print_config, root, host, port, command, tls=tls_files)
            self.app.stdout.write(text)
            return 0
        tls = server_context(*tls_files) if tls_files else None
        verbose = getattr(self.app_args, "verbose_level", 1) >= 2
        server = make_server(root, host, port, log_requests=verbose, tls=tls)
        bound_host, bound_port = server.server_address[:2]
        scheme = "https" if tls else "http"
        address = listen_address(str(bound_host), int(bound_port))
        self.app.stdout.write(f"Serving {root} at {scheme}://{address}/ (Ctrl-C to stop)\n")
        self.app.stdout.flush()
        previous = signal.signal(signal.SIGTERM, _stop)
        try:
            if workers == 1:
                server.serve_forever(poll_interval=0.5)
            else:
                serve_in_workers(server, workers, poll_interval=0.5)
        except (KeyboardInterrupt, _Stopped):
            LOG.debug("stopping the server")
        finally:
            signal.signal(signal.SIGTERM, previous)
            server.server_close()
        sys.stdout.flush()
        return 0


def _tls_files(certificate: Path | None, key: Path | None) -> tuple[Path, Path] | None:
    """Both TLS files, made absolute (they may be written into a web server configuration)."""
    if certificate is None and key is None:
        return None
    if certificate is None or key is None:
        given, missing = ("--tls-cert", "--tls-key") if certificate else ("--tls-key", "--tls-cert")
        raise ConfigurationError(f"{given} needs {missing} too")
    return certificate.absolute(), key.absolute()
