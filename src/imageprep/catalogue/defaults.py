"""The built-in defaults (package data), optionally overridden by an operator's file."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from imageprep.catalogue.yamlfile import load_yaml_file, parse_yaml
from imageprep.model.errors import CatalogueError, ConfigurationError

DEFAULTS_RESOURCE = "defaults.yaml"


@dataclass(frozen=True, slots=True)
class Defaults:
    """Template variables every entry starts from, and the default ContainerImagePrepare list."""

    template_defaults: MappingProxyType[str, Any]
    default_entries: tuple[Any, ...]
    origin: str

    def container_image_prepare(self) -> list[Any]:
        """A fresh copy of the default entry list, safe for the caller to change."""
        return copy.deepcopy(list(self.default_entries))


def _builtin_document() -> Any:
    text = resources.files("imageprep.catalogue").joinpath("data", DEFAULTS_RESOURCE).read_text("utf-8")
    return parse_yaml(text, f"<built-in {DEFAULTS_RESOURCE}>", trusted=True)


def _sections(document: Any, origin: str, error: type[Exception]) -> tuple[dict[str, Any], list[Any] | None]:
    if not isinstance(document, dict):
        raise error(
            f"{origin}: a defaults file must be a mapping with template_defaults and/or "
            "container_image_prepare"
        )
    unknown = sorted(set(document) - {"template_defaults", "container_image_prepare"})
    if unknown:
        raise error(f"{origin}: unknown key(s) {', '.join(map(str, unknown))} in defaults file")
    template_defaults = document.get("template_defaults") or {}
    if not isinstance(template_defaults, dict):
        raise error(f"{origin}: template_defaults must be a mapping")
    entries = document.get("container_image_prepare")
    if entries is not None and not isinstance(entries, list):
        raise error(f"{origin}: container_image_prepare must be a list of entries")
    return template_defaults, entries


def load_defaults(override: Path | None = None) -> Defaults:
    """The built-in defaults, with ``override``'s values merged over them when given."""
    builtin_values, builtin_entries = _sections(_builtin_document(), "<built-in defaults>", CatalogueError)
    values = dict(builtin_values)
    entries = builtin_entries or []
    origin = "<built-in defaults>"
    if override is not None:
        extra_values, extra_entries = _sections(load_yaml_file(override), str(override), ConfigurationError)
        values.update(extra_values)
        if extra_entries is not None:
            entries = extra_entries
        origin = str(override)
    return Defaults(MappingProxyType(values), tuple(entries), origin)
