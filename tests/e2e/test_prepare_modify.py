"""``imageprep prepare`` with ``modify_role``: images are pulled, modified with buildah and pushed.

The seed's "Install RPM files" and "Modify with custom Dockerfile" examples, against a real
docker-registry on loopback and busybox images built by the test; run twice, the second run
rebuilds nothing because the destination already has the modified tag.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import Run
from tests.support.buildimages import (
    ScratchStorage,
    buildah_available,
    make_base_image,
    make_rpm,
    make_storage,
    rpm_query,
    rpm_tools_available,
    skopeo_to_dir,
    unpack_dir_layout,
)
from tests.support.registry_server import RunningRegistry, plain_registry_server, registry_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (buildah_available() and rpm_tools_available() and registry_available()),
        reason="needs buildah, busybox-static, rpm, rpmbuild, docker-registry and skopeo",
    ),
]
NAMES = ("nova-compute", "nova-api")
PACKAGE = "nova-hotfix"


@pytest.fixture
def storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ScratchStorage]:
    scratch = make_storage(tmp_path / "storage")
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(scratch.conf))
    yield scratch
    scratch.cleanup()


@pytest.fixture
def registry(tmp_path: Path, storage: ScratchStorage) -> Iterator[RunningRegistry]:
    """A registry holding busybox-based tripleomaster images (the source and the destination)."""
    with plain_registry_server(tmp_path / "registry") as running:
        for name in NAMES:
            local = f"localhost/build/{name}:1"
            make_base_image(storage, local, labels={"component": name})
            storage.push_to_registry(
                local, f"{running.host}/tripleomaster/centos-binary-{name}:current-tripleo"
            )
        storage.run("rmi", "--all", "--force")
        yield running


def _write_environment(tmp_path: Path, registry: RunningRegistry, **entry: object) -> None:
    entries = [
        {
            "push_destination": registry.host,
            "includes": ["nova-compute:", "nova-api:"],
            "set": {
                "namespace": f"{registry.host}/tripleomaster",
                "name_prefix": "centos-binary-",
                "tag": "current-tripleo",
            },
            **entry,
        }
    ]
    document = {"parameter_defaults": {"ContainerImagePrepare": entries}}
    (tmp_path / "env.yaml").write_text(yaml.safe_dump(document))


def _prepare(imageprep: Run, check: bool = True):  # type: ignore[no-untyped-def]
    return imageprep(
        "prepare", "-e", "env.yaml", "--output-env-file", "out.yaml", "--report", "report.json", check=check
    )


def _pull(
    registry: RunningRegistry, reference: str, tmp_path: Path, name: str
) -> tuple[Path, dict[str, object]]:
    layout = tmp_path / f"{name}-layout"
    skopeo_to_dir(f"{registry.host}/{reference}", layout)
    rootfs = tmp_path / f"{name}-rootfs"
    return rootfs, unpack_dir_layout(layout, rootfs)


def test_rpm_install_during_prepare_then_a_rerun_rebuilds_nothing(
    imageprep: Run, tmp_path: Path, registry: RunningRegistry, storage: ScratchStorage
) -> None:
    rpms = tmp_path / "nova-hotfix-pkgs"
    make_rpm(rpms, PACKAGE)
    _write_environment(
        tmp_path,
        registry,
        modify_role="tripleo-modify-image",
        modify_append_tag="-hotfix",
        modify_only_with_source=["tripleo"],  # where nova-compute and nova-api come from
        modify_vars={"tasks_from": "rpm_install.yml", "rpms_path": str(rpms)},
    )

    _prepare(imageprep)

    parameters = yaml.safe_load((tmp_path / "out.yaml").read_text())["parameter_defaults"]
    modified = f"{registry.host}/tripleomaster/centos-binary-nova-compute:current-tripleo-hotfix"
    assert parameters["ContainerNovaComputeImage"] == modified
    first = json.loads((tmp_path / "report.json").read_text())
    assert (first["copied"], first["skipped"], first["failed"]) == (2, 0, 0)
    rootfs, config = _pull(
        registry, "tripleomaster/centos-binary-nova-compute:current-tripleo-hotfix", tmp_path, "c"
    )
    assert rpm_query(rootfs, PACKAGE).returncode == 0
    assert config["config"]["User"] == "nova"  # type: ignore[index]
    assert config["config"]["Labels"]["component"] == "nova-compute"  # type: ignore[index]
    assert storage.images() == []  # pulled and built images are cleaned up
    assert storage.containers() == []

    _prepare(imageprep)

    second = json.loads((tmp_path / "report.json").read_text())
    assert (second["copied"], second["skipped"], second["failed"]) == (0, 2, 0)
    assert storage.images() == []  # nothing was pulled or built the second time


def test_modify_image_dockerfile_during_prepare_only_for_selected_images(
    imageprep: Run, tmp_path: Path, registry: RunningRegistry
) -> None:
    custom = tmp_path / "nova-custom"
    custom.mkdir()
    (custom / "customize.sh").write_text("#!/bin/sh\necho customized > /etc/customized\n")
    (custom / "customize.sh").chmod(0o755)
    (custom / "Dockerfile").write_text(
        "FROM docker.io/tripleomaster/centos-binary-nova-compute:latest\n"
        "USER root\n"
        "COPY customize.sh /tmp/\n"
        "RUN /tmp/customize.sh\n"
        "LABEL customized=true\n"
    )
    _write_environment(
        tmp_path,
        registry,
        modify_role="tripleo-modify-image",
        modify_append_tag="-custom",
        modify_only_with_labels=["nonexistent-label", "component"],
        modify_vars={"tasks_from": "modify_image.yml", "modify_dir_path": str(custom)},
        includes=["nova-compute:"],
    )

    _prepare(imageprep)

    rootfs, config = _pull(
        registry, "tripleomaster/centos-binary-nova-compute:current-tripleo-custom", tmp_path, "c"
    )
    assert (rootfs / "etc/customized").read_text() == "customized\n"
    labels = config["config"]["Labels"]  # type: ignore[index]
    assert labels["customized"] == "true" and labels["component"] == "nova-compute"
    assert labels["modified_append_tag"] == "-custom"
    assert config["config"]["User"] == "nova"  # type: ignore[index]


def test_a_bad_rpm_directory_fails_before_anything_is_pulled(
    imageprep: Run, tmp_path: Path, registry: RunningRegistry, storage: ScratchStorage
) -> None:
    _write_environment(
        tmp_path,
        registry,
        modify_role="tripleo-modify-image",
        modify_append_tag="-broken",
        modify_vars={"tasks_from": "rpm_install.yml", "rpms_path": str(tmp_path / "no-such-dir")},
        includes=["nova-api:"],
    )

    process = _prepare(imageprep, check=False)

    assert process.returncode == 7
    errors = [line for line in process.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: cannot modify {registry.host}/tripleomaster/centos-binary-nova-api:current-tripleo "
        f"(rpm_install.yml): rpms_path {tmp_path / 'no-such-dir'} does not exist"
    ]
    assert not (tmp_path / "out.yaml").exists()
    assert storage.images() == [] and storage.containers() == []


def test_a_failing_build_fails_the_run_naming_image_and_cause(
    imageprep: Run, tmp_path: Path, registry: RunningRegistry, storage: ScratchStorage
) -> None:
    custom = tmp_path / "broken"
    custom.mkdir()
    (custom / "Dockerfile").write_text("FROM x\nRUN echo no-space-left >&2; exit 1\n")
    _write_environment(
        tmp_path,
        registry,
        modify_role="tripleo-modify-image",
        modify_append_tag="-broken",
        modify_vars={"tasks_from": "modify_image.yml", "modify_dir_path": str(custom)},
    )

    process = _prepare(imageprep, check=False)

    assert process.returncode == 5
    assert "2 of 2 images could not be copied" in process.stderr
    assert "centos-binary-nova-api:current-tripleo (modify_image.yml): building" in process.stderr
    assert "no-space-left" in process.stderr
    assert "Traceback" not in process.stderr
    assert not (tmp_path / "out.yaml").exists()
    assert storage.images() == [] and storage.containers() == []


def test_a_role_from_roles_path_modifies_images_during_prepare(
    imageprep: Run, tmp_path: Path, registry: RunningRegistry, storage: ScratchStorage
) -> None:
    from imageprep.modify.ansiblerole import find_playbook_program
    from tests.support.buildimages import LABELLING_ROLE_TASKS

    if find_playbook_program() is None:
        pytest.skip("needs ansible-core (pip install 'imageprep[ansible]')")
    tasks = tmp_path / "my-roles" / "add-foo-plugin" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text(LABELLING_ROLE_TASKS)
    _write_environment(
        tmp_path,
        registry,
        includes=["nova-api:"],
        modify_role="add-foo-plugin",
        modify_append_tag="-foo",
        modify_vars={"foo_version": "1.0.1", "work": "imageprep-prepare-role"},
    )
    imageprep(
        "prepare", "-e", "env.yaml", "--output-env-file", "out.yaml", "--roles-path", "my-roles", check=True
    )
    parameters = yaml.safe_load((tmp_path / "out.yaml").read_text())["parameter_defaults"]
    assert parameters["ContainerNovaApiImage"].endswith(
        "/tripleomaster/centos-binary-nova-api:current-tripleo-foo"
    )
    _, config = _pull(registry, "tripleomaster/centos-binary-nova-api:current-tripleo-foo", tmp_path, "r")
    labels = config["config"]["Labels"]  # type: ignore[index]
    assert labels["foo_version"] == "1.0.1" and labels["build_tool"] == "buildah"


@pytest.mark.parametrize(
    ("mode", "kept"),
    [
        ("full", set()),
        ("partial", {"current-tripleo-hotfix"}),  # the modified images stay, the pulled ones go
        ("none", {"current-tripleo", "current-tripleo-hotfix"}),
    ],
)
def test_cleanup_says_which_images_a_modification_leaves_in_local_storage(
    imageprep: Run,
    tmp_path: Path,
    registry: RunningRegistry,
    storage: ScratchStorage,
    mode: str,
    kept: set[str],
) -> None:
    rpms = tmp_path / "nova-hotfix-pkgs"
    make_rpm(rpms, PACKAGE)
    _write_environment(
        tmp_path,
        registry,
        modify_role="tripleo-modify-image",
        modify_append_tag="-hotfix",
        modify_vars={"tasks_from": "rpm_install.yml", "rpms_path": str(rpms)},
    )
    imageprep("prepare", "-e", "env.yaml", "--output-env-file", "out.yaml", "--cleanup", mode, check=True)
    expected = {f"{registry.host}/tripleomaster/centos-binary-{name}:{tag}" for name in NAMES for tag in kept}
    assert set(storage.images()) == expected
    assert storage.containers() == []


def test_an_unknown_cleanup_mode_is_refused_before_anything_happens(imageprep: Run) -> None:
    done = imageprep("prepare", "--cleanup", "some", "--dry-run", "--offline")
    assert done.returncode == 2
    assert "invalid choice: 'some' (choose from 'full', 'partial', 'none')" in done.stderr
