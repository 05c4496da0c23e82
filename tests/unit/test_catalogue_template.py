"""The shipped catalogue renders exactly the images of the spec's catalogue.yaml."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from imageprep.catalogue.defaults import load_defaults
from imageprep.catalogue.template import CatalogueImage, CatalogueTemplate
from imageprep.catalogue.variables import template_variables
from imageprep.model.errors import CatalogueError
from tests.support.preparing import SPEC

CATALOGUE = SPEC / "catalogue.yaml"
pytestmark = pytest.mark.skipif(not CATALOGUE.exists(), reason="shared/spec is not beside the repository")


def _spec_images() -> list[dict[str, Any]]:
    images: list[dict[str, Any]] = yaml.safe_load(CATALOGUE.read_text())["images"]
    return images


def _placeholders() -> dict[str, Any]:
    """Every template variable set to its own `{name}` so rendered images equal the spec's patterns."""
    names = set()
    for image in _spec_images():
        names.update(re.findall(r"\{(\w+)\}", image["image"]))
    return {name: "{" + name + "}" for name in names}


def _render(**conditions: Any) -> list[CatalogueImage]:
    return CatalogueTemplate.builtin().render({**_placeholders(), **conditions}, "test")


# The conditions catalogue.yaml writes, as `when: <condition>` and as the `<condition>` of a
# `<list>_when_<condition>` key (which spells it as one word).
CONDITIONS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "ceph_images": lambda variables: bool(variables["ceph_images"]),
    "neutron_driver == ovn": lambda variables: variables["neutron_driver"] == "ovn",
}
KEY_CONDITIONS = {"neutron_driver_ovn": CONDITIONS["neutron_driver == ovn"]}
PLAIN_FACTS = {"image", "source", "when", "params", "services"}
CONDITIONAL_FACT = re.compile(r"(params|services)_when_(\w+)")


def _spec_images_for(variables: dict[str, Any]) -> list[CatalogueImage]:
    """What catalogue.yaml says the catalogue holds for these condition values.

    Fails on a fact it does not know, so a new conditional fact in the spec cannot go unchecked.
    """
    images = []
    for fact in _spec_images():
        if "when" in fact:
            assert fact["when"] in CONDITIONS, f"{fact['image']}: unknown condition when: {fact['when']}"
            if not CONDITIONS[fact["when"]](variables):
                continue
        lists = {"params": list(fact["params"]), "services": list(fact.get("services") or ())}
        for key, values in fact.items():
            if key in PLAIN_FACTS:
                continue
            match = CONDITIONAL_FACT.fullmatch(key)
            assert match is not None and match[2] in KEY_CONDITIONS, f"{fact['image']}: unknown fact {key}"
            if KEY_CONDITIONS[match[2]](variables):
                lists[match[1]].extend(values)
        images.append(
            CatalogueImage(
                reference=fact["image"],
                source=fact["source"],
                params=tuple(lists["params"]),
                services=frozenset(lists["services"]),
            )
        )
    return images


@pytest.mark.parametrize("ceph_images", [True, False])
@pytest.mark.parametrize("neutron_driver", ["ovn", "other"])
def test_the_template_renders_the_spec_catalogue_under_every_condition(
    ceph_images: bool, neutron_driver: str
) -> None:
    conditions = {"ceph_images": ceph_images, "neutron_driver": neutron_driver}
    assert _render(**conditions) == _spec_images_for(conditions)


def test_all_95_images_render_with_ceph_and_ovn() -> None:
    assert len(_render(ceph_images=True, neutron_driver="ovn")) == len(_spec_images()) == 95


def test_neutron_server_is_needed_by_ovn_controller_only_with_the_ovn_driver() -> None:
    def services(driver: str) -> frozenset[str]:
        (server,) = [
            i for i in _render(ceph_images=True, neutron_driver=driver) if "neutron-server" in i.reference
        ]
        return server.services

    assert "OS::TripleO::Services::OVNController" in services("ovn")
    assert "OS::TripleO::Services::OVNController" not in services("other")


def test_default_render_counts_and_shared_parameter() -> None:
    defaults = load_defaults()
    variables = template_variables(defaults.template_defaults, {}, None)
    images = CatalogueTemplate.builtin().render(variables, "test")
    assert len(images) == 95
    assert images[0].reference == "docker.io/tripleomaster/centos-binary-aodh-api:current-tripleo"
    assert "quay.io/prometheus/pushgateway:v1.4.2" in [image.reference for image in images]
    holders = [image.reference for image in images if "ContainerNeutronConfigImage" in image.params]
    assert [ref.split("/")[-1] for ref in holders] == [
        "centos-binary-ironic-neutron-agent:current-tripleo",
        "centos-binary-neutron-server:current-tripleo",
    ]


def test_every_default_variable_the_template_uses_is_defined() -> None:
    defaults = load_defaults()
    used = set(_placeholders())
    assert used <= set(defaults.template_defaults)


def test_values_cannot_break_out_of_the_yaml_scalar() -> None:
    variables = {**_placeholders(), "ceph_images": True, "neutron_driver": "ovn", "tag": 'x"\nnasty: 1'}
    images = CatalogueTemplate.builtin().render(variables, "test")
    assert images[0].reference.endswith(':x"\nnasty: 1')


def test_a_missing_variable_is_a_catalogue_error_naming_the_entry() -> None:
    with pytest.raises(CatalogueError, match=r"entry-7.*no value"):
        CatalogueTemplate.builtin().render({"ceph_images": True}, "entry-7")


def test_a_template_syntax_error_names_the_template() -> None:
    with pytest.raises(CatalogueError, match=r"broken.j2:1: template syntax error"):
        CatalogueTemplate("{% if %}", "broken.j2").render({}, "entry")
