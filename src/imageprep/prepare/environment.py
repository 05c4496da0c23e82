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
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
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


class _Merger:
    """Heat environments merged one after the other."""

    def __init__(self) -> None:
        self.parameters: dict[str, Any] = {}
        self.registry: dict[str, Any] = {}
        self.origins: dict[str, str] = {}

    def add(self, document: Any, origin: str) -> None:
        if document is None:
            return
        if not isinstance(document, Mapping):
            raise ConfigurationError(
                f"{origin}: a heat environment must be a mapping (parameter_defaults:, resource_registry:)"
            )
        for section in SECTIONS:
            value = document.get(section)
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise ConfigurationError(f"{origin}: {section} must be a mapping")
            bad_keys = [key for key in value if not isinstance(key, str)]
            if bad_keys:
                raise ConfigurationError(f"{origin}: {section}: keys must be names, not {bad_keys[0]!r}")
        self.parameters = _merge(self.parameters, document.get("parameter_defaults") or {})
        self.registry = _merge(self.registry, document.get("resource_registry") or {})
        self.origins.update(dict.fromkeys(document.get("parameter_defaults") or {}, origin))

    def environment(self, files: tuple[Path, ...]) -> Environment:
        return Environment(
            MappingProxyType(self.parameters),
            MappingProxyType(self.registry),
            MappingProxyType(self.origins),
            files,
        )


def load_environment(paths: Sequence[Path]) -> Environment:
    """Load and merge ``paths`` in order."""
    merger = _Merger()
    for path in paths:
        merger.add(load_yaml_file(path), str(path))
    return merger.environment(tuple(paths))


def environment_from_mapping(document: Mapping[str, Any], origin: str) -> Environment:
    """An environment already loaded (and merged) by the caller, checked like a file would be."""
    merger = _Merger()
    merger.add(document, origin)
    return merger.environment(())
