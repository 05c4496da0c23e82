"""``prepare default`` and ``prepare``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imageprep.catalogue.defaults import load_defaults
from imageprep.catalogue.template import CatalogueTemplate
from imageprep.cli.base import ImageprepCommand, cache_directory, command_line
from imageprep.imageserve.root import DEFAULT_ROOT, ROOT_VARIABLE, resolve_root
from imageprep.model.control import RunControl
from imageprep.model.errors import ConfigurationError
from imageprep.prepare.copying import copy_prepared, wants_all_architectures
from imageprep.prepare.defaultdoc import default_document
from imageprep.prepare.destinations import DestinationStores
from imageprep.prepare.envfile import render_document, write_atomically
from imageprep.prepare.environment import Environment, environment_files, load_environment
from imageprep.prepare.inputs import HEAT_TEMPLATES_ROOT, load_roles_file
from imageprep.prepare.localregistry import local_registry_address
from imageprep.prepare.plan import PrepareResult, PrepareSettings, prepare_parameters
from imageprep.prepare.registryinspect import RegistryInspector
from imageprep.prepare.session import ceph_credentials, declared_insecure, open_session
from imageprep.registry.credentials import default_auth_files
from imageprep.registry.session import RegistrySession
from imageprep.transfer.listener import TransferListener
from imageprep.transfer.progress import LoggingListener
from imageprep.transfer.report import TransferReport

LOG = logging.getLogger(__name__)
DEFAULT_CONCURRENCY = 8


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


@contextlib.contextmanager
def _stop_on_interrupt(control: RunControl) -> Iterator[None]:
    """Ctrl-C tells every thread of the run to stop (and the main thread to unwind) at once.

    Without it only the main thread would hear of the interruption, and the copy threads would go
    on until every image was done.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupted(signum: int, frame: object) -> None:
        control.stop()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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
        parser.add_argument(
            "--offline",
            action="store_true",
            help="with --dry-run: contact no registry at all; tag_from_label keeps the template tags "
            "(default: off)",
        )
        parser.add_argument(
            "--concurrency",
            type=_positive_int,
            default=DEFAULT_CONCURRENCY,
            metavar="N",
            help=f"images and blobs copied at once, tags discovered at once (default: {DEFAULT_CONCURRENCY})",
        )
        parser.add_argument(
            "--insecure-registry",
            dest="insecure_registries",
            action="append",
            default=[],
            metavar="HOST:PORT",
            help="reach this registry over plain HTTP or unverified TLS, repeatable "
            "(default: none; loopback registries without TLS are found by themselves)",
        )
        parser.add_argument(
            "--ca-file",
            type=Path,
            metavar="FILE",
            help="extra CA certificates to trust for registries (default: $SSL_CERT_FILE, else none)",
        )
        parser.add_argument(
            "--report",
            type=Path,
            metavar="FILE",
            help="write what was copied, skipped and failed to FILE as JSON (default: no report)",
        )
        parser.add_argument(
            "--roles-path",
            dest="roles_paths",
            type=Path,
            action="append",
            default=[],
            metavar="DIR",
            help="where Ansible roles named by modify_role are found, repeatable, searched before "
            "$ANSIBLE_ROLES_PATH (default: $ANSIBLE_ROLES_PATH and Ansible's own defaults)",
        )
        parser.add_argument(
            "--image-serve-root",
            metavar="DIR",
            help="where images for the local registry (push_destination: true) are written "
            f"(default: ${ROOT_VARIABLE}, else {DEFAULT_ROOT})",
        )
        parser.add_argument(
            "--timeout",
            type=_positive_seconds,
            metavar="SECONDS",
            help="give up when the whole prepare (discovery and copies) takes longer than SECONDS; "
            "the output file is then left as it was (default: no limit)",
        )
        _add_defaults_file(parser)
        return parser

    def settings(
        self,
        parsed_args: argparse.Namespace,
        session: RegistrySession | None,
        environment: Environment,
        insecure: frozenset[str],
        control: RunControl | None = None,
    ) -> PrepareSettings:
        """Load every input the options name into a settings object."""
        defaults = load_defaults(parsed_args.defaults_file)
        roles = (
            load_roles_file(parsed_args.roles_file, parsed_args.templates) if parsed_args.roles_file else None
        )
        return PrepareSettings(
            environment=environment,
            defaults=defaults,
            template=CatalogueTemplate.builtin(cache_directory(os.environ, Path.home())),
            local_registry=local_registry_address(
                environment.parameters.get("LocalContainerRegistry"), socket.gethostname()
            ),
            started_at=datetime.now(UTC),
            roles=roles,
            inspector=RegistryInspector(session) if session else None,
            insecure_registries=insecure,
            insecure_probe=(lambda host: session.probe(host) != "https") if session else None,
            credentials=ceph_credentials(environment),
            concurrency=parsed_args.concurrency,
            dry_run=parsed_args.dry_run,
            control=control,
        )

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        control = RunControl(parsed_args.timeout)
        with _stop_on_interrupt(control):
            return self._prepare(parsed_args, control)

    def _prepare(self, parsed_args: argparse.Namespace, control: RunControl) -> int:
        if parsed_args.offline and not parsed_args.dry_run:
            raise ConfigurationError("--offline only makes sense with --dry-run")
        files = environment_files(
            _environment_directories(parsed_args.environment_directories),
            [path.expanduser() for path in parsed_args.environment_files or []],
        )
        environment = load_environment(files)
        insecure = declared_insecure(environment, parsed_args.insecure_registries)
        if parsed_args.offline:
            settings = self.settings(parsed_args, None, environment, insecure, control)
            self._finish(parsed_args, prepare_parameters(settings))
            return 0
        ca_file = parsed_args.ca_file or (
            Path(os.environ["SSL_CERT_FILE"]) if os.environ.get("SSL_CERT_FILE") else None
        )
        with open_session(
            environment,
            insecure=insecure,
            ca_file=ca_file,
            auth_files=default_auth_files(os.environ, Path.home()),
            control=control,
        ) as session:
            result = prepare_parameters(self.settings(parsed_args, session, environment, insecure, control))
            if not parsed_args.dry_run and result.copies:
                report = self._copy(parsed_args, result, session, environment)
                # Past the deadline the failures all say so; one clear line says it better.
                control.check("every image was copied")
                report.raise_for_failures()  # the output file is written only when every image made it
        self._finish(parsed_args, result)
        return 0

    def _copy(
        self,
        parsed_args: argparse.Namespace,
        result: PrepareResult,
        session: RegistrySession,
        environment: Environment,
    ) -> TransferReport:
        listener: TransferListener = LoggingListener()
        display: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        if self.app.stderr.isatty():
            from imageprep.transfer.richprogress import RichProgressListener  # rich only on a terminal

            listener = display = RichProgressListener()
        with display:
            report = copy_prepared(
                result.images,
                session,
                DestinationStores(session, resolve_root(parsed_args.image_serve_root, os.environ)),
                multi_arch=wants_all_architectures(environment.parameters.get("AdditionalArchitectures")),
                concurrency=parsed_args.concurrency,
                listener=listener,
                roles_path=tuple(p.expanduser().resolve() for p in parsed_args.roles_paths),
            )
        if parsed_args.report:
            write_atomically(parsed_args.report, report.to_json() + "\n")
        return report

    def _finish(self, parsed_args: argparse.Namespace, result: PrepareResult) -> None:
        document: dict[str, Any] = {"parameter_defaults": result.parameters}
        text = render_document(document, command_line(self.app.NAME), datetime.now().astimezone())
        headline, *details = summarise(result)
        if parsed_args.output_env_file:
            write_atomically(parsed_args.output_env_file, text)
            headline += f", written to {parsed_args.output_env_file}"
        else:
            self.app.stdout.write(text)
        # One line by default, none with -q; where the images come from and go to with -v.
        if self.app_args.verbose_level >= 1:
            self.app.stderr.write(headline + "\n")
        if self.app_args.verbose_level >= 2:
            for line in details:
                self.app.stderr.write(line + "\n")
