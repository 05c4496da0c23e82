"""The built-in modifications against real buildah, on busybox images built by the tests."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from imageprep.model.errors import ModificationError
from imageprep.modify import ModifyRequest, modify
from imageprep.modify.ansiblerole import find_playbook_program
from tests.support.buildimages import (
    LABELLING_ROLE_TASKS,
    ScratchStorage,
    buildah_available,
    make_base_image,
    make_rpm,
    make_storage,
    recording_script,
    rpm_tools_available,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not buildah_available(), reason="needs buildah and busybox-static"),
]
BASE = "localhost/test/base:1"
WITH_RPM = "localhost/test/with-rpm:1"
WITH_DNF = "localhost/test/with-dnf:1"
WITH_PYTHON = "localhost/test/with-python:1"
FAILING_RPM = "localhost/test/failing-rpm:1"


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScratchStorage]:
    """A private vfs storage with the base images every test here starts from."""
    scratch = make_storage(tmp_path_factory.mktemp("storage"))
    make_base_image(scratch, BASE, labels={"name": "base"})
    make_base_image(scratch, WITH_RPM, files={"usr/bin/rpm": recording_script("/var/log/fake-rpm.log")})
    make_base_image(scratch, WITH_DNF, files={"usr/bin/dnf": recording_script("/var/log/fake-dnf.log")})
    make_base_image(scratch, WITH_PYTHON, files={"usr/bin/python3": recording_script("/var/log/fake-py.log")})
    make_base_image(
        scratch,
        FAILING_RPM,
        files={"usr/bin/rpm": recording_script("/dev/null", 1, "error: package conflicts with file")},
    )
    yield scratch
    scratch.cleanup()


@pytest.fixture
def rpms(tmp_path: Path) -> Path:
    if not rpm_tools_available():
        pytest.skip("needs rpm and rpmbuild")
    directory = tmp_path / "rpms"
    make_rpm(directory)
    return directory


def _exists(storage: ScratchStorage, image: str, path: str) -> bool:
    container = storage.run("from", "--pull=never", "--quiet", image).stdout.strip()
    try:
        mount = Path(storage.run("mount", container).stdout.strip())
        return (mount / path.lstrip("/")).exists()
    finally:
        storage.run("rm", container)


def _read(storage: ScratchStorage, image: str, path: str) -> str:
    container = storage.run("from", "--pull=never", "--quiet", image).stdout.strip()
    try:
        mount = Path(storage.run("mount", container).stdout.strip())
        return (mount / path.lstrip("/")).read_text()
    finally:
        storage.run("rm", container)


def _rpm_query(storage: ScratchStorage, image: str, package: str) -> subprocess.CompletedProcess[str]:
    container = storage.run("from", "--pull=never", "--quiet", image).stdout.strip()
    try:
        mount = storage.run("mount", container).stdout.strip()
        return subprocess.run(
            ["rpm", "--root", mount, "--dbpath", "/var/lib/rpm", "-q", package],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        storage.run("rm", container)


def _modify(storage: ScratchStorage, source: str, append: str, **variables: object) -> str:
    return modify(storage.buildah(), ModifyRequest(source, append, variables=variables))


# --- rpm_install.yml --------------------------------------------------------------------------------


def test_rpm_install_without_image_rpm_uses_host_rpm_in_one_layer(
    storage: ScratchStorage, rpms: Path
) -> None:
    result = _modify(storage, BASE, "-hotfix", tasks_from="rpm_install.yml", rpms_path=str(rpms))

    assert result == f"{BASE}-hotfix"
    assert _read(storage, result, "/usr/share/imageprep-hotfix-test/marker") == "hotfixed\n"
    query = _rpm_query(storage, result, "imageprep-hotfix-test")
    assert query.returncode == 0 and "imageprep-hotfix-test-1.0-1" in query.stdout
    assert storage.layer_count(result) == storage.layer_count(BASE) + 1
    config = storage.config(result)
    assert config["User"] == "nova"
    assert config["Labels"]["modified_append_tag"] == "-hotfix"  # type: ignore[index]
    assert config["Labels"]["name"] == "base"  # type: ignore[index]
    assert storage.containers() == []


def test_rpm_install_uses_the_images_own_rpm_and_removes_the_copies(
    storage: ScratchStorage, rpms: Path
) -> None:
    result = _modify(storage, WITH_RPM, "-own", tasks_from="rpm_install.yml", rpms_path=str(rpms))

    log = _read(storage, result, "/var/log/fake-rpm.log")
    assert log.startswith("/usr/bin/rpm -Uvh --replacepkgs --replacefiles --oldpackage ")
    assert "/tmp/imageprep-rpms/imageprep-hotfix-test-1.0-1.noarch.rpm" in log
    assert not _exists(storage, result, "/tmp/imageprep-rpms")
    assert storage.config(result)["User"] == "nova"


@pytest.mark.parametrize(
    ("make_directory", "cause"),
    [
        (lambda d: d / "missing", "does not exist"),
        (lambda d: d, "holds no *.rpm files"),
        (lambda d: (d / "junk.rpm").write_text("not a package") and d, "is not an RPM package"),
    ],
    ids=["missing", "empty", "not-an-rpm"],
)
def test_a_bad_rpm_directory_is_one_clear_error(
    storage: ScratchStorage, tmp_path: Path, make_directory, cause
) -> None:  # type: ignore[no-untyped-def]
    directory = tmp_path / "rpms"
    directory.mkdir()
    (directory / "README.txt").write_text("ignored: not *.rpm")
    rpms_path = make_directory(directory)

    with pytest.raises(ModificationError) as caught:
        _modify(storage, BASE, "-bad", tasks_from="rpm_install.yml", rpms_path=str(rpms_path))

    message = str(caught.value)
    assert message.startswith(f"cannot modify {BASE} (rpm_install.yml): ")
    assert cause in message
    assert f"{BASE}-bad" not in storage.images()
    assert storage.containers() == []


def test_a_failing_install_names_the_image_and_quotes_rpm(storage: ScratchStorage, rpms: Path) -> None:
    with pytest.raises(ModificationError) as caught:
        _modify(storage, FAILING_RPM, "-x", tasks_from="rpm_install.yml", rpms_path=str(rpms))

    message = str(caught.value)
    assert FAILING_RPM in message and "installing the RPMs" in message
    assert "package conflicts with file" in message
    assert storage.containers() == []


def test_an_image_not_in_local_storage_is_an_error(storage: ScratchStorage, rpms: Path) -> None:
    with pytest.raises(ModificationError, match="not in local container storage"):
        _modify(storage, "localhost/test/absent:1", "-x", tasks_from="rpm_install.yml", rpms_path=str(rpms))


# --- modify_image.yml -------------------------------------------------------------------------------


def test_modify_image_builds_the_dockerfile_on_the_source_and_restores_the_user(
    storage: ScratchStorage, tmp_path: Path
) -> None:
    context = tmp_path / "custom"
    context.mkdir()
    (context / "extra.txt").write_text("custom content\n")
    (context / "Dockerfile").write_text(
        "FROM docker.io/tripleomaster/centos-binary-nova-compute:latest\n"
        "USER root\n"
        "COPY extra.txt /opt/extra.txt\n"
        "RUN id -u > /opt/built-as\n"
        'LABEL custom.label="yes"\n'
        'USER "nova"\n'
        "USER root\n"
    )

    result = _modify(storage, BASE, "-custom", tasks_from="modify_image.yml", modify_dir_path=str(context))

    assert result == f"{BASE}-custom"
    assert _read(storage, result, "/opt/extra.txt") == "custom content\n"
    assert _read(storage, result, "/opt/built-as") == "0\n"
    config = storage.config(result)
    assert config["User"] == "nova"
    labels = config["Labels"]
    assert labels["custom.label"] == "yes" and labels["modified_append_tag"] == "-custom"  # type: ignore[index]
    assert labels["name"] == "base"  # type: ignore[index]  # inherited: built FROM the source image
    base_layers = json.loads(storage.run("inspect", "--type", "image", BASE).stdout)["Docker"]["rootfs"][
        "diff_ids"
    ]
    layers = json.loads(storage.run("inspect", "--type", "image", result).stdout)["Docker"]["rootfs"][
        "diff_ids"
    ]
    assert layers[: len(base_layers)] == base_layers
    assert not (context / "Dockerfile.modified").exists()  # the operator's directory is left alone
    assert storage.containers() == []


def test_a_dockerfile_that_fails_is_one_clear_error(storage: ScratchStorage, tmp_path: Path) -> None:
    context = tmp_path / "broken"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM whatever\nRUN echo build-step-broke >&2; exit 3\n")

    with pytest.raises(ModificationError) as caught:
        _modify(storage, BASE, "-broken", tasks_from="modify_image.yml", modify_dir_path=str(context))

    message = str(caught.value)
    assert message.startswith(f"cannot modify {BASE} (modify_image.yml): building {context / 'Dockerfile'}")
    assert "exit status 3" in message
    assert f"{BASE}-broken" not in storage.images()
    assert storage.containers() == []


def test_modify_image_without_a_dockerfile(storage: ScratchStorage, tmp_path: Path) -> None:
    with pytest.raises(ModificationError, match="has no Dockerfile"):
        _modify(storage, BASE, "-x", tasks_from="modify_image.yml", modify_dir_path=str(tmp_path))


# --- yum_update.yml / dev_install.yml / roles -------------------------------------------------------


def test_yum_update_runs_the_images_dnf_with_the_operators_repositories(
    storage: ScratchStorage, tmp_path: Path
) -> None:
    repos = tmp_path / "repos"
    repos.mkdir()
    (repos / "hotfix.repo").write_text("[hotfix]\nbaseurl=http://127.0.0.1:9/repo\n")

    result = _modify(
        storage,
        WITH_DNF,
        "-updated",
        tasks_from="yum_update.yml",
        yum_repos_dir_path=str(repos),
        update_repo="hotfix,extras",
        compare_host_packages=True,
    )

    log = _read(storage, result, "/var/log/fake-dnf.log").splitlines()
    assert log == [
        "/usr/bin/dnf -y --disablerepo=* --enablerepo=hotfix --enablerepo=extras update",
        "/usr/bin/dnf clean all",
    ]
    assert storage.config(result)["User"] == "nova"
    assert storage.containers() == []


def test_yum_update_of_an_image_without_a_package_manager(storage: ScratchStorage) -> None:
    with pytest.raises(ModificationError) as caught:
        _modify(storage, BASE, "-updated", tasks_from="yum_update.yml")
    assert f"cannot modify {BASE} (yum_update.yml): the image has neither dnf nor yum" in str(caught.value)
    assert storage.containers() == []


def test_dev_install_pip_installs_local_source_offline(storage: ScratchStorage, tmp_path: Path) -> None:
    project = tmp_path / "heat"
    project.mkdir()
    (project / "setup.py").write_text("from setuptools import setup\nsetup(name='heat')\n")

    result = _modify(storage, WITH_PYTHON, "-devel", tasks_from="dev_install.yml", python_dir=[str(project)])

    log = _read(storage, result, "/var/log/fake-py.log")
    assert log.strip() == (
        "/usr/bin/python3 -m pip install --no-deps --no-index --no-build-isolation /tmp/imageprep-dev/0-heat"
    )
    assert storage.containers() == []


def test_dev_install_refuses_gerrit_refspecs(storage: ScratchStorage) -> None:
    refspecs = [{"project": "heat", "refspec": "refs/changes/12/1234/3"}]
    with pytest.raises(ModificationError, match="never downloads source"):
        _modify(storage, WITH_PYTHON, "-devel", tasks_from="dev_install.yml", refspecs=refspecs)


def test_an_unknown_tasks_from_is_an_error(storage: ScratchStorage) -> None:
    with pytest.raises(ModificationError, match="'yum_install.yml' is not one imageprep implements"):
        _modify(storage, BASE, "-x", tasks_from="yum_install.yml")


def test_an_unknown_role_is_one_clear_error(storage: ScratchStorage, tmp_path: Path) -> None:
    request = ModifyRequest(BASE, "-x", role="no-such-role", variables={"foo": "bar"})
    with pytest.raises(ModificationError) as caught:
        modify(storage.buildah(), request, roles_path=(tmp_path,))
    message = str(caught.value)
    assert message.startswith(f"cannot modify {BASE} (role no-such-role): ")
    assert "no-such-role" in message.split(": ", 1)[1]
    assert "not found" in message or "not installed" in message
    assert storage.containers() == []


def test_another_role_runs_with_ansible_and_the_role_interface(
    storage: ScratchStorage, tmp_path: Path
) -> None:
    if find_playbook_program() is None:
        pytest.skip("needs ansible-core (pip install 'imageprep[ansible]')")
    tasks = tmp_path / "roles" / "add-foo-plugin" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text(LABELLING_ROLE_TASKS)
    request = ModifyRequest(
        BASE,
        "modify-123",
        role="add-foo-plugin",
        variables={"foo_version": "1.0.1", "work": "imageprep-role-test"},
        target_image="localhost/test/role-target:1",
    )

    result = modify(storage.buildah(), request, roles_path=(tmp_path / "roles",))

    assert result == "localhost/test/role-target:1modify-123"
    labels = storage.config(result)["Labels"]
    assert labels["foo_version"] == "1.0.1" and labels["build_tool"] == "buildah"  # type: ignore[index]
    assert storage.containers() == []


def test_a_failing_role_quotes_ansible(storage: ScratchStorage, tmp_path: Path) -> None:
    if find_playbook_program() is None:
        pytest.skip("needs ansible-core (pip install 'imageprep[ansible]')")
    tasks = tmp_path / "roles" / "broken" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text(
        "- name: fail on purpose\n  fail:\n    msg: the plugin tarball is missing\n"
    )

    with pytest.raises(ModificationError) as caught:
        modify(storage.buildah(), ModifyRequest(BASE, "-x", role="broken"), roles_path=(tmp_path / "roles",))

    assert str(caught.value).startswith(f"cannot modify {BASE} (role broken): role broken failed: ")
    assert "the plugin tarball is missing" in str(caught.value)
