"""The ``imageprep`` program."""

from __future__ import annotations

import logging
import sys
from typing import Any

from cliff.app import App
from cliff.commandmanager import CommandManager

import imageprep
from imageprep.cli.hotfix import Hotfix
from imageprep.cli.images import DeleteImage, ListImages, ShowImage
from imageprep.cli.prepare import Prepare, PrepareDefault
from imageprep.cli.push import Push
from imageprep.cli.serve import Serve

COMMANDS: dict[str, Any] = {
    "prepare default": PrepareDefault,
    "prepare": Prepare,
    "hotfix": Hotfix,
    "push": Push,
    "serve": Serve,
    "list": ListImages,
    "show": ShowImage,
    "delete": DeleteImage,
}


class ImageprepApp(App):
    """``imageprep X`` mirrors ``openstack tripleo container image X``."""

    CONSOLE_MESSAGE_FORMAT = "%(levelname)s: %(message)s"
    NAME = "imageprep"

    def __init__(self) -> None:
        manager = CommandManager("imageprep.cli", convert_underscores=True)
        for name, command in COMMANDS.items():
            manager.add_command(name, command)
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
        for name in ("httpx", "httpcore"):
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
