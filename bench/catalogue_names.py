"""The 95 image names of the catalogue, as ``tripleomaster/centos-binary-<name>`` repositories."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

CATALOGUE = Path("/work/shared/spec/catalogue.yaml")
NAMESPACE = "tripleomaster"
PREFIX = "centos-binary-"
TAG = "current-tripleo"

_PREFIXED = re.compile(r"\{name_prefix\}(?P<name>[^{]+)\{name_suffix\}")
_VARIABLE = re.compile(r"/\{(?P<var>[a-z_]+?)_image\}")
_LITERAL = re.compile(r"/(?P<name>[a-z0-9-]+):")


def image_names(catalogue: Path = CATALOGUE) -> list[str]:
    """One short name per catalogue entry (``nova-api``, ``ceph-grafana``, ``tripleo-ansible-ee``...)."""
    entries = yaml.safe_load(catalogue.read_text())["images"]
    names: list[str] = []
    for entry in entries:
        text = entry["image"]
        match = _PREFIXED.search(text) or _LITERAL.search(text)
        if match is not None:
            names.append(match.group("name"))
            continue
        variable = _VARIABLE.search(text)
        if variable is None:
            raise ValueError(f"cannot name catalogue image {text!r}")
        names.append(variable.group("var").replace("_", "-"))
    if len(set(names)) != len(names):
        raise ValueError("catalogue image names are not unique")
    return names


def repositories(catalogue: Path = CATALOGUE) -> list[str]:
    """``tripleomaster/centos-binary-<name>`` for every catalogue image."""
    return [f"{NAMESPACE}/{PREFIX}{name}" for name in image_names(catalogue)]
