"""``list``, ``show`` and ``delete``: the local registry's images (or a registry's, read-only).

Without ``--registry-url`` the commands read the image-serve tree on disk directly: that is the
local registry, and it works whether or not a web server serves it right now. A registry host
written in IMAGE that is not the local registry's address is read over HTTP instead.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cliff.columns import FormattableColumn

from imageprep.cli.base import ImageprepCommand, ImageprepLister, ImageprepShowOne
from imageprep.imageserve import ImageServeTree, delete_image, resolve_root
from imageprep.model.errors import ConfigurationError, ImageServeError
from imageprep.model.platforms import host_architecture
from imageprep.model.reference import ImageReference
from imageprep.prepare.localregistry import local_registry_address
from imageprep.registry.session import RegistrySession
from imageprep.transfer.listing import list_images, show_image
from imageprep.transfer.store import ImageStore

MiB = 1024 * 1024


class LabelsColumn(FormattableColumn[dict[str, str]]):
    """Labels as ``key='value'`` lines in a table, as a mapping in JSON and YAML."""

    def human_readable(self) -> str:
        return "\n".join(f"{key}='{value}'" for key, value in sorted(self._value.items()))

    def machine_readable(self) -> dict[str, str]:
        return dict(self._value)


def _local_address() -> str:
    return local_registry_address(None, socket.gethostname())


def _add_store_options(parser: argparse.ArgumentParser, *, remote: bool = True) -> None:
    parser.add_argument(
        "--image-serve-root",
        metavar="DIR",
        help="the local registry's image-serve tree (default: $IMAGEPREP_IMAGE_SERVE_ROOT, "
        "else /var/lib/image-serve)",
    )
    if remote:
        parser.add_argument(
            "--registry-url",
            metavar="HOST:PORT",
            help="read this registry over HTTP instead of the local image-serve tree",
        )
        parser.add_argument(
            "--insecure",
            action="store_true",
            help="the registry may be reached over plain HTTP or unverified TLS",
        )
        parser.add_argument("--ca-file", type=Path, metavar="FILE", help="extra CA certificates to trust")


@contextmanager
def _open_store(parsed_args: argparse.Namespace, host: str | None) -> Iterator[tuple[ImageStore, str]]:
    """The store to read and the name its images are shown under (``HOST:PORT``)."""
    local = _local_address()
    registry = getattr(parsed_args, "registry_url", None) or (host if host and host != local else None)
    if registry is None:
        root = resolve_root(parsed_args.image_serve_root, os.environ)
        if not root.is_dir():
            raise ImageServeError(
                f"there is no image-serve tree at {root}",
                hint="nothing was pushed to the local registry yet, or pass --image-serve-root DIR",
            )
        yield ImageServeTree(root), local
        return
    insecure = [registry] if parsed_args.insecure else []
    with RegistrySession(insecure=insecure, ca_file=parsed_args.ca_file) as session:
        yield session.client(registry), registry


def _parse_image(text: str) -> ImageReference:
    reference = ImageReference.parse(text)
    if not reference.domain and "/" not in reference.path:
        raise ConfigurationError(
            f"image {text!r} names no namespace",
            hint="write it as NAMESPACE/NAME:TAG, e.g. tripleomaster/centos-binary-nova-api:current-tripleo",
        )
    return reference


class ListImages(ImageprepLister):
    """List the images of the local registry (or of --registry-url)."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = super().get_parser(prog_name)
        _add_store_options(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        with _open_store(parsed_args, None) as (store, shown_as):
            images = list_images(store)
        rows = [(f"{shown_as}/{i.repository}:{i.tag}", i.digest, i.size) for i in images]
        return ("Image Name", "Digest", "Size"), rows


class ShowImage(ImageprepShowOne):
    """Show one image: digest, tags, size, platform, labels."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = super().get_parser(prog_name)
        parser.add_argument("image", metavar="IMAGE", help="[HOST:PORT/]NAMESPACE/NAME[:TAG|@DIGEST]")
        _add_store_options(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        reference = _parse_image(parsed_args.image)
        with _open_store(parsed_args, reference.domain or None) as (store, shown_as):
            details = show_image(store, reference.path, reference.reference, host_architecture())
        name = details.name.replace(store.location, shown_as, 1)
        columns = (
            "Name", "Digest", "Media Type", "Tags", "Size", "Layers",
            "Architecture", "OS", "Created", "Platforms", "Labels",
        )  # fmt: skip
        values = (
            name,
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
        )
        return columns, values


class DeleteImage(ImageprepCommand):
    """Delete an image tag from the local registry, and the blobs no other image uses."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = super().get_parser(prog_name)
        parser.add_argument("image", metavar="IMAGE", help="[HOST:PORT/]NAMESPACE/NAME:TAG")
        parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
        _add_store_options(parser, remote=False)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        reference = _parse_image(parsed_args.image)
        local = _local_address()
        if reference.domain and reference.domain != local:
            raise ImageServeError(
                f"{reference.domain} is not the local registry ({local}); only the local "
                "image-serve tree can be deleted from",
                hint="delete from other registries with their own tools",
            )
        if reference.digest or not reference.tag:
            raise ConfigurationError(f"delete needs a tag: {parsed_args.image!r}")
        root = resolve_root(parsed_args.image_serve_root, os.environ)
        name = f"{local}/{reference.path}:{reference.tag}"
        if not parsed_args.yes and not self._confirmed(name):
            self.app.stdout.write("nothing deleted\n")
            return 1
        result = delete_image(ImageServeTree(root), reference.path, reference.tag)
        self.app.stdout.write(
            f"deleted {name}: {len(result.manifests_removed)} manifest(s), {len(result.blobs_removed)} "
            f"blob(s), {result.bytes_freed / MiB:.1f} MiB freed"
            f"{' (repository removed)' if result.repository_removed else ''}\n"
        )
        return 0

    def _confirmed(self, name: str) -> bool:
        if not sys.stdin.isatty():
            raise ConfigurationError(
                f"refusing to delete {name} without confirmation", hint="pass -y/--yes when not at a terminal"
            )
        self.app.stdout.write(f"Delete {name}? [y/N] ")
        self.app.stdout.flush()
        return sys.stdin.readline().strip().lower() in ("y", "yes")
