"""The ``imageprep`` program."""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from cliff.app import App
from cliff.command import Command
from cliff.commandmanager import CommandManager

import imageprep
from imageprep.cli.base import CONSOLE_FORMAT, quiet_request_logs
from imageprep.model.errors import ImageprepError
from imageprep.prepare.envfile import check_writable

EXIT_USAGE = 2
# Command classes by ``module:class``, imported only when that command runs: ``imageprep prepare``
# then never loads the modification, serving or listing code (or rich, off a terminal).
COMMANDS: dict[str, str] = {
    "prepare default": "imageprep.cli.prepare:PrepareDefault",
    "prepare": "imageprep.cli.prepare:Prepare",
    "hotfix": "imageprep.cli.hotfix:Hotfix",
    "push": "imageprep.cli.push:Push",
    "serve": "imageprep.cli.serve:Serve",
    "list": "imageprep.cli.images:ListImages",
    "show": "imageprep.cli.images:ShowImage",
    "delete": "imageprep.cli.images:DeleteImage",
}


@dataclass(frozen=True)
class LazyCommand:
    """What cliff's command manager keeps per command: something whose ``load()`` gives the class."""

    name: str
    target: str

    def load(self) -> type[Command]:
        """Import the command's module and return its class."""
        module, _, attribute = self.target.partition(":")
        command: type[Command] = getattr(importlib.import_module(module), attribute)
        return command


class _CommandManager(CommandManager):
    """Knows exactly the commands in :data:`COMMANDS`.

    cliff would also scan the installed entry points for the namespace; reading that metadata costs
    more than the rest of a command's startup and finds nothing imageprep does not list itself.
    (The namespace still names the per-command hook groups cliff looks up.)
    """

    def load_commands(self, namespace: str) -> None:
        """Register nothing from entry points."""
        self.group_list.append(namespace)

    def find_command(self, argv: list[str]) -> tuple[type[Command], str, list[str]]:
        """The command whose full name starts ``argv``; no abbreviations.

        cliff would also run the one command an abbreviation fits: a typo such as ``prepar``
        would then run a real prepare with the built-in defaults.
        """
        words = len(argv)
        for index, arg in enumerate(argv):
            if arg.startswith("-"):
                words = index
                break
        for end in range(words, 0, -1):
            name = " ".join(argv[:end])
            if name in self.commands:
                return self.commands[name].load(), name, argv[end:]
        raise ValueError(f"unknown command {argv!r}")


class ImageprepApp(App):
    """``imageprep X`` mirrors ``openstack tripleo container image X``."""

    CONSOLE_MESSAGE_FORMAT = CONSOLE_FORMAT
    NAME = "imageprep"
    IMAGEPREP_CONSOLE = True  # the commands need not set up their console lines themselves

    def __init__(self) -> None:
        manager = _CommandManager("imageprep.cli", convert_underscores=True)
        for name, target in COMMANDS.items():
            manager.commands[name] = LazyCommand(name, target)  # type: ignore[assignment]
        super().__init__(
            description="Prepare container images for a TripleO-style OpenStack deployment.",
            version=imageprep.__version__,
            command_manager=manager,
            deferred_help=True,
        )

    def configure_logging(self) -> None:
        """cliff's console logging, without a line per HTTP request unless asked for (-vv).

        ``--log-file`` (before or after the command, as upstream takes it) is checked first: a
        file that cannot be written is one error line before anything runs.
        """
        if self.options.log_file:
            try:
                check_writable(Path(self.options.log_file))
            except ImageprepError as error:
                self.stderr.write(f"error: {error}\n")
                raise SystemExit(error.exit_code) from None
        super().configure_logging()
        quiet_request_logs(self.options.verbose_level)

    def run_subcommand(self, argv: list[str]) -> int:
        """Run the command ``argv`` names; anything else is one error with suggestions (exit 2)."""
        try:
            self.command_manager.find_command(argv)
        except ValueError:
            given = " ".join(arg for arg in argv if not arg.startswith("-"))
            self.stderr.write(f"error: '{given}' is not an imageprep command; see 'imageprep --help'\n")
            suggestions = self.get_fuzzy_matches(argv[0])
            if suggestions:
                self.stderr.write(f"  hint: did you mean {' or '.join(repr(s) for s in suggestions[:3])}?\n")
            return EXIT_USAGE
        return int(super().run_subcommand(argv))

    def run(self, argv: list[str]) -> int:
        """cliff's run; without a command, the help and exit 2 (a command is needed)."""
        result = int(super().run(argv))
        return EXIT_USAGE if getattr(self, "interactive_mode", False) else result

    def interact(self) -> None:
        """No interactive shell: without a command, show the help."""
        self.print_help_if_requested()
        self.parser.print_help(self.stdout)
        self.stdout.write("\nCommands:\n")
        for name in sorted(COMMANDS):
            self.stdout.write(f"  {name}\n")


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status."""
    app = ImageprepApp()
    return int(app.run(sys.argv[1:] if argv is None else argv))


def console() -> NoReturn:
    """The ``imageprep`` program: :func:`main`, then out without the interpreter's teardown.

    Taking apart the few hundred modules a run loads costs some 40 ms (measured on a re-run
    that takes 0.7 s in all), and nothing in it matters to a process that is ending: the output
    streams are flushed, the log files closed and the exit handlers run here first. An error
    that escapes :func:`main` leaves the ordinary way, traceback and all.
    """
    try:
        code = main()
    except SystemExit as exc:
        if exc.code is not None and not isinstance(exc.code, int):
            raise  # a message to print: Python's own exit says it
        code = exc.code or 0
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader that went away, a closed stream
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
