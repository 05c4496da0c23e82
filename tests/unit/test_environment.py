"""Environment files merge like heat's, and bad files are named with line and column."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from imageprep.model.errors import ConfigurationError
from imageprep.prepare.environment import environment_files, load_environment
from imageprep.prepare.inputs import load_roles_file


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_later_files_win_lists_replace_and_mappings_merge(tmp_path: Path) -> None:
    first = _write(
        tmp_path / "a.yaml",
        "parameter_defaults:\n  ContainerImagePrepare: [{set: {tag: a}}]\n"
        "  ContainerImageRegistryCredentials: {quay.io: {u: p}}\n  ControllerCount: 1\n",
    )
    second = _write(
        tmp_path / "b.yaml",
        "parameter_defaults:\n  ContainerImagePrepare: [{set: {tag: b}}, {set: {tag: c}}]\n"
        "  ContainerImageRegistryCredentials: {docker.io: {v: q}}\n"
        "resource_registry:\n  OS::TripleO::Services::X: OS::Heat::None\n",
    )
    environment = load_environment([first, second])
    assert environment.parameters["ContainerImagePrepare"] == [{"set": {"tag": "b"}}, {"set": {"tag": "c"}}]
    assert environment.parameters["ContainerImageRegistryCredentials"] == {
        "quay.io": {"u": "p"},
        "docker.io": {"v": "q"},
    }
    assert environment.parameters["ControllerCount"] == 1
    assert environment.origin("ContainerImagePrepare") == str(second)
    assert environment.origin("ControllerCount") == str(first)
    assert environment.resource_registry == {"OS::TripleO::Services::X": "OS::Heat::None"}


def test_invalid_yaml_names_file_line_and_column(tmp_path: Path) -> None:
    bad = _write(
        tmp_path / "bad.yaml", "parameter_defaults:\n  ContainerImagePrepare: [\n    {set: }\n  oops\n"
    )
    with pytest.raises(ConfigurationError, match=rf"{bad}:\d+:\d+: invalid YAML"):
        load_environment([bad])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "a heat environment must be a mapping"),
        ("parameter_defaults: [1]\n", "parameter_defaults must be a mapping"),
        ("resource_registry: x\n", "resource_registry must be a mapping"),
    ],
)
def test_malformed_environments_are_configuration_errors(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path / "env.yaml", text)
    with pytest.raises(ConfigurationError, match=message):
        load_environment([path])


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="nope.yaml: no such file"):
        load_environment([tmp_path / "nope.yaml"])


def test_environment_directory_files_come_first_sorted(tmp_path: Path) -> None:
    directory = tmp_path / "envs"
    directory.mkdir()
    for name in ("b.yaml", "a.yaml", "c.txt"):
        (directory / name).write_text("{}\n")
    explicit = _write(tmp_path / "z.yaml", "{}\n")
    assert environment_files([directory], [explicit]) == [
        directory / "a.yaml",
        directory / "b.yaml",
        explicit,
    ]
    with pytest.raises(ConfigurationError, match="environment directory does not exist"):
        environment_files([tmp_path / "missing"], [])


def test_roles_file_is_found_relative_to_the_templates_root(tmp_path: Path) -> None:
    root = tmp_path / "tht"
    (root / "roles").mkdir(parents=True)
    _write(root / "roles" / "r.yaml", "- name: Controller\n  CountDefault: 1\n  ServicesDefault: [a]\n")
    (role,) = load_roles_file(Path("roles/r.yaml"), root)
    assert (role.name, role.count_default, role.services_default) == ("Controller", 1, ("a",))
    with pytest.raises(ConfigurationError, match="cannot find roles file"):
        load_roles_file(Path("roles/missing.yaml"), root)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\n", "a roles file must be a list"),
        ("- CountDefault: 1\n", "must be a mapping with a `name`"),
        ("- name: A\n  CountDefault: many\n", "role A: CountDefault must be an integer"),
        ("- name: A\n  ServicesDefault: x\n", "ServicesDefault must be a list"),
    ],
)
def test_bad_roles_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_roles_file(_write(tmp_path / "roles.yaml", text))


def test_an_empty_roles_file_warns_that_every_image_is_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path / "roles.yaml", "[]\n")
    with caplog.at_level(logging.WARNING, logger="imageprep"):
        assert load_roles_file(path) == ()
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(f"{path}: the roles file lists no roles")
    assert "every image is left out" in record.getMessage()


def test_a_roles_file_with_roles_does_not_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="imageprep"):
        load_roles_file(_write(tmp_path / "roles.yaml", "- name: Controller\n"))
    assert caplog.records == []
