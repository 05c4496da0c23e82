"""The shipped catalogue renders exactly the images of the spec's catalogue.yaml."""

from __future__ import annotations

import re
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


def test_every_spec_image_renders_with_its_params_services_and_source() -> None:
    rendered = _render(ceph_images=True, neutron_driver="ovn")
    spec = _spec_images()
    assert len(rendered) == len(spec) == 95
    for ours, theirs in zip(rendered, spec, strict=True):
        assert ours.reference == theirs["image"]
        assert ours.source == theirs["source"]
        assert ours.params == tuple(theirs["params"])
        assert ours.services == frozenset(theirs.get("services") or ())


@pytest.mark.parametrize(
    ("conditions", "dropped_when"),
    [
        ({"ceph_images": False, "neutron_driver": "ovn"}, {"ceph_images"}),
        ({"ceph_images": True, "neutron_driver": "other"}, {"neutron_driver == ovn"}),
        ({"ceph_images": False, "neutron_driver": "other"}, {"ceph_images", "neutron_driver == ovn"}),
    ],
)
def test_conditional_images_follow_their_when(conditions: dict[str, Any], dropped_when: set[str]) -> None:
    expected = [image["image"] for image in _spec_images() if image.get("when") not in dropped_when]
    assert [image.reference for image in _render(**conditions)] == expected


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
