"""``prepare``: evaluate ContainerImagePrepare, discover tags, copy and modify images, write parameters.

Two ways in, one way through:

- :func:`prepare_images` is what ``imageprep prepare`` runs: environment and roles files in, the
  parameters document out (written atomically to the output file, or handed back to print), with
  a JSON report of the copies when asked;
- :func:`container_images_prepare_multi` takes what the original's function of that name took
  (the merged heat environment, the roles data, ``dry_run``, ``cleanup``) and returns the same
  parameters dict, for automation (an Ansible module, a deployment tool) that called it.

Every output is checked to be writable before any registry is contacted, and nothing is written
unless every image made it.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from imageprep.catalogue.defaults import Defaults, load_defaults
from imageprep.catalogue.roles import Role, parse_roles
from imageprep.catalogue.template import CatalogueTemplate
from imageprep.model.control import RunControl
from imageprep.model.errors import ConfigurationError
from imageprep.prepare.envfile import check_writable, render_document, write_atomically
from imageprep.prepare.environment import (
    Environment,
    environment_files,
    environment_from_mapping,
    load_environment,
)
from imageprep.prepare.evaluate import PreparedImage
from imageprep.prepare.inputs import HEAT_TEMPLATES_ROOT, load_roles_file
from imageprep.prepare.localregistry import local_registry_address
from imageprep.prepare.parameters import INSECURE_PARAM, address_list
from imageprep.prepare.plan import PrepareInputs, PrepareResult, prepare_parameters
from imageprep.registry.credentials import Credential, parse_registry_credentials
from imageprep.settings import Settings
from imageprep.transfer.listener import TransferListener
from imageprep.transfer.report import TransferReport
from imageprep.usecases.cleanup import Cleanup
from imageprep.usecases.session import Session

LOG = logging.getLogger(__name__)
DEFAULT_CONCURRENCY = 8
CREDENTIALS_PARAM = "ContainerImageRegistryCredentials"
MIRROR_PARAM = "DockerRegistryMirror"
ARCHITECTURES_PARAM = "AdditionalArchitectures"


@dataclass(frozen=True, slots=True)
class PrepareRequest:
    """What to prepare: input files (paths as given, already expanded), outputs, and how."""

    environment_files: tuple[Path, ...] = ()
    environment_directories: tuple[Path, ...] = ()
    roles_file: Path | None = None
    templates: Path = HEAT_TEMPLATES_ROOT
    defaults_file: Path | None = None
    output_env_file: Path | None = None
    report_file: Path | None = None
    dry_run: bool = False
    offline: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    roles_paths: tuple[Path, ...] = ()
    cleanup: Cleanup = Cleanup.FULL
    command_line: str = "imageprep prepare"
    # Signatures, attestations and SBOMs attached to each copied image go along (--remove-signatures).
    signatures: bool = True


@dataclass(frozen=True, slots=True)
class PrepareOutcome:
    """What a prepare produced: the parameters, the images behind them, the document, the copies."""

    parameters: dict[str, Any]
    images: tuple[PreparedImage, ...]
    document: str
    written_to: Path | None = None
    report: TransferReport | None = None

    def summary(self) -> list[str]:
        """A headline, then how many images come from and go to each namespace / registry."""
        sources = Counter(image.source.name.rsplit("/", 1)[0] for image in self.images)
        lines = [f"{len(self.images)} images, {len(self.parameters)} parameters"]
        lines += [f"  from {namespace}: {count}" for namespace, count in sorted(sources.items())]
        destinations = Counter(image.destination.host for image in self.images if image.destination)
        lines += [f"  to {destination}: {count}" for destination, count in sorted(destinations.items())]
        modified = sum(1 for image in self.images if image.modified)
        if modified:
            lines.append(f"  modified: {modified}")
        return lines


def prepare_images(
    request: PrepareRequest,
    settings: Settings,
    *,
    listener: TransferListener | None = None,
    control: RunControl | None = None,
) -> PrepareOutcome:
    """Run a prepare (see the module docstring); ``control`` stops it (deadline, Ctrl-C)."""
    if request.offline and not request.dry_run:
        raise ConfigurationError("--offline only makes sense with --dry-run")
    for output in (request.output_env_file, request.report_file):
        if output is not None:
            check_writable(output)
    environment = load_environment(
        environment_files(request.environment_directories, request.environment_files)
    )
    roles = load_roles_file(request.roles_file, request.templates) if request.roles_file else None
    defaults = load_defaults(request.defaults_file)
    result, report = _run(environment, roles, request, defaults, settings, listener, control)
    document = render_document(
        {"parameter_defaults": result.parameters}, request.command_line, datetime.now().astimezone()
    )
    if request.output_env_file is not None:
        write_atomically(request.output_env_file, document)
    return PrepareOutcome(result.parameters, result.images, document, request.output_env_file, report)


def container_images_prepare_multi(
    environment: Mapping[str, Any],
    roles_data: Sequence[Mapping[str, Any]] | None = None,
    dry_run: bool = False,
    cleanup: str = Cleanup.FULL.value,
    *,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """The parameters for a merged heat ``environment`` (``{parameter_defaults: ..., ...}``).

    ``roles_data`` is the roles list (``None``: no service filtering); ``cleanup`` is ``full``,
    ``partial`` or ``none``. Without ``settings`` the containers tools' environment is used, as
    the CLI uses it (auth files, ``SSL_CERT_FILE``, proxies, ``IMAGEPREP_IMAGE_SERVE_ROOT``).
    Raises :class:`~imageprep.model.errors.ImageprepError` on bad input or failed copies.
    """
    try:
        mode = Cleanup(cleanup)
    except ValueError:
        raise ConfigurationError(
            f"cleanup must be one of: {', '.join(c.value for c in Cleanup)}, not {cleanup!r}"
        ) from None
    if settings is None:
        settings = Settings.from_environ(os.environ, Path.home())
    merged = environment_from_mapping(environment, "<environment>")
    roles = parse_roles(list(roles_data), "<roles_data>") if roles_data is not None else None
    request = PrepareRequest(dry_run=dry_run, cleanup=mode)
    result, _ = _run(merged, roles, request, load_defaults(), settings, None, None)
    return result.parameters


# --- the one way through ---------------------------------------------------------------------------


def _credentials(environment: Environment) -> dict[str, Credential]:
    return parse_registry_credentials(environment.parameters.get(CREDENTIALS_PARAM))


def _inputs(
    environment: Environment,
    roles: tuple[Role, ...] | None,
    request: PrepareRequest,
    defaults: Defaults,
    settings: Settings,
    session: Session | None,
    control: RunControl | None,
) -> PrepareInputs:
    from imageprep.usecases.inspector import RegistryInspector

    registries = session.registries if session is not None else None
    return PrepareInputs(
        environment=environment,
        defaults=defaults,
        template=CatalogueTemplate.builtin(settings.cache_directory),
        local_registry=local_registry_address(
            environment.parameters.get("LocalContainerRegistry"), settings.hostname
        ),
        started_at=datetime.now(UTC),
        roles=roles,
        inspector=RegistryInspector(session) if session is not None else None,
        insecure_registries=settings.insecure_registries | _declared_insecure(environment),
        insecure_probe=(lambda host: registries.probe(host) != "https") if registries is not None else None,
        credentials=MappingProxyType(
            {host: (login.username, login.password) for host, login in _credentials(environment).items()}
        ),
        concurrency=request.concurrency,
        dry_run=request.dry_run,
        control=control,
    )


def _declared_insecure(environment: Environment) -> frozenset[str]:
    return frozenset(address_list(environment.parameters.get(INSECURE_PARAM)))


def _run(
    environment: Environment,
    roles: tuple[Role, ...] | None,
    request: PrepareRequest,
    defaults: Defaults,
    settings: Settings,
    listener: TransferListener | None,
    control: RunControl | None,
) -> tuple[PrepareResult, TransferReport | None]:
    """Evaluate, and (unless a dry run) copy; the report of the copies, if any were made."""
    control = control or RunControl(settings.timeout)
    if request.offline:
        return prepare_parameters(
            _inputs(environment, roles, request, defaults, settings, None, control)
        ), None
    mirror = environment.parameters.get(MIRROR_PARAM)
    with Session(
        settings,
        credentials=_credentials(environment),
        insecure=_declared_insecure(environment),
        mirror=mirror if isinstance(mirror, str) and mirror else None,
        control=control,
    ) as session:
        result = prepare_parameters(
            _inputs(environment, roles, request, defaults, settings, session, control)
        )
        if request.dry_run or not result.copies:
            return result, None
        report = _copy(result, environment, request, session, listener)
    # Past the deadline the failures all say so; one clear line says it better.
    control.check("every image was copied")
    report.raise_for_failures()  # the output file is written only when every image made it
    return result, report


def _copy(
    result: PrepareResult,
    environment: Environment,
    request: PrepareRequest,
    session: Session,
    listener: TransferListener | None,
) -> TransferReport:
    from imageprep.usecases.copying import copy_prepared, wants_all_architectures

    report = copy_prepared(
        result.images,
        session,
        multi_arch=wants_all_architectures(environment.parameters.get(ARCHITECTURES_PARAM)),
        concurrency=request.concurrency,
        listener=listener,
        roles_path=request.roles_paths,
        cleanup=request.cleanup,
        attachments=request.signatures,
    )
    if request.report_file is not None:
        write_atomically(request.report_file, report.to_json() + "\n")
    return report
