"""The prepare run: every entry (and every role's own entries) evaluated into heat parameters."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from imageprep.catalogue.defaults import Defaults
from imageprep.catalogue.entries import BOOLEAN_SET_KEYS, NULLABLE_SET_KEYS, PrepareEntry, parse_entries
from imageprep.catalogue.roles import Role, enabled_services
from imageprep.catalogue.template import CatalogueTemplate
from imageprep.model.control import RunControl
from imageprep.prepare.environment import Environment
from imageprep.prepare.evaluate import EvaluationContext, PreparedImage, evaluate_entry
from imageprep.prepare.inspection import ImageInspector
from imageprep.prepare.parameters import (
    CEPH_EXTRA_PARAM,
    INSECURE_PARAM,
    address_list,
    ceph_registry_credentials,
    image_parameters,
    insecure_addresses,
    surviving_images,
    with_legacy_aliases,
)

LOG = logging.getLogger(__name__)
PREPARE_PARAM = "ContainerImagePrepare"


@dataclass(frozen=True, slots=True)
class PrepareInputs:
    """Inputs of one prepare run, already loaded and validated by the caller.

    ``control`` carries the run's total deadline (``--timeout``) and its interruption; the registry
    session the inspector uses must share it, so that requests stop too.
    """

    environment: Environment
    defaults: Defaults
    template: CatalogueTemplate
    local_registry: str
    started_at: datetime
    roles: tuple[Role, ...] | None = None
    inspector: ImageInspector | None = None
    insecure_registries: frozenset[str] = frozenset()
    insecure_probe: Callable[[str], bool] | None = None
    credentials: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    concurrency: int = 8
    dry_run: bool = False
    control: RunControl | None = None


@dataclass(frozen=True, slots=True)
class PrepareResult:
    """The parameters to write and the images they refer to (those to copy)."""

    parameters: dict[str, Any]
    images: tuple[PreparedImage, ...]

    @property
    def copies(self) -> tuple[PreparedImage, ...]:
        """Images that go to a push destination."""
        return tuple(image for image in self.images if image.destination)


def _string_set_keys(defaults: Defaults) -> frozenset[str]:
    return frozenset(defaults.template_defaults) - NULLABLE_SET_KEYS - BOOLEAN_SET_KEYS


def _entries(settings: PrepareInputs, parameter: str) -> tuple[PrepareEntry, ...]:
    environment = settings.environment
    value = environment.parameters.get(parameter)
    keys = _string_set_keys(settings.defaults)
    if value == []:
        # As the original: an empty list means the defaults, which may not be what was meant.
        LOG.warning(
            "%s: %s is an empty list; using the default entries from %s",
            environment.origin(parameter),
            parameter,
            settings.defaults.origin,
        )
    elif value is None:
        LOG.info("No %s parameter defined; using the defaults from %s", parameter, settings.defaults.origin)
    if value is None or value == []:
        return parse_entries(
            settings.defaults.container_image_prepare(),
            origin=settings.defaults.origin,
            parameter=parameter,
            string_set_keys=keys,
            local_registry=settings.local_registry,
        )
    return parse_entries(
        value,
        origin=environment.origin(parameter),
        parameter=parameter,
        string_set_keys=keys,
        local_registry=settings.local_registry,
    )


def _evaluate(
    settings: PrepareInputs, entries: Sequence[PrepareEntry], roles: Sequence[Role] | None
) -> list[PreparedImage]:
    environment = settings.environment
    services = None
    if roles is not None:
        services = enabled_services(roles, environment.parameters, environment.resource_registry)
    context = EvaluationContext(
        template=settings.template,
        template_defaults=settings.defaults.template_defaults,
        services=services,
        mechanism_drivers=environment.parameters.get("NeutronMechanismDrivers"),
        default_append_tag=f"-modified-{settings.started_at.strftime('%Y%m%d%H%M%S')}",
        inspector=settings.inspector,
        concurrency=settings.concurrency,
        dry_run=settings.dry_run,
    )
    images: list[PreparedImage] = []
    for entry in entries:
        if settings.control is not None:
            settings.control.check(f"evaluating the entry of {entry.origin}")
        images.extend(evaluate_entry(entry, context))
    return surviving_images(images)


def _role_prepares(settings: PrepareInputs) -> list[tuple[str, tuple[Role, ...] | None]]:
    """Roles with their own ``<Role>ContainerImagePrepare`` (all such parameters without a roles file)."""
    parameters = settings.environment.parameters
    if settings.roles is not None:
        return [
            (role.name, (role,)) for role in settings.roles if parameters.get(f"{role.name}{PREPARE_PARAM}")
        ]
    names = [key[: -len(PREPARE_PARAM)] for key in parameters if key.endswith(PREPARE_PARAM)]
    return [(name, None) for name in sorted(names) if name and parameters.get(f"{name}{PREPARE_PARAM}")]


def _insecure_test(settings: PrepareInputs) -> Callable[[str], bool]:
    """Declared insecure, or (when a probe is given) found to lack verified TLS."""
    probe = settings.insecure_probe

    def is_insecure(host: str) -> bool:
        return host in settings.insecure_registries or (probe is not None and probe(host))

    return is_insecure


def prepare_parameters(settings: PrepareInputs) -> PrepareResult:
    """Evaluate every entry and build the parameters heat will get (nothing is copied here)."""
    environment = settings.environment
    main_images = _evaluate(settings, _entries(settings, PREPARE_PARAM), settings.roles)
    parameters: dict[str, Any] = with_legacy_aliases(image_parameters(main_images))
    every_image = list(main_images)
    for role_name, role_data in _role_prepares(settings):
        role_images = _evaluate(settings, _entries(settings, f"{role_name}{PREPARE_PARAM}"), role_data)
        parameters[f"{role_name}Parameters"] = with_legacy_aliases(image_parameters(role_images))
        every_image.extend(role_images)
    insecure = insecure_addresses(
        address_list(environment.parameters.get(INSECURE_PARAM)), every_image, _insecure_test(settings)
    )
    if insecure:
        parameters[INSECURE_PARAM] = insecure
    ceph_extra = ceph_registry_credentials(
        main_images, settings.credentials, environment.parameters.get(CEPH_EXTRA_PARAM)
    )
    if ceph_extra is not None:
        parameters[CEPH_EXTRA_PARAM] = ceph_extra
    return PrepareResult(parameters=parameters, images=tuple(every_image))
