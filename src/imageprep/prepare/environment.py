"""Heat environment files, merged the way heat merges them, remembering who set what.

Later files win. Mappings (``parameter_defaults``, ``resource_registry`` and mapping-valued
parameters such as ``ContainerImageRegistryCredentials``) merge key by key; lists and scalars are
replaced whole, so a later ``ContainerImagePrepare`` replaces an earlier one. Each parameter
remembers the file that last set it, so errors can name that file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from imageprep.catalogue.yamlfile import load_yaml_file
from imageprep.model.errors import ConfigurationError

SECTIONS = ("parameter_defaults", "resource_registry")


@dataclass(frozen=True, slots=True)
class Environment:
    """The merged environment."""

    parameters: MappingProxyType[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    resource_registry: MappingProxyType[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    origins: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))
    files: tuple[Path, ...] = ()

    def origin(self, parameter: str) -> str:
        """The file that set ``parameter`` (for error messages)."""
        return self.origins.get(parameter, "<defaults>")

    def with_parameters(self, overrides: Mapping[str, Any], origin: str) -> Environment:
        """A copy with ``overrides`` replacing parameters (used for role-specific prepares)."""
        parameters = {**self.parameters, **overrides}
        origins = {**self.origins, **dict.fromkeys(overrides, origin)}
        return Environment(
            MappingProxyType(parameters), self.resource_registry, MappingProxyType(origins), self.files
        )


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def environment_files(directories: Iterable[Path], files: Iterable[Path]) -> list[Path]:
    """Every ``*.yaml`` of each directory (sorted by name), then the explicit files, in order."""
    found: list[Path] = []
    for directory in directories:
        if not directory.is_dir():
            raise ConfigurationError(f"{directory}: environment directory does not exist")
        found.extend(sorted(path for path in directory.glob("*.yaml") if path.is_file()))
    found.extend(files)
    return found


def load_environment(paths: Sequence[Path]) -> Environment:
    """Load and merge ``paths`` in order."""
    parameters: dict[str, Any] = {}
    registry: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for path in paths:
        document = load_yaml_file(path)
        if document is None:
            continue
        if not isinstance(document, dict):
            raise ConfigurationError(
                f"{path}: a heat environment must be a mapping (parameter_defaults:, resource_registry:)"
            )
        for section in SECTIONS:
            value = document.get(section)
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfigurationError(f"{path}: {section} must be a mapping")
            bad_keys = [key for key in value if not isinstance(key, str)]
            if bad_keys:
                raise ConfigurationError(f"{path}: {section}: keys must be names, not {bad_keys[0]!r}")
        parameters = _merge(parameters, document.get("parameter_defaults") or {})
        registry = _merge(registry, document.get("resource_registry") or {})
        origins.update(dict.fromkeys(document.get("parameter_defaults") or {}, str(path)))
    return Environment(
        MappingProxyType(parameters), MappingProxyType(registry), MappingProxyType(origins), tuple(paths)
    )
