"""ContainerImagePrepare is validated strictly; each problem names file, entry and key."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imageprep.catalogue.defaults import load_defaults
from imageprep.catalogue.entries import parse_entries
from imageprep.model.errors import ConfigurationError
from imageprep.model.location import Location
from tests.support.preparing import prepare

KEYS = frozenset(load_defaults().template_defaults) - {
    "ceph_images",
    "neutron_driver",
    "name_prefix",
    "name_suffix",
}
LOCAL = "192.0.2.9:8787"


def _parse(value: Any) -> None:
    parse_entries(
        value,
        origin="env.yaml",
        parameter="ContainerImagePrepare",
        string_set_keys=KEYS,
        local_registry=LOCAL,
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"set": {}}, r"env.yaml: ContainerImagePrepare must be a list of entries, not a mapping"),
        ("nova", r"ContainerImagePrepare must be a list of entries, not a string"),
        (["nova"], r"env.yaml: ContainerImagePrepare\[0\]: an entry must be a mapping"),
        ([{}, {"sett": {}}], r"env.yaml: ContainerImagePrepare\[1\]: sett: unknown key"),
        (
            [{"includes": "nova-api"}],
            r"ContainerImagePrepare\[0\]: includes: must be a list of strings, not a string",
        ),
        ([{"excludes": [1]}], r"\[0\]: excludes: must be a list of strings"),
        ([{"includes": ["("]}], r"includes: '\(' is not a valid regular expression"),
        ([{"set": ["namespace"]}], r"\[0\]: set: must be a mapping of template variables, not a list"),
        ([{"set": {"tag": 16.1}}], r"\[0\]: set.tag: must be a string, not a number"),
        ([{"set": {"namespace": None}}], r"set.namespace: must be a string, not null"),
        ([{"set": {"ceph_images": "no"}}], r"set.ceph_images: must be true or false"),
        ([{"tag_from_label": "{version}-{release"}], r"\[0\]: tag_from_label: .*unbalanced braces"),
        ([{"tag_from_label": "{}"}], r"tag_from_label: .*not a label name"),
        ([{"tag_from_label": ["rdo_version"]}], r"tag_from_label: must be a string, not a list"),
        ([{"push_destination": 8787}], r"push_destination: must be true, false or HOST:PORT"),
        ([{"push_destination": "not a host"}], r"push_destination: 'not a host' is not a registry address"),
        ([{"modify_vars": ["x"]}], r"modify_vars: must be a mapping"),
        ([{"modify_append_tag": "-a b"}], r"modify_append_tag: '-a b' cannot be part of a tag"),
        ([{"multi_arch": "yes"}], r"multi_arch: must be true or false"),
    ],
)
def test_bad_entries_give_one_clear_error(value: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        _parse(value)


def test_a_string_includes_error_suggests_the_list_form() -> None:
    with pytest.raises(ConfigurationError) as caught:
        _parse([{"includes": "nova-api"}])
    assert caught.value.hint is not None and "[nova-api]" in caught.value.hint


def test_push_destination_is_parsed_once_into_a_location() -> None:
    def destination(value: Any) -> Location | None:
        (entry,) = parse_entries(
            [{"push_destination": value}],
            origin="env.yaml",
            parameter="ContainerImagePrepare",
            string_set_keys=KEYS,
            local_registry=LOCAL,
        )
        return entry.push_destination

    assert destination(True) == Location.local_registry(LOCAL)
    assert destination(LOCAL) == Location.local_registry(LOCAL)  # the local registry by its address
    assert destination("192.0.2.1:5000") == Location("192.0.2.1:5000", local=False)
    assert destination(False) is None
    assert destination(None) is None


def test_valid_entries_normalise_values() -> None:
    (entry,) = parse_entries(
        [{"push_destination": "192.0.2.1:8787/", "set": {"tag": 1234, "custom": [1]}, "tag_from_label": "a"}],
        origin="env.yaml",
        parameter="ContainerImagePrepare",
        string_set_keys=KEYS,
        local_registry=LOCAL,
    )
    assert entry.push_destination == Location.registry("192.0.2.1:8787")
    assert entry.set_values["tag"] == "1234"
    assert entry.set_values["custom"] == [1]
    assert entry.tag_from_label is not None and entry.tag_from_label.labels == ("a",)


def test_name_prefix_and_suffix_get_hyphens_and_null_means_empty() -> None:
    parameters = prepare(
        {
            "ContainerImagePrepare": [
                {"set": {"namespace": "t", "name_prefix": "p", "name_suffix": "s", "tag": "l"}}
            ]
        }
    ).parameters
    assert parameters["ContainerNovaApiImage"] == "t/p-nova-api-s:l"
    parameters = prepare(
        {
            "ContainerImagePrepare": [
                {"set": {"namespace": "t", "name_prefix": None, "name_suffix": None, "tag": "l"}}
            ]
        }
    ).parameters
    assert parameters["ContainerNovaApiImage"] == "t/nova-api:l"


def test_an_invalid_rendered_reference_names_the_entry() -> None:
    with pytest.raises(ConfigurationError, match=r"ContainerImagePrepare\[0\]: .*invalid image reference"):
        prepare({"ContainerImagePrepare": [{"set": {"namespace": "Upper/Case"}}]})


def test_modify_without_push_destination_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"\[0\]: modify_role needs a push_destination"):
        prepare({"ContainerImagePrepare": [{"modify_role": "tripleo-modify-image"}]})


VALID_ENTRY = {
    "push_destination": True,
    "set": {"namespace": "docker.io/t", "tag": "current-tripleo", "ceph_images": False},
    "tag_from_label": "{version}-{release}",
    "includes": ["nova"],
    "excludes": ["libvirt"],
    "modify_role": "tripleo-modify-image",
    "modify_vars": {"tasks_from": "rpm_install.yml"},
    "modify_append_tag": "-hotfix",
}
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.lists(st.text(max_size=6), max_size=3),
    st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=st.sampled_from([*VALID_ENTRY, "set.namespace", "set.tag", "set.name_prefix", "bogus"]),
    value=junk,
    wrap=st.booleans(),
)
def test_random_mutations_evaluate_or_give_a_configuration_error(key: str, value: Any, wrap: bool) -> None:
    entry: dict[str, Any] = {**VALID_ENTRY, "set": dict(VALID_ENTRY["set"])}
    if key.startswith("set."):
        entry["set"][key[4:]] = value
    else:
        entry[key] = value
    document: Any = [entry] if wrap else entry
    try:
        prepare({"ContainerImagePrepare": document})
    except ConfigurationError as error:
        assert str(error).startswith("env.yaml: ContainerImagePrepare")
