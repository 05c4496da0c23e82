"""Parameters beyond image references: insecure registries, ceph credentials, roles' own lists."""

from __future__ import annotations

import pytest

from imageprep.catalogue.roles import Role
from imageprep.model.errors import ConfigurationError
from tests.support.preparing import prepare

NOVA = {"set": {"namespace": "docker.io/t", "name_prefix": "", "tag": "l"}, "includes": ["nova-api"]}


def test_every_container_parameter_has_its_legacy_docker_alias() -> None:
    parameters = prepare({"ContainerImagePrepare": [{"set": {"tag": "l"}}]}).parameters
    containers = {name for name in parameters if name.startswith("Container")}
    assert len(containers) == 142  # 148 distinct parameters, 6 of them not Container<X>Image
    for name in containers:
        assert parameters["Docker" + name[len("Container") :]] == parameters[name]
    assert "DockerPrometheusContainerImage" not in parameters  # not of the Container<X>Image form


def test_insecure_addresses_union_local_declared_and_operator_values() -> None:
    entries = [
        {**NOVA, "push_destination": True},
        {**NOVA, "includes": ["heat-api"], "push_destination": "127.0.0.5:5000"},
        {**NOVA, "includes": ["keystone"], "push_destination": "127.0.0.6:5000"},
    ]
    parameters = prepare(
        {"ContainerImagePrepare": entries, "DockerInsecureRegistryAddress": ["10.0.0.9:5000"]},
        insecure=frozenset({"127.0.0.5:5000"}),
    ).parameters
    assert parameters["DockerInsecureRegistryAddress"] == [
        "10.0.0.9:5000",
        "127.0.0.5:5000",
        "192.168.24.1:8787",
    ]


def test_a_push_destination_equal_to_the_local_registry_counts_as_local() -> None:
    result = prepare({"ContainerImagePrepare": [{**NOVA, "push_destination": "192.168.24.1:8787"}]})
    assert all(image.destination is not None and image.destination.local for image in result.images)
    assert result.parameters["DockerInsecureRegistryAddress"] == ["192.168.24.1:8787"]


def test_no_insecure_parameter_without_insecure_destinations() -> None:
    parameters = prepare(
        {"ContainerImagePrepare": [{**NOVA, "push_destination": "127.0.0.5:5000"}]}
    ).parameters
    assert "DockerInsecureRegistryAddress" not in parameters


def test_ceph_credentials_pass_through_keeps_operator_keys() -> None:
    entry = {"set": {"ceph_namespace": "quay.io:443/ceph", "ceph_image": "ceph", "ceph_tag": "latest"}}
    parameters = prepare(
        {"ContainerImagePrepare": [entry], "CephAnsibleExtraConfig": {"osd_pool_default_size": 1}},
        credentials={"quay.io:443": ("quay_username", "quay_password"), "docker.io": ("d", "e")},
    ).parameters
    assert parameters["CephAnsibleExtraConfig"] == {
        "osd_pool_default_size": 1,
        "ceph_docker_registry_username": "quay_username",
        "ceph_docker_registry_password": "quay_password",
    }


def test_no_ceph_pass_through_without_matching_credentials_or_ceph_image() -> None:
    assert (
        "CephAnsibleExtraConfig"
        not in prepare({"ContainerImagePrepare": [{}]}, credentials={"quay.io": ("u", "p")}).parameters
    )
    assert (
        "CephAnsibleExtraConfig"
        not in prepare(
            {"ContainerImagePrepare": [{"set": {"ceph_images": False}}]},
            credentials={"docker.io": ("u", "p")},
        ).parameters
    )


def test_role_specific_prepare_goes_under_role_parameters() -> None:
    roles = (
        Role("Controller", 1, ("OS::TripleO::Services::NovaApi",)),
        Role("Compute", 1, ("OS::TripleO::Services::NovaCompute",)),
    )
    parameters = prepare(
        {
            "ContainerImagePrepare": [{"set": {"tag": "l"}}],
            "ComputeContainerImagePrepare": [{"set": {"tag": "compute-special"}, "push_destination": True}],
        },
        roles=roles,
    ).parameters
    assert parameters["ContainerNovaComputeImage"].endswith("centos-binary-nova-compute:l")
    compute = parameters["ComputeParameters"]
    assert compute["ContainerNovaComputeImage"] == (
        "192.168.24.1:8787/tripleomaster/centos-binary-nova-compute:compute-special"
    )
    assert compute["DockerNovaComputeImage"] == compute["ContainerNovaComputeImage"]
    assert "ContainerNovaApiImage" not in compute  # evaluated with only the Compute role
    assert "ControllerParameters" not in parameters
    assert parameters["DockerInsecureRegistryAddress"] == ["192.168.24.1:8787"]


def test_a_non_integer_role_count_names_the_parameter() -> None:
    roles = (Role("Compute", 1, ("OS::TripleO::Services::NovaCompute",)),)
    with pytest.raises(ConfigurationError, match="ComputeCount"):
        prepare({"ContainerImagePrepare": [{}], "ComputeCount": "two"}, roles=roles)


def test_an_entry_overridden_entirely_is_not_copied() -> None:
    entries = [{**NOVA, "push_destination": True}, {**NOVA, "set": {"namespace": "mylocal", "tag": "x"}}]
    result = prepare({"ContainerImagePrepare": entries})
    assert [image.entry.index for image in result.images] == [1]
    assert not result.copies


def test_operator_insecure_addresses_may_be_a_comma_separated_string() -> None:
    parameters = prepare(
        {
            "ContainerImagePrepare": [{**NOVA, "push_destination": True}],
            "DockerInsecureRegistryAddress": "10.0.0.9:5000, 10.0.0.8:5000",
        }
    ).parameters
    assert parameters["DockerInsecureRegistryAddress"] == [
        "10.0.0.8:5000",
        "10.0.0.9:5000",
        "192.168.24.1:8787",
    ]
