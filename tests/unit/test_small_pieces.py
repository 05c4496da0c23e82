"""Label templates, tag discovery decisions, the local registry address and env-file writing."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from imageprep.catalogue.labeltemplate import LabelTemplate, MissingLabel
from imageprep.catalogue.yamlfile import parse_yaml
from imageprep.model.errors import ConfigurationError, NotFoundError
from imageprep.model.reference import ImageReference
from imageprep.prepare.envfile import render_document, write_atomically
from imageprep.prepare.inspection import ImageFacts
from imageprep.prepare.localregistry import local_registry_address
from imageprep.prepare.tags import discover_tag

LABELS = {"rdo_version": "a", "build_version": "4.0.0", "release": "1.0.0", "version": "20180125"}
FACTS = ImageFacts(labels=LABELS, tags=("a", "1.0.0-20180125"))


@pytest.mark.parametrize(
    ("reference", "template", "tag"),
    [
        ("docker.io/t/foo", "rdo_version", "a"),
        ("docker.io/t/foo", "{release}-{version}", "1.0.0-20180125"),
        ("docker.io/t/foo:a", "bar", "a"),
        ("docker.io/t/foo:a", "{releases}-{versions}", "a"),
    ],
)
def test_tag_discovery_vectors(
    reference: str, template: str, tag: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert discover_tag(ImageReference.parse(reference), LabelTemplate.parse(template), FACTS) == tag


def test_a_missing_label_warns_naming_image_label_and_available_labels(
    caplog: pytest.LogCaptureFixture,
) -> None:
    discover_tag(ImageReference.parse("docker.io/t/foo:a"), LabelTemplate.parse("bar"), FACTS)
    assert "docker.io/t/foo:a has no label 'bar'" in caplog.text
    assert "build_version, rdo_version, release, version" in caplog.text


@pytest.mark.parametrize("template", ["build_version", "version"])
def test_a_discovered_tag_that_does_not_exist_lists_available_tags(template: str) -> None:
    with pytest.raises(NotFoundError) as caught:
        discover_tag(ImageReference.parse("docker.io/t/foo"), LabelTemplate.parse(template), FACTS)
    assert caught.value.hint == "available tags: a, 1.0.0-20180125"


def test_label_templates() -> None:
    assert LabelTemplate.parse("{version}-{release}").render({"version": "1", "release": "2"}) == "1-2"
    with pytest.raises(MissingLabel):
        LabelTemplate.parse("{version}").render({})
    for bad in ("{release}-{version", "{}", "{a:>10}", "a}", ""):
        with pytest.raises(ValueError):
            LabelTemplate.parse(bad)


def test_local_registry_address(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n192.0.2.1 uc.ctlplane.localdomain uc.ctlplane # undercloud\n")
    assert local_registry_address("192.168.24.1", "uc", hosts) == "192.168.24.1:8787"
    assert local_registry_address("fd12::1", "uc", hosts) == "[fd12::1]:8787"
    assert local_registry_address(None, "uc.somedomain", hosts) == "uc.ctlplane.localdomain:8787"
    assert local_registry_address("", "other", hosts) == "localhost:8787"
    assert local_registry_address(None, "uc", tmp_path / "missing") == "localhost:8787"


def test_rendered_document_has_header_and_sorted_block_yaml() -> None:
    text = render_document(
        {"parameter_defaults": {"B": "x", "A": ["y"]}},
        "imageprep prepare -e e.yaml",
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert text.startswith(
        "# Generated with the following on 2026-01-01T00:00:00+00:00\n"
        "#\n#   imageprep prepare -e e.yaml\n#\n\n"
    )
    assert text.endswith("parameter_defaults:\n  A:\n  - y\n  B: x\n")
    assert yaml.safe_load(text) == {"parameter_defaults": {"A": ["y"], "B": "x"}}


def test_atomic_write_keeps_a_backup_and_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.yaml"
    target.write_text("old\n")
    os.chmod(target, 0o600)
    backup = write_atomically(target, "new\n", keep_backup=True)
    assert target.read_text() == "new\n"
    assert backup == tmp_path / "out.yaml.backup" and backup.read_text() == "old\n"
    assert target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.yaml", "out.yaml.backup"]


def test_atomic_write_into_a_missing_directory_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        write_atomically(tmp_path / "nope" / "out.yaml", "x")


@pytest.mark.parametrize("value", ["plain", "\U00010000", "a\x00b", "\ud800", "x: y"])
def test_output_document_is_written_the_same_by_either_yaml_emitter(value: str) -> None:
    document = {"parameter_defaults": {"ContainerNovaApiImage": value, "Other": [value]}}
    when = datetime(2026, 1, 2, tzinfo=UTC)
    text = render_document(document, "imageprep prepare", when)
    reference = yaml.dump(
        document, Dumper=yaml.SafeDumper, default_flow_style=False, sort_keys=True, width=4096
    )
    assert text.endswith(reference)


@pytest.mark.parametrize(
    "text", ['a: "\\ud800\\udc00"', 'a: "\\U00010000"', "a: [1, {b: c}]", "a: !!binary aGk="]
)
def test_trusted_yaml_parses_exactly_as_the_reference_parser(text: str) -> None:
    assert parse_yaml(text, "x", trusted=True) == parse_yaml(text, "x")
