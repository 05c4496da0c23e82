"""``serve``: the image-serve tree over HTTP, or a web server configuration for it."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from imageprep.cli.base import ImageprepCommand, command_line
from imageprep.usecases.serving import DEFAULT_LISTEN, ROOT_HELP, ServeRequest, Serving, web_server_config

LOG = logging.getLogger(__name__)


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
            help=ROOT_HELP,
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
        request = ServeRequest(
            root=parsed_args.root,
            listen=parsed_args.listen,
            tls_cert=parsed_args.tls_cert,
            tls_key=parsed_args.tls_key,
            workers=parsed_args.workers,
            log_requests=getattr(self.app_args, "verbose_level", 1) >= 2,
        )
        if parsed_args.print_config:
            self.app.stdout.write(
                web_server_config(parsed_args.print_config, request, command_line("imageprep"))
            )
            return 0
        serving = Serving(request)
        self.app.stdout.write(f"Serving {request.tree} at {serving.url} (Ctrl-C to stop)\n")
        self.app.stdout.flush()
        previous = signal.signal(signal.SIGTERM, _stop)
        try:
            serving.run()
        except (KeyboardInterrupt, _Stopped):
            LOG.debug("stopping the server")
        finally:
            signal.signal(signal.SIGTERM, previous)
            serving.close()
        sys.stdout.flush()
        return 0
