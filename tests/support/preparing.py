"""Running the prepare library on in-memory environments, for unit tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from imageprep.catalogue.defaults import load_defaults
from imageprep.catalogue.roles import Role
from imageprep.catalogue.template import CatalogueTemplate
from imageprep.prepare.environment import Environment
from imageprep.prepare.inspection import ImageInspector
from imageprep.prepare.plan import PrepareInputs, PrepareResult, prepare_parameters

SPEC = Path(__file__).resolve().parents[3] / "shared" / "spec"
FIXED_TIME = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def environment(parameters: dict[str, Any], resource_registry: dict[str, Any] | None = None) -> Environment:
    return Environment(
        parameters=MappingProxyType(parameters),
        resource_registry=MappingProxyType(resource_registry or {}),
        origins=MappingProxyType(dict.fromkeys(parameters, "env.yaml")),
    )


def prepare(
    parameters: dict[str, Any],
    *,
    roles: tuple[Role, ...] | None = None,
    resource_registry: dict[str, Any] | None = None,
    local_registry: str = "192.168.24.1:8787",
    inspector: ImageInspector | None = None,
    credentials: dict[str, tuple[str, str]] | None = None,
    insecure: frozenset[str] = frozenset(),
    dry_run: bool = False,
) -> PrepareResult:
    settings = PrepareInputs(
        environment=environment(parameters, resource_registry),
        defaults=load_defaults(),
        template=CatalogueTemplate.builtin(),
        local_registry=local_registry,
        started_at=FIXED_TIME,
        roles=roles,
        inspector=inspector,
        credentials=credentials or {},
        insecure_registries=insecure,
        dry_run=dry_run,
    )
    return prepare_parameters(settings)
