"""``prepare default`` and ``prepare``."""

from __future__ import annotations

import argparse
import logging
import socket
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imageprep.catalogue.defaults import load_defaults
from imageprep.catalogue.template import CatalogueTemplate
from imageprep.cli.base import ImageprepCommand, command_line
from imageprep.prepare.defaultdoc import default_document
from imageprep.prepare.envfile import render_document, write_atomically
from imageprep.prepare.environment import environment_files, load_environment
from imageprep.prepare.inputs import HEAT_TEMPLATES_ROOT, load_roles_file
from imageprep.prepare.localregistry import local_registry_address
from imageprep.prepare.plan import PrepareResult, PrepareSettings, prepare_parameters

LOG = logging.getLogger(__name__)
DEFAULT_ENVIRONMENT_DIRECTORY = Path("~/.tripleo/environments")


def _add_defaults_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--defaults-file",
        type=Path,
        metavar="FILE",
        help="YAML file whose template_defaults / container_image_prepare override the built-in "
        "defaults (default: the built-in defaults)",
    )


class PrepareDefault(ImageprepCommand):
    """Print (and optionally write) the default ContainerImagePrepare environment."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = super().get_parser(prog_name)
        parser.add_argument(
            "--output-env-file",
            type=Path,
            metavar="FILE",
            help="also write the environment to FILE; an existing FILE is kept as FILE.backup "
            "(default: print only)",
        )
        parser.add_argument(
            "--local-push-destination",
            action="store_true",
            help="add `push_destination: true` so images are copied to the local registry (default: off)",
        )
        parser.add_argument(
            "--enable-registry-login",
            action="store_true",
            help="add `ContainerImageRegistryLogin: true` so nodes log in to registries (default: off)",
        )
        _add_defaults_file(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        defaults = load_defaults(parsed_args.defaults_file)
        if parsed_args.enable_registry_login:
            LOG.warning(
                "remember to provide ContainerImageRegistryCredentials for the registries to log in to"
            )
            if parsed_args.local_push_destination:
                LOG.warning(
                    "registry login with a local push destination: nodes will try to log in to the "
                    "remote registries although they pull from the local one"
                )
        document = default_document(
            defaults,
            local_push_destination=parsed_args.local_push_destination,
            enable_registry_login=parsed_args.enable_registry_login,
        )
        text = render_document(document, command_line(self.app.NAME), datetime.now().astimezone())
        if parsed_args.output_env_file:
            write_atomically(parsed_args.output_env_file, text, keep_backup=True)
        self.app.stdout.write(text)
        return 0


def _environment_directories(values: list[Path] | None) -> list[Path]:
    default = DEFAULT_ENVIRONMENT_DIRECTORY.expanduser()
    directories = [default] if default.is_dir() else []
    directories.extend(value.expanduser() for value in values or [])
    return directories


def summarise(result: PrepareResult) -> list[str]:
    """Lines saying how many images come from, and go to, each registry namespace."""
    sources = Counter(str(image.source.name.rsplit("/", 1)[0]) for image in result.images)
    lines = [f"{len(result.images)} images, {len(result.parameters)} parameters"]
    lines += [f"  from {namespace}: {count}" for namespace, count in sorted(sources.items())]
    destinations = Counter(image.destination for image in result.images if image.destination)
    lines += [f"  to {destination}: {count}" for destination, count in sorted(destinations.items())]
    modified = sum(1 for image in result.images if image.modified)
    if modified:
        lines.append(f"  modified: {modified}")
    return lines


class Prepare(ImageprepCommand):
    """Evaluate ContainerImagePrepare and write the resulting image parameters."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = super().get_parser(prog_name)
        parser.add_argument(
            "-e",
            "--environment-file",
            dest="environment_files",
            type=Path,
            action="append",
            metavar="FILE",
            help="heat environment file, repeatable; later files win (default: none)",
        )
        parser.add_argument(
            "--environment-directory",
            dest="environment_directories",
            type=Path,
            action="append",
            metavar="DIR",
            help="add every *.yaml in DIR (sorted) before the -e files, repeatable "
            f"(default: {DEFAULT_ENVIRONMENT_DIRECTORY} when it exists)",
        )
        parser.add_argument(
            "-r",
            "--roles-file",
            type=Path,
            metavar="FILE",
            help="roles data for service filtering; absolute, relative to the current directory, or "
            "relative to --templates (default: no service filtering)",
        )
        parser.add_argument(
            "--templates",
            type=Path,
            default=HEAT_TEMPLATES_ROOT,
            metavar="DIR",
            help=f"heat templates root used to find a relative roles file (default: {HEAT_TEMPLATES_ROOT})",
        )
        parser.add_argument(
            "--output-env-file",
            type=Path,
            metavar="FILE",
            help="write the resulting parameters to FILE, atomically (default: print them)",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="compute and print the parameters without copying or modifying any image (default: off)",
        )
        _add_defaults_file(parser)
        return parser

    def settings(self, parsed_args: argparse.Namespace) -> PrepareSettings:
        """Load every input the options name into a settings object."""
        defaults = load_defaults(parsed_args.defaults_file)
        files = environment_files(
            _environment_directories(parsed_args.environment_directories),
            [path.expanduser() for path in parsed_args.environment_files or []],
        )
        environment = load_environment(files)
        roles = (
            load_roles_file(parsed_args.roles_file, parsed_args.templates) if parsed_args.roles_file else None
        )
        return PrepareSettings(
            environment=environment,
            defaults=defaults,
            template=CatalogueTemplate.builtin(),
            local_registry=local_registry_address(
                environment.parameters.get("LocalContainerRegistry"), socket.gethostname()
            ),
            started_at=datetime.now(UTC),
            roles=roles,
        )

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        settings = self.settings(parsed_args)
        result = prepare_parameters(settings)
        document: dict[str, Any] = {"parameter_defaults": result.parameters}
        text = render_document(document, command_line(self.app.NAME), datetime.now().astimezone())
        for line in summarise(result):
            self.app.stderr.write(line + "\n")
        if parsed_args.output_env_file:
            write_atomically(parsed_args.output_env_file, text)
            self.app.stderr.write(f"wrote {parsed_args.output_env_file}\n")
        else:
            self.app.stdout.write(text)
        return 0
