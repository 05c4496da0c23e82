"""With the ovn neutron driver, OVNController needs neutron-server (upstream-behaviour.md 2.2, vector 8).

Each case runs in the main parameters and in ``<Role>Parameters``, with the driver set in the
entry or derived from NeutronMechanismDrivers, both for ovn and for another driver.
"""

from __future__ import annotations

from typing import Any

import pytest

from imageprep.catalogue.roles import Role
from tests.support.preparing import prepare

SERVICE = "OS::TripleO::Services::"
VECTOR_SET = {"namespace": "t", "name_prefix": "p", "name_suffix": "", "tag": "l"}
ISSUE_SET = {"namespace": "docker.io/t", "name_prefix": "p", "tag": "l"}
SERVER = "docker.io/t/p-neutron-server:l"
IRONIC_AGENT = "docker.io/t/p-ironic-neutron-agent:l"

# name: (the entry's `set` additions, other parameters, whether the driver is ovn); an explicit
# `set.neutron_driver` wins over NeutronMechanismDrivers either way.
DRIVERS: dict[str, tuple[dict[str, Any], dict[str, Any], bool]] = {
    "set-ovn": ({"neutron_driver": "ovn"}, {"NeutronMechanismDrivers": ["openvswitch"]}, True),
    "set-other": ({"neutron_driver": "other"}, {"NeutronMechanismDrivers": ["ovn"]}, False),
    "derived-unset": ({}, {}, True),
    "derived-ovn": ({}, {"NeutronMechanismDrivers": ["ovn"]}, True),
    "derived-other": ({}, {"NeutronMechanismDrivers": ["openvswitch"]}, False),
}


def _with_legacy_names(parameters: dict[str, str]) -> dict[str, str]:
    legacy = {"Docker" + name.removeprefix("Container"): value for name, value in parameters.items()}
    return {**parameters, **legacy}


def _parameters(
    scope: str, driver: str, set_values: dict[str, Any], services: tuple[str, ...], **entry: Any
) -> dict[str, Any]:
    """What one entry gives a deployed role running ``services``, in the main or the role's scope."""
    driver_set, other_parameters, _ = DRIVERS[driver]
    prepared = {"set": {**set_values, **driver_set}, **entry}
    role = Role("Compute", 1, tuple(SERVICE + name for name in services))
    if scope == "main":
        result = prepare({"ContainerImagePrepare": [prepared], **other_parameters}, roles=(role,))
        return result.parameters
    environment = {
        "ContainerImagePrepare": [{"set": {"tag": "main"}}],
        "ComputeContainerImagePrepare": [prepared],
        **other_parameters,
    }
    parameters: dict[str, Any] = prepare(environment, roles=(role,)).parameters["ComputeParameters"]
    return parameters


scopes = pytest.mark.parametrize("scope", ["main", "role"])
drivers = pytest.mark.parametrize("driver", list(DRIVERS))


@scopes
@drivers
def test_vector_8_neutron_server_and_ovn_controller_images(scope: str, driver: str) -> None:
    parameters = _parameters(scope, driver, VECTOR_SET, ("NeutronServer", "OVNController"))
    expected = {
        "ContainerNeutronApiImage": "t/p-neutron-server:l",
        "ContainerNeutronConfigImage": "t/p-neutron-server:l",
    }
    if DRIVERS[driver][2]:
        expected["ContainerOvnControllerConfigImage"] = "t/p-ovn-controller:l"
        expected["ContainerOvnControllerImage"] = "t/p-ovn-controller:l"
    assert parameters == _with_legacy_names(expected)


@scopes
@drivers
def test_ovn_controller_with_ironic_agent_gets_neutron_server_only_with_ovn(scope: str, driver: str) -> None:
    parameters = _parameters(
        scope, driver, ISSUE_SET, ("OVNController", "IronicNeutronAgent"), includes=["neutron"]
    )
    if DRIVERS[driver][2]:
        # neutron-server comes after ironic-neutron-agent in the catalogue, so its value wins
        expected = {
            "ContainerIronicNeutronAgentImage": IRONIC_AGENT,
            "ContainerNeutronApiImage": SERVER,
            "ContainerNeutronConfigImage": SERVER,
        }
    else:
        expected = {
            "ContainerIronicNeutronAgentImage": IRONIC_AGENT,
            "ContainerNeutronConfigImage": IRONIC_AGENT,
        }
    assert parameters == _with_legacy_names(expected)


@scopes
@drivers
def test_ovn_controller_alone_needs_neutron_server_only_with_ovn(scope: str, driver: str) -> None:
    parameters = _parameters(scope, driver, ISSUE_SET, ("OVNController",), includes=["neutron"])
    expected = {"ContainerNeutronApiImage": SERVER, "ContainerNeutronConfigImage": SERVER}
    assert parameters == (_with_legacy_names(expected) if DRIVERS[driver][2] else {})


def test_vector_8_images_are_neutron_server_then_ovn_controller() -> None:
    role = Role("Controller", 1, (SERVICE + "NeutronServer", SERVICE + "OVNController"))
    entry = {"set": {**VECTOR_SET, "neutron_driver": "ovn"}}
    result = prepare({"ContainerImagePrepare": [entry]}, roles=(role,))
    assert [str(image.source) for image in result.images] == ["t/p-neutron-server:l", "t/p-ovn-controller:l"]
    other = prepare(
        {"ContainerImagePrepare": [{"set": {**VECTOR_SET, "neutron_driver": "other"}}]}, roles=(role,)
    )
    assert [str(image.source) for image in other.images] == ["t/p-neutron-server:l"]
