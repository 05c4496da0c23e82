"""The ``imageprep`` program."""

from __future__ import annotations

import importlib
import logging
import sys
from dataclasses import dataclass

from cliff.app import App
from cliff.command import Command
from cliff.commandmanager import CommandManager

import imageprep

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


class ImageprepApp(App):
    """``imageprep X`` mirrors ``openstack tripleo container image X``."""

    CONSOLE_MESSAGE_FORMAT = "%(levelname)s: %(message)s"
    NAME = "imageprep"

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
        """cliff's console logging, without a line per HTTP request unless asked for (-vv)."""
        super().configure_logging()
        quiet = logging.DEBUG if self.options.verbose_level >= 3 else logging.WARNING
        for name in ("imageprep.http", "httpcore"):
            logging.getLogger(name).setLevel(quiet)

    def interact(self) -> None:
        """No interactive shell: without a command, show the help."""
        self.print_help_if_requested()
        self.parser.print_help(self.stdout)
        self.stdout.write("\nCommands:\n")
        for name in sorted(COMMANDS):
            self.stdout.write(f"  {name}\n")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    app = ImageprepApp()
    return int(app.run(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
