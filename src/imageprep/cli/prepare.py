"""``prepare default`` and ``prepare``: parse, settings, one call of the library, print."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from imageprep.catalogue.defaults import load_defaults
from imageprep.cli.base import ImageprepCommand, add_signature_option, command_line, settings
from imageprep.model.control import RunControl
from imageprep.prepare.defaultdoc import default_document
from imageprep.prepare.envfile import render_document, write_atomically
from imageprep.prepare.inputs import HEAT_TEMPLATES_ROOT
from imageprep.settings import add_registry_options, positive_count
from imageprep.transfer.listener import TransferListener
from imageprep.transfer.progress import LoggingListener
from imageprep.usecases.cleanup import Cleanup
from imageprep.usecases.prepare import DEFAULT_CONCURRENCY, PrepareOutcome, PrepareRequest, prepare_images

LOG = logging.getLogger(__name__)
DEFAULT_ENVIRONMENT_DIRECTORY = Path("~/.tripleo/environments")


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


def _environment_directories(values: list[Path] | None) -> tuple[Path, ...]:
    default = DEFAULT_ENVIRONMENT_DIRECTORY.expanduser()
    directories = [default] if default.is_dir() else []
    directories.extend(value.expanduser() for value in values or [])
    return tuple(directories)


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
            type=positive_count,
            default=DEFAULT_CONCURRENCY,
            metavar="N",
            help=f"images and blobs copied at once, tags discovered at once (default: {DEFAULT_CONCURRENCY})",
        )
        parser.add_argument(
            "--report",
            type=Path,
            metavar="FILE",
            help="write what was copied, skipped and failed to FILE as JSON (default: no report)",
        )
        parser.add_argument(
            "--cleanup",
            choices=[mode.value for mode in Cleanup],
            default=Cleanup.FULL.value,
            help="which images a modification leaves in local container storage: full removes the "
            "pulled and the modified image, partial only the pulled one, none neither (default: full)",
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
        _add_defaults_file(parser)
        add_signature_option(parser)
        add_registry_options(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        run_settings = settings(parsed_args)
        request = PrepareRequest(
            environment_files=tuple(path.expanduser() for path in parsed_args.environment_files or []),
            environment_directories=_environment_directories(parsed_args.environment_directories),
            roles_file=parsed_args.roles_file,
            templates=parsed_args.templates,
            defaults_file=parsed_args.defaults_file,
            output_env_file=parsed_args.output_env_file,
            report_file=parsed_args.report,
            dry_run=parsed_args.dry_run,
            offline=parsed_args.offline,
            concurrency=parsed_args.concurrency,
            roles_paths=tuple(path.expanduser().resolve() for path in parsed_args.roles_paths),
            cleanup=Cleanup(parsed_args.cleanup),
            command_line=command_line(self.app.NAME),
            signatures=not parsed_args.remove_signatures,
        )
        control = RunControl(run_settings.timeout)
        listener: TransferListener = LoggingListener()
        display: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        if self.app.stderr.isatty():
            from imageprep.transfer.richprogress import RichProgressListener  # rich only on a terminal

            listener = display = RichProgressListener()
        with _stop_on_interrupt(control), display:
            outcome = prepare_images(request, run_settings, listener=listener, control=control)
        self._print(outcome)
        return 0

    def _print(self, outcome: PrepareOutcome) -> None:
        headline, *details = outcome.summary()
        if outcome.written_to is not None:
            headline += f", written to {outcome.written_to}"
        else:
            self.app.stdout.write(outcome.document)
        # One line by default, none with -q; where the images come from and go to with -v.
        if self.app_args.verbose_level >= 1:
            self.app.stderr.write(headline + "\n")
        if self.app_args.verbose_level >= 2:
            for line in details:
                self.app.stderr.write(line + "\n")
