"""Roles and the services they deploy: what decides which images a deployment needs."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imageprep.model.errors import ConfigurationError

LOG = logging.getLogger(__name__)
HEAT_NONE = "OS::Heat::None"


@dataclass(frozen=True, slots=True)
class Role:
    """A role of the roles file."""

    name: str
    count_default: int
    services_default: tuple[str, ...]


def parse_roles(document: Any, origin: str) -> tuple[Role, ...]:
    """Validate a roles file: a list of ``{name, CountDefault, ServicesDefault}`` mappings."""
    if not isinstance(document, list):
        raise ConfigurationError(f"{origin}: a roles file must be a list of roles")
    if not document:
        # The original tooling read an empty list as "no filter"; here no role deploys anything.
        LOG.warning(
            "%s: the roles file lists no roles, so no role deploys a service and every image is left "
            "out; to prepare every image, give no roles file",
            origin,
        )
    roles = []
    for position, raw in enumerate(document):
        where = f"{origin}: role #{position + 1}"
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
            raise ConfigurationError(f"{where}: each role must be a mapping with a `name`")
        where = f"{origin}: role {raw['name']}"
        count = raw.get("CountDefault", 0)
        if isinstance(count, bool) or not isinstance(count, int):
            raise ConfigurationError(f"{where}: CountDefault must be an integer, not {count!r}")
        services = raw.get("ServicesDefault") or []
        if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
            raise ConfigurationError(f"{where}: ServicesDefault must be a list of service names")
        roles.append(Role(raw["name"], count, tuple(services)))
    return tuple(roles)


def _role_count(role: Role, parameters: Mapping[str, Any]) -> int:
    parameter = f"{role.name}Count"
    value = parameters.get(parameter, role.count_default)
    if isinstance(value, bool):
        raise ConfigurationError(f"{parameter} must be an integer, not {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"Unable to convert {parameter} to an integer: {value!r}") from exc


def _role_services(role: Role, parameters: Mapping[str, Any]) -> tuple[str, ...]:
    parameter = f"{role.name}Services"
    if parameter not in parameters:
        return role.services_default
    value = parameters[parameter]
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ConfigurationError(f"{parameter} must be a list of service names")
    return tuple(value)


def enabled_services(
    roles: Sequence[Role], parameters: Mapping[str, Any], resource_registry: Mapping[str, Any]
) -> frozenset[str]:
    """Services of every deployed role (count > 0), less those mapped to ``OS::Heat::None``."""
    disabled = {name for name, target in resource_registry.items() if target == HEAT_NONE}
    services: set[str] = set()
    for role in roles:
        if _role_count(role, parameters) > 0:
            services.update(_role_services(role, parameters))
    return frozenset(services - disabled)
