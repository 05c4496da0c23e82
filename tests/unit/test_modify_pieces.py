"""Small pure pieces of the modify path: requests, inputs checks, commands, names."""

from __future__ import annotations

from pathlib import Path

import pytest

from imageprep.imageserve.tree import ImageServeTree
from imageprep.model.errors import ModificationError
from imageprep.model.location import Location
from imageprep.model.reference import ImageReference
from imageprep.modify.ansiblerole import playbook
from imageprep.modify.buildah import stderr_tail
from imageprep.modify.devinstall import source_directories
from imageprep.modify.imageinfo import find_program, parse_inspect
from imageprep.modify.request import ModifyRequest
from imageprep.modify.rpms import RPM_MAGIC, find_rpms
from imageprep.modify.yumupdate import repository_mounts, update_command
from imageprep.settings import Settings
from imageprep.usecases.hotfix import local_image_name
from imageprep.usecases.localstorage import local_name
from imageprep.usecases.locations import locate
from imageprep.usecases.push import PushRequest


def test_result_image_appends_the_tag_verbatim() -> None:
    request = ModifyRequest("localhost:8787/t/nova-api:latest", "modify-123")
    assert request.result_image == "localhost:8787/t/nova-api:latestmodify-123"
    targeted = ModifyRequest("local/x:1", "-hotfix", target_image="192.0.2.1:8787/t/x:1")
    assert targeted.result_image == "192.0.2.1:8787/t/x:1-hotfix"


def test_tasks_from_defaults_to_modify_image_and_other_roles_are_not_builtin() -> None:
    assert ModifyRequest("x:1", "-m").tasks_from == "modify_image.yml"
    assert ModifyRequest("x:1", "-m", role="tripleo_modify_image").builtin
    custom = ModifyRequest("x:1", "-m", role="add-foo-plugin")
    assert not custom.builtin and custom.label == "role add-foo-plugin"


def test_path_variables_are_checked() -> None:
    with pytest.raises(ModificationError, match="rpm_install.yml needs modify_vars.rpms_path"):
        ModifyRequest("x:1", "-m", variables={"tasks_from": "rpm_install.yml"}).path("rpms_path")
    with pytest.raises(ModificationError, match="modify_vars.rpms_path must be a path"):
        ModifyRequest("x:1", "-m", variables={"rpms_path": ["a"]}).path("rpms_path")
    assert ModifyRequest("x:1", "-m", variables={"update_repo": "a, b"}).text_list("update_repo") == [
        "a",
        "b",
    ]


def test_find_rpms_takes_only_real_rpm_files(tmp_path: Path) -> None:
    (tmp_path / "b.rpm").write_bytes(RPM_MAGIC + b"rest")
    (tmp_path / "a.rpm").write_bytes(RPM_MAGIC + b"rest")
    (tmp_path / "notes.txt").write_text("ignored")
    assert [path.name for path in find_rpms(tmp_path)] == ["a.rpm", "b.rpm"]
    (tmp_path / "c.rpm").write_text("<html>")
    with pytest.raises(ModificationError, match=r"c\.rpm is not an RPM package"):
        find_rpms(tmp_path)
    with pytest.raises(ModificationError, match="is not a directory"):
        find_rpms(tmp_path / "a.rpm")


def test_stderr_tail_keeps_the_last_distinct_lines() -> None:
    text = "noise\n\nstep 1\nexit status 3\nexit status 3\nError: building failed\n"
    assert stderr_tail(text, 3) == "step 1 | exit status 3 | Error: building failed"
    assert stderr_tail("") == "no error output"


def test_image_info_reads_user_labels_and_format() -> None:
    manifest = '{"mediaType": "application/vnd.docker.distribution.manifest.v2+json"}'
    info = parse_inspect({"Docker": {"config": {"User": "nova", "Labels": {"a": "b"}}}, "Manifest": manifest})
    assert (info.user, info.labels, info.push_format) == ("nova", {"a": "b"}, "v2s2")
    assert parse_inspect({"OCIv1": {"config": {}}, "Manifest": "{}"}).push_format == "oci"


def test_find_program_does_not_follow_links_out_of_the_image(tmp_path: Path) -> None:
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "bin").symlink_to("/usr/bin")  # absolute: would resolve on the host
    assert find_program(tmp_path, "sh") is None
    (tmp_path / "usr/bin/rpm").symlink_to("rpm.real")
    assert find_program(tmp_path, "rpm") == "/usr/bin/rpm"


def test_yum_repositories_and_their_local_baseurls_are_mounted(tmp_path: Path) -> None:
    local_repo = tmp_path / "local-repo"
    local_repo.mkdir()
    repos = tmp_path / "yum.repos.d"
    repos.mkdir()
    (repos / "a.repo").write_text(f"[a]\nbaseurl = file://{local_repo}/\n[b]\nbaseurl=file:///absent\n")
    assert repository_mounts(repos) == [f"{repos}:/etc/yum.repos.d:ro", f"{local_repo}:{local_repo}:ro"]
    assert update_command("/usr/bin/dnf", [], []) == ["/usr/bin/dnf", "-y", "update"]
    assert update_command("/usr/bin/yum", ["hotfix"], ["/tmp/x.rpm"]) == [
        "/usr/bin/yum",
        "-y",
        "--disablerepo=*",
        "--enablerepo=hotfix",
        "update",
        "/tmp/x.rpm",
    ]


def test_dev_install_needs_python_projects(tmp_path: Path) -> None:
    request = ModifyRequest(
        "x:1", "-d", variables={"tasks_from": "dev_install.yml", "python_dir": [str(tmp_path)]}
    )
    with pytest.raises(ModificationError, match="has no setup.py"):
        source_directories(request)
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n")
    assert source_directories(request) == [tmp_path]


def test_role_playbook_passes_the_role_interface_variables() -> None:
    request = ModifyRequest(
        "localhost:8787/t/heat-docker-agents-centos:latest",
        "modify-123",
        role="add-foo-plugin",
        variables={"foo_version": "1.0.1"},
        target_image="localhost:8787/t/heat-docker-agents-centos:latest",
    )
    (play,) = playbook(request)
    assert play["hosts"] == "localhost" and play["gather_facts"] is False
    assert play["tasks"] == [{"import_role": {"name": "add-foo-plugin"}}]
    assert play["vars"] == {
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        "foo_version": "1.0.1",
        "source_image": "localhost:8787/t/heat-docker-agents-centos:latest",
        "target_image": "localhost:8787/t/heat-docker-agents-centos:latest",
        "modified_append_tag": "modify-123",
        "container_build_tool": "buildah",
    }


LOCAL = "192.0.2.9:8787"


def test_push_of_a_registry_image_keeps_the_path_and_replaces_the_host() -> None:
    # vector 63: push docker.io/namespace/foo to the undercloud registry
    request = PushRequest.parse(
        "docker.io/namespace/foo",
        local=False,
        destination=Location.registry("uc.ctlplane.somedomain:8787"),
    )
    assert not request.local
    assert (request.source.registry, request.source.repository) == ("docker.io", "namespace/foo")
    assert str(request.target) == "uc.ctlplane.somedomain:8787/namespace/foo:latest"
    deep = PushRequest.parse(
        "docker://192.0.2.9:5000/mylocal/ns/foo:bar",
        local=False,
        destination=Location.registry("h:1"),
    )
    assert str(deep.target) == "h:1/mylocal/ns/foo:bar"
    assert not deep.destination.local
    local = PushRequest.parse(
        "docker.io/namespace/foo", local=False, destination=Location.local_registry(LOCAL)
    )
    assert local.destination.local and str(local.target) == f"{LOCAL}/namespace/foo:latest"


def test_push_destinations_are_located_once(tmp_path: Path) -> None:
    settings = Settings(image_serve_root=tmp_path / "tree", hostname="undercloud")
    assert locate(settings, "docker://h:1/") == Location.registry("h:1")
    assert locate(settings, None) == Location.local_registry("localhost:8787")
    assert locate(settings, "localhost:8787").local
    assert locate(settings, None, "quay.io") == Location.registry("quay.io")
    tree = ImageServeTree(tmp_path / "tree")
    tree.record_registry_name("192.0.2.9:8787")  # a prepare published the tree under this name
    assert locate(settings, None) == Location.local_registry("192.0.2.9:8787")
    assert locate(settings, "192.0.2.9:8787").local and locate(settings, "localhost:8787").local


def test_push_of_a_local_image_by_flag_or_prefix() -> None:
    # vector 64: --local or a containers-storage: prefix
    for text, flag in (
        ("docker.io/namespace/foo", True),
        ("containers-storage:docker.io/namespace/foo", False),
    ):
        request = PushRequest.parse(
            text, local=flag, destination=Location.registry("127.0.0.1:8787"), append_tag="baz"
        )
        assert request.local
        assert request.local_name == "docker.io/namespace/foo:latest"
        assert str(request.target) == "127.0.0.1:8787/namespace/foo:latestbaz"


def test_local_names_are_fully_qualified() -> None:
    assert local_name(ImageReference.parse("tripleomaster/nova:1")) == "docker.io/tripleomaster/nova:1"
    pinned = ImageReference.parse("quay.io/a/b@sha256:" + "a" * 64)
    assert local_name(pinned) == "quay.io/a/b:sha256-" + "a" * 64
    assert local_image_name("docker://localhost/image/name") == "localhost/image/name:latest"
    with pytest.raises(ModificationError, match="pinned by digest"):
        local_image_name("quay.io/a/b@sha256:" + "a" * 64)
