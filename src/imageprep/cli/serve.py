"""``serve``: the image-serve tree over HTTP, or a web server configuration for it."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from types import FrameType
from typing import Any

from imageprep.cli.base import ImageprepCommand, command_line
from imageprep.imageserve.root import DEFAULT_ROOT, ROOT_VARIABLE, resolve_root
from imageprep.imageserve.server import make_server, parse_listen
from imageprep.imageserve.webconfig import listen_address, render_config
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
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        root = resolve_root(parsed_args.root, os.environ)
        try:
            host, port = parse_listen(parsed_args.listen)
        except ValueError as exc:
            raise ConfigurationError(f"--listen {exc}") from None
        if parsed_args.print_config:
            command = command_line("imageprep")
            self.app.stdout.write(render_config(parsed_args.print_config, root, host, port, command))
            return 0
        verbose = getattr(self.app_args, "verbose_level", 1) >= 2
        server = make_server(root, host, port, log_requests=verbose)
        bound_host, bound_port = server.server_address[:2]
        self.app.stdout.write(
            f"Serving {root} at http://{listen_address(str(bound_host), int(bound_port))}/ (Ctrl-C to stop)\n"
        )
        self.app.stdout.flush()
        previous = signal.signal(signal.SIGTERM, _stop)
        try:
            server.serve_forever(poll_interval=0.5)
        except (KeyboardInterrupt, _Stopped):
            LOG.debug("stopping the server")
        finally:
            signal.signal(signal.SIGTERM, previous)
            server.server_close()
        sys.stdout.flush()
        return 0
