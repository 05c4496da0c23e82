"""The operator documentation's examples (spec section 8) that need no registry."""

from __future__ import annotations

import pytest

from imageprep.catalogue.roles import Role
from imageprep.model.errors import TransientError
from imageprep.model.reference import ImageReference
from imageprep.prepare.inspection import ImageFacts
from tests.support.preparing import prepare

HASH = "35414701c176a6288fc2ad141dad0f73624dcb94_43527485"
TRIPLEO_SET = {
    "namespace": "docker.io/tripleomaster",
    "name_prefix": "centos-binary-",
    "name_suffix": "",
    "tag": HASH,
}


def test_default_registry_points_parameters_at_the_source() -> None:
    result = prepare({"ContainerImagePrepare": [{"set": TRIPLEO_SET}]})
    expected = f"docker.io/tripleomaster/centos-binary-nova-api:{HASH}"
    assert result.parameters["DockerNovaApiImage"] == expected
    assert result.parameters["ContainerNovaApiImage"] == expected
    assert result.parameters["DockerNeutronMetadataImage"] == (
        f"docker.io/tripleomaster/centos-binary-neutron-metadata-agent:{HASH}"
    )
    assert not result.copies


def test_push_destination_address_replaces_only_the_registry() -> None:
    entry = {"push_destination": "192.168.24.1:8787", "set": TRIPLEO_SET}
    parameters = prepare({"ContainerImagePrepare": [entry]}).parameters
    assert (
        parameters["DockerNovaApiImage"] == f"192.168.24.1:8787/tripleomaster/centos-binary-nova-api:{HASH}"
    )
    assert parameters["DockerNeutronMetadataImage"] == (
        f"192.168.24.1:8787/tripleomaster/centos-binary-neutron-metadata-agent:{HASH}"
    )


def test_undercloud_registry_true_uses_the_local_registry() -> None:
    entry = {"push_destination": True, "set": TRIPLEO_SET}
    result = prepare({"ContainerImagePrepare": [entry], "LocalContainerRegistry": "192.168.24.1"})
    # LocalContainerRegistry is resolved by the caller; the library receives the address.
    assert result.parameters["ContainerNovaApiImage"].startswith("192.168.24.1:8787/tripleomaster/")
    assert result.parameters["DockerInsecureRegistryAddress"] == ["192.168.24.1:8787"]
    assert all(image.destination is not None and image.destination.local for image in result.images)


def test_ceph_images_false_skips_every_ceph_side_image() -> None:
    entry = {"push_destination": "192.168.24.1:8787", "set": {"ceph_images": False}}
    result = prepare({"ContainerImagePrepare": [entry]})
    for parameter in (
        "ContainerCephDaemonImage",
        "PrometheusContainerImage",
        "AlertManagerContainerImage",
        "NodeExporterContainerImage",
        "GrafanaContainerImage",
        "KeepalivedContainerImage",
        "HaproxyContainerImage",
    ):
        assert parameter not in result.parameters
    assert len(result.images) == 88
    assert "ContainerNovaApiImage" in result.parameters


def test_layering_a_locally_built_nova_api_hotfix() -> None:
    entries = [
        {
            "tag_from_label": "rdo_version",
            "push_destination": True,
            "excludes": ["nova-api"],
            "set": {**TRIPLEO_SET, "tag": "current-tripleo"},
        },
        {
            "push_destination": True,
            "includes": ["nova-api"],
            "set": {"namespace": "mylocal", "tag": "myhotfix"},
        },
    ]
    parameters = prepare({"ContainerImagePrepare": entries}).parameters
    assert parameters["DockerNovaApiImage"] == "192.168.24.1:8787/mylocal/centos-binary-nova-api:myhotfix"
    assert parameters["DockerNeutronMetadataImage"] == (
        "192.168.24.1:8787/tripleomaster/centos-binary-neutron-metadata-agent:current-tripleo"
    )


def test_layering_ceph_split_out_with_includes_and_excludes() -> None:
    entries = [
        {
            "push_destination": True,
            "set": {**TRIPLEO_SET, "tag": "current-tripleo"},
            "tag_from_label": "{version}-{release}",
            "excludes": ["ceph"],
        },
        {
            "push_destination": True,
            "set": {"ceph_image": "ceph", "ceph_namespace": "docker.io/ceph", "ceph_tag": "latest"},
            "includes": ["ceph"],
        },
    ]
    result = prepare({"ContainerImagePrepare": entries})
    assert result.parameters["ContainerCephDaemonImage"] == "192.168.24.1:8787/ceph/ceph:latest"
    by_entry = {image.catalogue.params[0]: image.entry.index for image in result.images}
    assert by_entry["ContainerCephDaemonImage"] == 1
    assert by_entry["GrafanaContainerImage"] == 1  # quay.io/ceph/ceph-grafana matches "ceph"
    assert by_entry["ContainerNovaApiImage"] == 0
    assert by_entry["PrometheusContainerImage"] == 0  # quay.io/prometheus/... has no "ceph"


def test_includes_win_over_excludes() -> None:
    base = {"namespace": "192.0.2.0:8787/t", "name_prefix": "p", "name_suffix": "", "tag": "l"}
    only_includes = prepare({"ContainerImagePrepare": [{"set": base, "includes": ["libvirt"]}]})
    both = prepare(
        {"ContainerImagePrepare": [{"set": base, "includes": ["libvirt"], "excludes": ["libvirt"]}]}
    )
    expected = {
        "ContainerNovaLibvirtImage": "192.0.2.0:8787/t/p-nova-libvirt:l",
        "DockerNovaLibvirtImage": "192.0.2.0:8787/t/p-nova-libvirt:l",
    }
    assert only_includes.parameters == expected
    assert both.parameters == expected


def test_role_filtering_with_excludes_keeps_only_nova_compute() -> None:
    base = {"namespace": "192.0.2.0:8787/t", "name_prefix": "p", "name_suffix": "", "tag": "l"}
    roles = (Role("Compute", 1, ("OS::TripleO::Services::NovaCompute",)),)
    result = prepare({"ContainerImagePrepare": [{"set": base, "excludes": ["libvirt"]}]}, roles=roles)
    assert [str(image.source) for image in result.images] == ["192.0.2.0:8787/t/p-nova-compute:l"]
    assert result.parameters["ContainerNovaComputeImage"] == "192.0.2.0:8787/t/p-nova-compute:l"
    assert result.parameters["ContainerNovaLibvirtConfigImage"] == "192.0.2.0:8787/t/p-nova-compute:l"


def test_role_filtering_honours_counts_services_and_heat_none() -> None:
    roles = (
        Role("Controller", 1, ("OS::TripleO::Services::NovaApi", "OS::TripleO::Services::Keystone")),
        Role("Compute", 0, ("OS::TripleO::Services::NovaCompute",)),
        Role("Storage", 1, ("OS::TripleO::Services::SwiftStorage",)),
    )
    parameters = {
        "ContainerImagePrepare": [{"set": {"tag": "l"}}],
        "ComputeCount": 2,
        "StorageServices": ["OS::TripleO::Services::Redis"],
    }
    result = prepare(
        parameters, roles=roles, resource_registry={"OS::TripleO::Services::Keystone": "OS::Heat::None"}
    )
    names = sorted(image.source.path.rsplit("/", 1)[1] for image in result.images)
    assert names == [
        "centos-binary-nova-api",
        "centos-binary-nova-compute",
        "centos-binary-redis",
    ]


def test_images_without_services_are_dropped_when_filtering() -> None:
    roles = (Role("Controller", 1, ("OS::TripleO::Services::NovaApi",)),)
    result = prepare({"ContainerImagePrepare": [{"set": {"tag": "l"}}]}, roles=roles)
    assert "ContainerAEEImage" not in result.parameters
    assert "ContainerAEEImage" in prepare({"ContainerImagePrepare": [{"set": {"tag": "l"}}]}).parameters


@pytest.mark.parametrize(
    ("drivers", "ovn_expected"),
    [(None, True), (["ovn"], True), (["sriovnicswitch", "openvswitch"], False), ("openvswitch,ovn", True)],
)
def test_neutron_driver_detection(drivers: object, ovn_expected: bool) -> None:
    parameters: dict[str, object] = {"ContainerImagePrepare": [{"set": {"tag": "l"}}]}
    if drivers is not None:
        parameters["NeutronMechanismDrivers"] = drivers
    result = prepare(parameters)
    assert ("ContainerOvnControllerImage" in result.parameters) is ovn_expected
    assert len(result.images) == (95 if ovn_expected else 90)


def test_an_explicit_neutron_driver_wins_over_detection() -> None:
    parameters = {
        "ContainerImagePrepare": [{"set": {"neutron_driver": "other"}}],
        "NeutronMechanismDrivers": ["ovn"],
    }
    assert "ContainerOvnControllerImage" not in prepare(parameters).parameters


def test_modify_append_tag_goes_on_parameters_of_modified_images_only() -> None:
    entries = [
        {"push_destination": True, "set": {"tag": "current-tripleo"}, "excludes": ["nova-compute"]},
        {
            "push_destination": True,
            "set": {"tag": "current-tripleo"},
            "includes": ["nova-compute"],
            "modify_role": "tripleo-modify-image",
            "modify_append_tag": "-hotfix",
            "modify_vars": {"tasks_from": "rpm_install.yml", "rpms_path": "/home/stack/nova-hotfix-pkgs"},
        },
    ]
    result = prepare({"ContainerImagePrepare": entries})
    assert result.parameters["ContainerNovaComputeImage"] == (
        "192.168.24.1:8787/tripleomaster/centos-binary-nova-compute:current-tripleo-hotfix"
    )
    assert result.parameters["ContainerNovaApiImage"] == (
        "192.168.24.1:8787/tripleomaster/centos-binary-nova-api:current-tripleo"
    )
    modified = [image for image in result.images if image.modified]
    assert sorted(str(image.source) for image in modified) == [
        "docker.io/tripleomaster/centos-binary-nova-compute-ironic:current-tripleo",
        "docker.io/tripleomaster/centos-binary-nova-compute:current-tripleo",
    ]


def test_default_modify_append_tag_is_a_utc_timestamp() -> None:
    entry = {
        "push_destination": "192.0.2.1:8787",
        "includes": ["heat-api:"],
        "modify_role": "r",
        "set": {"tag": "l"},
    }
    parameters = prepare({"ContainerImagePrepare": [entry]}).parameters
    assert parameters["ContainerHeatApiImage"] == (
        "192.0.2.1:8787/tripleomaster/centos-binary-heat-api:l-modified-20260102030405"
    )


def test_modify_only_with_source_limits_modification() -> None:
    entry = {
        "push_destination": True,
        "includes": ["nova-api", "prometheus"],
        "modify_role": "r",
        "modify_append_tag": "-x",
        "modify_only_with_source": ["tripleo"],
        "set": {"tag": "l"},
    }
    parameters = prepare({"ContainerImagePrepare": [entry]}).parameters
    assert parameters["ContainerNovaApiImage"].endswith(":l-x")
    assert parameters["PrometheusContainerImage"].endswith("/prometheus/prometheus:v2.33.4")


class _Unreachable:
    """An inspector whose registry never answers (the transport's retries already spent)."""

    def inspect(self, reference: ImageReference) -> ImageFacts:
        raise TransientError(f"{reference.registry}: connection refused")


def test_an_unreachable_registry_fails_a_real_run_but_not_a_dry_run() -> None:
    entry = {"tag_from_label": "rdo_version", "includes": ["nova-api:"], "set": {"tag": "l"}}
    with pytest.raises(TransientError):
        prepare({"ContainerImagePrepare": [entry]}, inspector=_Unreachable())
    result = prepare({"ContainerImagePrepare": [entry]}, inspector=_Unreachable(), dry_run=True)
    assert result.parameters["ContainerNovaApiImage"].endswith("centos-binary-nova-api:l")
