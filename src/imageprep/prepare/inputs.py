"""Finding and loading a prepare's input files: environments and the roles file."""

from __future__ import annotations

from pathlib import Path

from imageprep.catalogue.roles import Role, parse_roles
from imageprep.catalogue.yamlfile import load_yaml_file
from imageprep.model.errors import ConfigurationError

HEAT_TEMPLATES_ROOT = Path("/usr/share/openstack-tripleo-heat-templates")


def resolve_roles_file(value: Path, templates_root: Path = HEAT_TEMPLATES_ROOT) -> Path:
    """``value`` as given, else relative to the heat templates root (as upstream accepted)."""
    candidates = [value]
    if not value.is_absolute():
        candidates.append(templates_root / value)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigurationError(
        f"cannot find roles file {value} (looked at: {', '.join(str(c) for c in candidates)})"
    )


def load_roles_file(value: Path, templates_root: Path = HEAT_TEMPLATES_ROOT) -> tuple[Role, ...]:
    """Load and validate the roles file named by ``-r``."""
    path = resolve_roles_file(value, templates_root)
    return parse_roles(load_yaml_file(path), str(path))
