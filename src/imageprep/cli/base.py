"""The base of every imageprep command: one error line and a stable exit code, never a traceback."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cliff.command import Command
from cliff.lister import Lister
from cliff.show import ShowOne

from imageprep.model.errors import ImageprepError
from imageprep.settings import Settings, settings_from_arguments

LOG = logging.getLogger("imageprep")
EXIT_INTERRUPTED = 130
CONSOLE_FORMAT = "%(levelname)s: %(message)s"
# Loggers whose lines are one per HTTP request: shown only with -vv.
_REQUEST_LOGGERS = ("imageprep.http", "httpcore")


def console_level(verbose_level: int) -> int:
    """What reaches the console: warnings with -q, the summary by default, every image with -v."""
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose_level, logging.DEBUG)


def quiet_request_logs(verbose_level: int) -> None:
    """No line per HTTP request unless asked for (-vv)."""
    level = logging.DEBUG if verbose_level >= 3 else logging.WARNING
    for name in _REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def imageprep_console(app: Any) -> Iterator[None]:
    """imageprep's own console lines (``WARNING: ...``, the copy summary) when another program
    runs the command: ``openstack`` logs only warnings by default, without their level."""
    if getattr(app, "IMAGEPREP_CONSOLE", False):
        yield  # imageprep's own program set its console up already
        return
    verbose_level = int(getattr(getattr(app, "options", None), "verbose_level", 1))
    handler = logging.StreamHandler(app.stderr)
    handler.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    handler.setLevel(console_level(verbose_level))
    quiet_request_logs(verbose_level)
    previous = (LOG.propagate, LOG.level)
    LOG.addHandler(handler)
    LOG.propagate = False
    LOG.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        LOG.removeHandler(handler)
        LOG.propagate, level = previous
        LOG.setLevel(level)


def settings(args: argparse.Namespace) -> Settings:
    """The command's :class:`~imageprep.settings.Settings`: its options and this environment."""
    return settings_from_arguments(args, os.environ, Path.home())


def allow_dash_values(parser: argparse.ArgumentParser, *options: str) -> None:
    """Let ``options`` take a value that starts with ``-`` (TripleO append tags: ``-pushed``).

    argparse takes ``--append-tag -pushed`` for two options; the value is joined to its option
    (``--append-tag=-pushed``) unless it is one of the parser's own options.
    """
    parse = parser.parse_known_args

    def parse_known_args(args: Any = None, namespace: Any = None) -> Any:
        given = list(sys.argv[1:] if args is None else args)
        joined: list[str] = []
        index = 0
        while index < len(given):
            word = given[index]
            following = given[index + 1] if index + 1 < len(given) else None
            dash_value = following is not None and following.startswith("-") and following != "--"
            if word in options and dash_value and following not in parser._option_string_actions:
                joined.append(f"{word}={following}")
                index += 2
                continue
            joined.append(word)
            index += 1
        return parse(joined, namespace)

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]


def add_signature_option(parser: argparse.ArgumentParser) -> None:
    """``--remove-signatures``, as skopeo names it: copy the images without what is attached to them."""
    parser.add_argument(
        "--remove-signatures",
        action="store_true",
        help="do not copy the images' signatures, attestations and SBOMs (cosign tags, OCI "
        "referrers, lookaside signatures) (default: they go along with each image)",
    )


def command_line(program: str, arguments: list[str] | None = None) -> str:
    """The command as the operator typed it (for generated-file headers)."""
    args = sys.argv[1:] if arguments is None else arguments
    return " ".join([program, *(shlex.quote(arg) for arg in args)])


class OperatorErrors:
    """Maps :class:`ImageprepError` to its exit code; ``--debug`` adds the traceback.

    A mixin so that plain commands, listers and show commands all end the same way.
    """

    auth_required = False
    app: Any  # set by cliff's command constructor
    app_args: Any

    def get_epilog(self) -> str:
        """The command's own epilog only.

        cliff's default looks up which installed distribution provides the command, which reads
        the metadata of every installed package: a tenth of a second on each run, to add a line
        about plugins that imageprep's own commands never need.
        """
        return str(getattr(self, "_epilog", None) or "")

    def _load_hooks(self) -> None:
        """No command hooks under imageprep's own program; cliff's lookup under any other.

        cliff looks for hooks by scanning every installed entry point, and on a first run (a new
        ``HOME``) writes a cache of them to ``~/.cache``: most of a tenth of a second, for a hook
        group no package fills under ``imageprep.cli``. Run by ``openstack``, the lookup stays, so
        the hooks openstackclient plugins register still run.
        """
        if getattr(self.app, "IMAGEPREP_CONSOLE", False):
            setattr(self, "_hooks", [])  # cliff's attribute (declared by cliff): no hooks to run  # noqa: B010
            return
        super()._load_hooks()  # type: ignore[misc]

    def run(self, parsed_args: argparse.Namespace) -> int:
        with imageprep_console(self.app):
            return self._run(parsed_args)

    def _run(self, parsed_args: argparse.Namespace) -> int:
        try:
            result: int = super().run(parsed_args) or 0  # type: ignore[misc]
            return result
        except ImageprepError as exc:
            if getattr(self.app_args, "debug", False):
                traceback.print_exc(file=sys.stderr)
            for line in str(exc).splitlines():
                self.app.stderr.write(f"error: {line}\n" if not line.startswith("  ") else f"{line}\n")
            return exc.exit_code
        except KeyboardInterrupt:
            self.app.stderr.write("error: interrupted\n")
            return EXIT_INTERRUPTED


class ImageprepCommand(OperatorErrors, Command):
    """A command that does something and prints little."""

    def take_action(self, parsed_args: argparse.Namespace) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class ImageprepLister(OperatorErrors, Lister):
    """A command printing rows, so ``-f table|json|yaml|value|csv`` all work."""


class ImageprepShowOne(OperatorErrors, ShowOne):
    """A command printing one record, so ``-f table|json|yaml|value|shell`` all work."""
