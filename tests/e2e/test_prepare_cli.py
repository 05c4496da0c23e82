"""``imageprep prepare default`` and a dry-run ``imageprep prepare``, run as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import Run

SEED_DEFAULT = """\
parameter_defaults:
  ContainerImagePrepare:
  - set:
      ceph_image: daemon
      ceph_namespace: docker.io/ceph
      ceph_tag: v4.0.0-stable-4.0-nautilus-centos-7-x86_64
      name_prefix: centos-binary-
      name_suffix: ''
      namespace: docker.io/tripleomaster
      neutron_driver: null
      tag: current-tripleo
    tag_from_label: rdo_version
"""
SEED_UNDERCLOUD = SEED_DEFAULT.replace("  - set:\n", "  - push_destination: true\n    set:\n")
SEED_LAYERING = """\
parameter_defaults:
  LocalContainerRegistry: 192.168.24.1
  ContainerImagePrepare:
  - tag_from_label: rdo_version
    push_destination: true
    excludes:
    - nova-api
    set:
      namespace: docker.io/tripleomaster
      name_prefix: centos-binary-
      name_suffix: ''
      tag: current-tripleo
  - push_destination: true
    includes:
    - nova-api
    set:
      namespace: mylocal
      tag: myhotfix
"""


def _body(text: str) -> str:
    """The document without its comment header."""
    return text.split("\n\n", 1)[1]


def test_prepare_default_prints_the_seed_document(imageprep: Run) -> None:
    process = imageprep("prepare", "default", check=True)
    assert process.stdout.startswith("# Generated with the following on ")
    assert "\n#\n#   imageprep prepare default\n#\n\n" in process.stdout
    assert _body(process.stdout) == SEED_DEFAULT


def test_prepare_default_local_push_destination_is_the_undercloud_variant(imageprep: Run) -> None:
    process = imageprep("prepare", "default", "--local-push-destination", check=True)
    assert _body(process.stdout) == SEED_UNDERCLOUD


def test_prepare_default_registry_login_and_backup(imageprep: Run, tmp_path: Path) -> None:
    out = tmp_path / "containers-prepare-parameters.yaml"
    out.write_text("previous\n")
    process = imageprep(
        "prepare", "default", "--enable-registry-login", "--output-env-file", str(out), check=True
    )
    written = yaml.safe_load(out.read_text())
    assert written["parameter_defaults"]["ContainerImageRegistryLogin"] is True
    assert out.read_text() == process.stdout
    assert (tmp_path / "containers-prepare-parameters.yaml.backup").read_text() == "previous\n"
    assert "ContainerImageRegistryCredentials" in process.stderr


def test_dry_run_layering_example_gives_the_seed_parameters(imageprep: Run, tmp_path: Path) -> None:
    (tmp_path / "env.yaml").write_text(SEED_LAYERING)
    process = imageprep(
        "prepare", "-e", "env.yaml", "--dry-run", "--offline", "--output-env-file", "out.yaml", check=True
    )
    parameters = yaml.safe_load((tmp_path / "out.yaml").read_text())["parameter_defaults"]
    assert parameters["DockerNovaApiImage"] == "192.168.24.1:8787/mylocal/centos-binary-nova-api:myhotfix"
    assert parameters["DockerNeutronMetadataImage"] == (
        "192.168.24.1:8787/tripleomaster/centos-binary-neutron-metadata-agent:current-tripleo"
    )
    assert list(parameters) == sorted(parameters)
    assert process.stderr.count("tag_from_label 'rdo_version' is not evaluated") == 1
    assert "95 images" in process.stderr
    assert process.stdout == ""


def test_prepare_without_output_file_prints_the_document(imageprep: Run, tmp_path: Path) -> None:
    (tmp_path / "env.yaml").write_text(
        "parameter_defaults:\n  ContainerImagePrepare:\n  - set: {tag: l}\n    includes: [nova-api]\n"
    )
    process = imageprep("prepare", "-e", "env.yaml", "--dry-run", check=True)
    assert process.stdout.startswith("# Generated with the following on ")
    parameters = yaml.safe_load(process.stdout)["parameter_defaults"]
    assert sorted(parameters) == sorted(
        f"{kind}{name}Image"
        for kind in ("Container", "Docker")
        for name in ("NovaApi", "NovaConfig", "NovaMetadata", "NovaMetadataConfig")
    )
    assert set(parameters.values()) == {"docker.io/tripleomaster/centos-binary-nova-api:l"}


def test_environment_directory_default_is_used_when_it_exists(imageprep: Run, tmp_path: Path) -> None:
    directory = tmp_path / "home" / ".tripleo" / "environments"
    directory.mkdir(parents=True)
    (directory / "prep.yaml").write_text(
        "parameter_defaults:\n  ContainerImagePrepare:\n  - set: {tag: from-dir}\n    includes: [keystone]\n"
    )
    process = imageprep("prepare", "--dry-run", check=True)
    assert yaml.safe_load(process.stdout)["parameter_defaults"]["ContainerKeystoneImage"].endswith(
        ":from-dir"
    )


def test_roles_file_filters_services(imageprep: Run, tmp_path: Path) -> None:
    (tmp_path / "roles.yaml").write_text(
        "- name: Compute\n  CountDefault: 1\n  ServicesDefault:\n  - OS::TripleO::Services::NovaCompute\n"
    )
    (tmp_path / "env.yaml").write_text("parameter_defaults:\n  ContainerImagePrepare:\n  - set: {tag: l}\n")
    process = imageprep("prepare", "-e", "env.yaml", "-r", "roles.yaml", "--dry-run", check=True)
    parameters = yaml.safe_load(process.stdout)["parameter_defaults"]
    assert sorted(parameters) == [
        "ContainerNovaComputeImage",
        "ContainerNovaLibvirtConfigImage",
        "DockerNovaComputeImage",
        "DockerNovaLibvirtConfigImage",
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            "parameter_defaults:\n  ContainerImagePrepare:\n  - includes: nova-api\n",
            "env.yaml: ContainerImagePrepare[0]: includes: must be a list of strings",
        ),
        (
            "parameter_defaults:\n  ContainerImagePrepare: {set: {}}\n",
            "env.yaml: ContainerImagePrepare must be a list of entries",
        ),
        (
            "parameter_defaults:\n  ContainerImagePrepare:\n  - set: [x]\n",
            "env.yaml: ContainerImagePrepare[0]: set: must be a mapping",
        ),
        (
            "parameter_defaults:\n  ContainerImagePrepare:\n  - tag_from_label: '{version'\n",
            "env.yaml: ContainerImagePrepare[0]: tag_from_label:",
        ),
        (
            "parameter_defaults:\n  ContainerImagePrepare:\n  - bogus: 1\n",
            "env.yaml: ContainerImagePrepare[0]: bogus: unknown key",
        ),
        ("parameter_defaults:\n  ContainerImagePrepare: [\n", "env.yaml:3:1: invalid YAML"),
    ],
)
def test_bad_input_is_one_error_line_and_leaves_the_output_untouched(
    imageprep: Run, tmp_path: Path, env: str, message: str
) -> None:
    (tmp_path / "env.yaml").write_text(env)
    (tmp_path / "out.yaml").write_text("keep me\n")
    process = imageprep("prepare", "-e", "env.yaml", "--dry-run", "--output-env-file", "out.yaml")
    assert process.returncode == 2
    assert f"error: {message}" in process.stderr
    assert "Traceback" not in process.stderr
    assert process.stderr.count("error:") == 1
    assert (tmp_path / "out.yaml").read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_debug_shows_the_traceback(imageprep: Run, tmp_path: Path) -> None:
    (tmp_path / "env.yaml").write_text("parameter_defaults:\n  ContainerImagePrepare: 3\n")
    process = imageprep("--debug", "prepare", "-e", "env.yaml", "--dry-run")
    assert process.returncode == 2
    assert "Traceback" in process.stderr


def test_missing_environment_file_is_named(imageprep: Run) -> None:
    process = imageprep("prepare", "-e", "missing.yaml", "--dry-run")
    assert process.returncode == 2
    assert "error: missing.yaml: no such file" in process.stderr


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (
            ["prepare", "default"],
            ["--output-env-file", "--local-push-destination", "--enable-registry-login"],
        ),
        (["prepare"], ["--environment-file", "--environment-directory", "--roles-file", "--dry-run"]),
    ],
)
def test_help_lists_every_option_with_its_default(
    imageprep: Run, command: list[str], options: list[str]
) -> None:
    process = imageprep(*command, "--help", check=True)
    for option in options:
        assert option in process.stdout
    assert process.stdout.count("(default:") >= len(options)


@pytest.mark.parametrize(
    ("entry", "code", "message"),
    [
        (
            "  - push_destination: 127.0.0.1:1\n    includes: [nova-api]\n"
            "    modify_role: tripleo-modify-image\n    set: {tag: l}\n"
            "    modify_vars: {tasks_from: rpm_install.yml, rpms_path: no-such-rpms}\n",
            7,
            "cannot modify docker.io/tripleomaster/centos-binary-nova-api:l (rpm_install.yml): "
            "rpms_path no-such-rpms does not exist",
        ),
    ],
)
def test_unavailable_copies_fail_before_copying(
    imageprep: Run, tmp_path: Path, entry: str, code: int, message: str
) -> None:
    (tmp_path / "env.yaml").write_text(
        "parameter_defaults:\n  LocalContainerRegistry: 127.0.0.1\n  ContainerImagePrepare:\n" + entry
    )
    process = imageprep("prepare", "-e", "env.yaml", "--output-env-file", "out.yaml")
    assert process.returncode == code
    assert f"error: {message}" in process.stderr
    assert not (tmp_path / "out.yaml").exists()
    assert imageprep("prepare", "-e", "env.yaml", "--dry-run").returncode == 0


def test_an_unusable_image_serve_root_fails_once_before_copying(imageprep: Run, tmp_path: Path) -> None:
    (tmp_path / "env.yaml").write_text(
        "parameter_defaults:\n  LocalContainerRegistry: 127.0.0.1\n  ContainerImagePrepare:\n"
        "  - push_destination: true\n    includes: [nova-api]\n    set: {tag: l}\n"
    )
    (tmp_path / "not-a-directory").write_text("")
    process = imageprep(
        "prepare", "-e", "env.yaml", "--output-env-file", "out.yaml", "--image-serve-root", "not-a-directory"
    )
    assert process.returncode == 6
    assert process.stderr.count("error: ") == 1
    assert "cannot set up the image-serve tree" in process.stderr
    assert not (tmp_path / "out.yaml").exists()


def test_dry_run_keeps_template_tags_when_the_registry_is_out_of_reach(
    imageprep: Run, tmp_path: Path
) -> None:
    from tests.support.registry_server import free_port

    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    (tmp_path / "env.yaml").write_text(
        "parameter_defaults:\n  ContainerImagePrepare:\n"
        f"  - set: {{namespace: '{closed}/t', tag: current-tripleo}}\n"
        "    tag_from_label: rdo_version\n    includes: ['nova-api:', 'keystone:']\n"
    )
    process = imageprep("prepare", "-e", "env.yaml", "--dry-run", check=True)
    parameters = yaml.safe_load(process.stdout)["parameter_defaults"]
    assert parameters["ContainerNovaApiImage"] == f"{closed}/t/centos-binary-nova-api:current-tripleo"
    assert process.stderr.count("cannot reach the source registry") == 1


def test_prepare_says_one_line_by_default_and_details_with_verbose(imageprep: Run, tmp_path: Path) -> None:
    (tmp_path / "env.yaml").write_text(
        "parameter_defaults:\n  ContainerImagePrepare:\n  - set: {namespace: 192.168.24.1:8787/t, tag: l}\n"
    )
    quiet = imageprep("prepare", "-e", "env.yaml", "--dry-run", "--output-env-file", "out.yaml", check=True)
    assert quiet.stderr.splitlines() == [quiet.stderr.splitlines()[0]]
    assert quiet.stderr.startswith("95 images, ") and quiet.stderr.rstrip().endswith("written to out.yaml")
    loud = imageprep(
        "-v", "prepare", "-e", "env.yaml", "--dry-run", "--output-env-file", "out.yaml", check=True
    )
    assert "  from 192.168.24.1:8787/t: 87" in loud.stderr.splitlines()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read CA certificates from ca.pem: No such file or directory"),
        ("not a certificate\n", "cannot load CA certificates from ca.pem: it holds no PEM certificate"),
    ],
)
def test_a_wrong_ca_file_is_one_error_before_any_registry_is_contacted(
    imageprep: Run, tmp_path: Path, content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / "ca.pem").write_text(content)
    (tmp_path / "env.yaml").write_text(
        "parameter_defaults:\n  ContainerImagePrepare:\n  - set: {namespace: 127.0.0.1:9/t, tag: l}\n"
        "    includes: [nova-api]\n"
    )
    process = imageprep("prepare", "-e", "env.yaml", "--ca-file", "ca.pem", "--output-env-file", "out.yaml")
    assert process.returncode == 4
    assert process.stderr.count("error: ") == 1
    assert f"error: {message}" in process.stderr
    assert "cannot reach" not in process.stderr  # refused before the (closed) registry was tried
    assert not (tmp_path / "out.yaml").exists()


def test_the_compiled_catalogue_is_kept_in_the_cache_directory(imageprep: Run, tmp_path: Path) -> None:
    (tmp_path / "env.yaml").write_text(SEED_LAYERING)
    first = imageprep("prepare", "-e", "env.yaml", "--dry-run", "--offline", check=True)
    cached = list((tmp_path / "home" / ".cache" / "imageprep").glob("catalogue-*.code"))
    assert len(cached) == 1
    second = imageprep("prepare", "-e", "env.yaml", "--dry-run", "--offline", check=True)
    assert _body(second.stdout) == _body(first.stdout)


def test_ovn_controller_needs_neutron_server_in_a_dry_run(imageprep: Run, tmp_path: Path) -> None:
    (tmp_path / "env.yaml").write_text(
        "parameter_defaults:\n  ContainerImagePrepare:\n"
        "  - set: {namespace: docker.io/t, name_prefix: p, tag: l}\n    includes: [neutron]\n"
    )
    (tmp_path / "roles.yaml").write_text(
        "- {name: Compute, CountDefault: 1, ServicesDefault: "
        "[OS::TripleO::Services::OVNController, OS::TripleO::Services::IronicNeutronAgent]}\n"
    )
    process = imageprep("prepare", "-e", "env.yaml", "-r", "roles.yaml", "--dry-run", "--offline", check=True)
    parameters = yaml.safe_load(process.stdout)["parameter_defaults"]
    assert parameters["ContainerNeutronApiImage"] == "docker.io/t/p-neutron-server:l"
    assert parameters["ContainerNeutronConfigImage"] == "docker.io/t/p-neutron-server:l"
    assert parameters["ContainerIronicNeutronAgentImage"] == "docker.io/t/p-ironic-neutron-agent:l"


def test_an_empty_roles_file_is_a_warning_and_prepares_nothing(imageprep: Run, tmp_path: Path) -> None:
    (tmp_path / "roles.yaml").write_text("[]\n")
    (tmp_path / "env.yaml").write_text("parameter_defaults:\n  ContainerImagePrepare:\n  - set: {tag: l}\n")
    process = imageprep("prepare", "-e", "env.yaml", "-r", "roles.yaml", "--dry-run", "--offline", check=True)
    assert yaml.safe_load(process.stdout)["parameter_defaults"] == {}
    assert process.stderr.splitlines()[0].startswith("WARNING: roles.yaml: the roles file lists no roles")
