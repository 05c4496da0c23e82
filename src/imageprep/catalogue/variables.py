"""The template variables one entry renders the catalogue with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OVN = "ovn"
OTHER_DRIVER = "other"


def neutron_driver_for(mechanism_drivers: Any) -> str:
    """``ovn`` when NeutronMechanismDrivers is unset or names ovn, else ``other``."""
    if mechanism_drivers is None:
        return OVN
    if isinstance(mechanism_drivers, str):
        names = [name.strip() for name in mechanism_drivers.split(",")]
    elif isinstance(mechanism_drivers, list):
        names = [str(name) for name in mechanism_drivers]
    else:
        names = [str(mechanism_drivers)]
    return OVN if OVN in names else OTHER_DRIVER


def _with_hyphen(value: Any, *, trailing: bool) -> str:
    text = "" if value is None else str(value)
    if not text:
        return ""
    if trailing:
        return text if text.endswith("-") else text + "-"
    return text if text.startswith("-") else "-" + text


def template_variables(
    defaults: Mapping[str, Any], set_values: Mapping[str, Any], mechanism_drivers: Any
) -> dict[str, Any]:
    """The entry's ``set`` merged over the defaults, normalised for rendering."""
    variables = {**defaults, **set_values}
    variables["name_prefix"] = _with_hyphen(variables.get("name_prefix"), trailing=True)
    variables["name_suffix"] = _with_hyphen(variables.get("name_suffix"), trailing=False)
    if not variables.get("neutron_driver"):
        variables["neutron_driver"] = neutron_driver_for(mechanism_drivers)
    if variables.get("ceph_images") is None:
        variables["ceph_images"] = True
    return variables
