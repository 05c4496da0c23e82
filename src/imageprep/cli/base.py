"""The base of every imageprep command: one error line and a stable exit code, never a traceback."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import traceback
from pathlib import Path
from typing import Any

from cliff.command import Command
from cliff.lister import Lister
from cliff.show import ShowOne

from imageprep.model.errors import ImageprepError
from imageprep.settings import Settings, settings_from_arguments

LOG = logging.getLogger("imageprep")
EXIT_INTERRUPTED = 130


def settings(args: argparse.Namespace) -> Settings:
    """The command's :class:`~imageprep.settings.Settings`: its options and this environment."""
    return settings_from_arguments(args, os.environ, Path.home())


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

    def run(self, parsed_args: argparse.Namespace) -> int:
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
