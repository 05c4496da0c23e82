"""``list``, ``show`` and ``delete``: parse, settings, one call of the library, print.

Without ``--registry-url`` the commands read the local registry's image-serve tree on disk; a
registry host written in IMAGE that is not the local registry's address is read over HTTP.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cliff.columns import FormattableColumn

from imageprep.cli.base import ImageprepCommand, ImageprepLister, ImageprepShowOne, settings
from imageprep.model.errors import ConfigurationError
from imageprep.settings import add_registry_options
from imageprep.usecases.images import Deletion, delete, list_store, show

MiB = 1024 * 1024


class LabelsColumn(FormattableColumn[dict[str, str]]):
    """Labels as ``key='value'`` lines in a table, as a mapping in JSON and YAML."""

    def human_readable(self) -> str:
        return "\n".join(f"{key}='{value}'" for key, value in sorted(self._value.items()))

    def machine_readable(self) -> dict[str, str]:
        return dict(self._value)


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--registry-url",
        metavar="HOST:PORT",
        help="work on this registry over HTTP instead of the local image-serve tree",
    )
    add_registry_options(parser, login="the registry")


class ListImages(ImageprepLister):
    """List the images of the local registry (or of --registry-url)."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = super().get_parser(prog_name)
        _add_store_options(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        listing = list_store(settings(parsed_args), registry_url=parsed_args.registry_url)
        rows = [(f"{listing.shown_as}/{i.repository}:{i.tag}", i.digest, i.size) for i in listing.images]
        return ("Image Name", "Digest", "Size"), rows


class ShowImage(ImageprepShowOne):
    """Show one image: digest, tags, size, platform, labels."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = super().get_parser(prog_name)
        parser.add_argument("image", metavar="IMAGE", help="[HOST:PORT/]NAMESPACE/NAME[:TAG|@DIGEST]")
        _add_store_options(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        details = show(settings(parsed_args), parsed_args.image, registry_url=parsed_args.registry_url)
        columns = (
            "Name", "Digest", "Media Type", "Tags", "Size", "Layers",
            "Architecture", "OS", "Created", "Platforms", "Labels", "Signatures",
        )  # fmt: skip
        values = (
            details.name,
            details.digest,
            details.media_type,
            " ".join(details.tags),
            details.size,
            details.layers,
            details.architecture,
            details.os,
            details.created,
            " ".join(details.platforms),
            LabelsColumn(details.labels),
            "\n".join(details.signatures),
        )
        return columns, values


class DeleteImage(ImageprepCommand):
    """Delete an image tag from the local registry (and the blobs no other image uses), or from a
    registry that allows deleting."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = super().get_parser(prog_name)
        parser.add_argument("image", metavar="IMAGE", help="[HOST:PORT/]NAMESPACE/NAME:TAG")
        parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
        _add_store_options(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        confirm = (lambda name: True) if parsed_args.yes else self._confirmed
        deletion = delete(
            settings(parsed_args), parsed_args.image, registry_url=parsed_args.registry_url, confirm=confirm
        )
        if deletion is None:
            self.app.stdout.write("nothing deleted\n")
            return 1
        self.app.stdout.write(_describe(deletion) + "\n")
        return 0

    def _confirmed(self, name: str) -> bool:
        if not sys.stdin.isatty():
            raise ConfigurationError(
                f"refusing to delete {name} without confirmation", hint="pass -y/--yes when not at a terminal"
            )
        self.app.stdout.write(f"Delete {name}? [y/N] ")
        self.app.stdout.flush()
        return sys.stdin.readline().strip().lower() in ("y", "yes")


def _describe(deletion: Deletion) -> str:
    removed = deletion.tree
    if removed is None:
        return (
            f"deleted {deletion.name}: manifest {deletion.digest} (with every tag pointing at it); the "
            "registry frees its blobs when its garbage collection runs"
        )
    kept = len(removed.blobs_removed) - len(removed.blobs_freed)
    return (
        f"deleted {deletion.name}: {len(removed.manifests_removed)} manifest(s), "
        f"{len(removed.blobs_freed)} blob(s) and {removed.bytes_freed / MiB:.1f} MiB freed"
        + (f", {kept} blob(s) kept for other images" if kept else "")
        + (" (repository removed)" if removed.repository_removed else "")
    )
