"""``hotfix``: install RPMs into images; the results stay in local container storage."""

from __future__ import annotations

import argparse
from pathlib import Path

from imageprep.cli.base import ImageprepCommand, settings
from imageprep.model.errors import ModificationError
from imageprep.settings import add_registry_options
from imageprep.usecases.hotfix import DEFAULT_HOTFIX_TAG, hotfix


class Hotfix(ImageprepCommand):
    """Install every RPM of a directory into images, tagged <image tag>-<tag> in local storage."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = super().get_parser(prog_name)
        parser.add_argument(
            "--image",
            dest="images",
            action="append",
            required=True,
            metavar="REF",
            help="fully qualified image to hotfix, repeatable; fetched from its registry when it is "
            "not in local container storage (required)",
        )
        parser.add_argument(
            "--rpms-path",
            type=Path,
            required=True,
            metavar="DIR",
            help="directory whose *.rpm files are installed, as one new layer (required)",
        )
        parser.add_argument(
            "--tag",
            default=DEFAULT_HOTFIX_TAG,
            help=f"appended to each image's tag after a '-' (default: {DEFAULT_HOTFIX_TAG})",
        )
        add_registry_options(parser, tree=False)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        results = hotfix(
            parsed_args.images, parsed_args.rpms_path.expanduser(), settings(parsed_args), tag=parsed_args.tag
        )
        failed = [result for result in results if not result.ok]
        for result in results:
            if result.ok:
                self.app.stdout.write(f"{result.result}\n")
            else:
                self.app.stderr.write(f"error: {result.error}\n")
        self.app.stderr.write(f"hotfixed {len(results) - len(failed)} of {len(results)} images\n")
        return ModificationError.exit_code if failed else 0
