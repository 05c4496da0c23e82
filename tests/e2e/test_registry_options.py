"""The registry options every command shares, and the upstream options operators' scripts pass.

``list``/``show``/``delete`` log in to a private registry with the auth files or
``--username/--password``; ``hotfix`` reaches a declared-insecure registry; ``prepare --log-file``
and ``push --cleanup`` are accepted with their upstream meaning; bad option values are one error.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import Run
from tests.support.buildimages import (
    buildah_available,
    make_base_image,
    make_rpm,
    make_storage,
    rpm_tools_available,
)
from tests.support.imagegen import make_image, random_layer
from tests.support.registry_server import (
    RunningRegistry,
    basic_auth_registry_server,
    registry_available,
    tls_registry_server,
)
from tests.support.seeding import seed_image

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not registry_available(), reason="needs docker-registry and skopeo"),
]
TAG = "current-tripleo"
REPOSITORY = "tripleomaster/centos-binary-keystone"
IMAGE = make_image({"name": "keystone"}, [random_layer(2000, "keystone", oci=True)], oci=True)


@pytest.fixture
def private(tmp_path: Path) -> Iterator[RunningRegistry]:
    with basic_auth_registry_server(tmp_path / "private") as running:
        seed_image(running, REPOSITORY, TAG, IMAGE)
        yield running


def _auth_file(path: Path, registry: RunningRegistry) -> Path:
    token = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    path.write_text(json.dumps({"auths": {registry.host: {"auth": token}}}))
    return path


def test_list_and_show_of_a_private_registry_need_a_login(imageprep: Run, private: RunningRegistry) -> None:
    done = imageprep("show", f"{private.host}/{REPOSITORY}:{TAG}")
    assert done.returncode == 4 and "requires a username and password" in done.stderr


def test_list_and_show_log_in_with_the_auth_files(
    imageprep: Run, private: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(_auth_file(tmp_path / "auth.json", private)))
    listed = imageprep("list", "--registry-url", private.host, "-f", "json", check=True)
    assert [row["Image Name"] for row in json.loads(listed.stdout)] == [f"{private.host}/{REPOSITORY}:{TAG}"]
    shown = imageprep("show", f"{private.host}/{REPOSITORY}:{TAG}", "-f", "json", check=True)
    assert json.loads(shown.stdout)["Digest"] == IMAGE.digest


def test_list_show_and_delete_log_in_with_username_and_password(
    imageprep: Run, private: RunningRegistry
) -> None:
    assert private.username and private.password
    login = ("--username", private.username, "--password", private.password)
    listed = imageprep("list", "--registry-url", private.host, "-f", "value", *login, check=True)
    assert f"{private.host}/{REPOSITORY}:{TAG}" in listed.stdout
    shown = imageprep("show", f"{private.host}/{REPOSITORY}:{TAG}", "-f", "json", *login, check=True)
    assert json.loads(shown.stdout)["Digest"] == IMAGE.digest
    wrong = imageprep(
        "show", f"{private.host}/{REPOSITORY}:{TAG}", "--username", private.username, "--password", "no"
    )
    assert wrong.returncode == 4 and f"refused user {private.username!r}" in wrong.stderr
    deleted = imageprep(
        "delete", f"{REPOSITORY}:{TAG}", "--registry-url", private.host, "-y", *login, check=True
    )
    assert f"deleted {private.host}/{REPOSITORY}:{TAG}" in deleted.stdout
    assert private.password not in deleted.stdout + deleted.stderr


def test_a_username_without_a_password_is_one_error(imageprep: Run) -> None:
    done = imageprep("list", "--registry-url", "127.0.0.1:1", "--username", "alice")
    assert done.returncode == 2 and "needs both a username and a password" in done.stderr


def test_an_insecure_registry_that_is_not_an_address_is_refused(imageprep: Run) -> None:
    done = imageprep("list", "--insecure-registry", "bad host")
    assert done.returncode == 2 and "'bad host' is not HOST or HOST:PORT" in done.stderr


def test_prepare_log_file_gets_the_runs_log_lines(imageprep: Run, tmp_path: Path) -> None:
    environment = tmp_path / "env.yaml"
    environment.write_text(
        yaml.safe_dump({"parameter_defaults": {"ContainerImagePrepare": [{"tag_from_label": "x"}]}})
    )
    done = imageprep("prepare", "-e", str(environment), "--dry-run", "--offline", "--log-file", "prepare.log")
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "prepare.log").read_text()
    assert "tag_from_label 'x' is not evaluated" in log  # the run's warning, in the file too
    again = imageprep(
        "prepare", "-e", str(environment), "--dry-run", "--offline", "--log-file", "prepare.log"
    )
    assert again.returncode == 0
    assert (tmp_path / "prepare.log").read_text().count("is not evaluated") == 2  # appended, as upstream


def test_push_accepts_cleanup_and_removes_nothing(
    imageprep: Run, private: RunningRegistry, tmp_path: Path
) -> None:
    assert private.username and private.password
    login = ("--username", private.username, "--password", private.password)
    source = f"{private.host}/{REPOSITORY}:{TAG}"
    done = imageprep(
        "push", source, "--registry-url", private.host, "--append-tag=-copy", "--cleanup", *login,
        "--source-username", private.username, "--source-password", private.password,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "--cleanup: push removes no image" in done.stderr
    shown = imageprep("show", f"{private.host}/{REPOSITORY}:{TAG}-copy", "-f", "json", *login, check=True)
    assert json.loads(shown.stdout)["Digest"] == IMAGE.digest
    imageprep("show", source, *login, check=True)  # the source is still there


@pytest.mark.skipif(
    not (buildah_available() and rpm_tools_available()),
    reason="needs buildah, busybox-static, rpm and rpmbuild",
)
def test_hotfix_reaches_a_declared_insecure_registry(
    imageprep: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = make_storage(tmp_path / "storage")
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(storage.conf))
    try:
        with tls_registry_server(tmp_path / "tls") as untrusted:  # its CA is nowhere imageprep looks
            local = "localhost/tripleomaster/centos-binary-nova-compute:current-tripleo"
            make_base_image(storage, local)
            insecure = ("--insecure-registry", untrusted.host)
            imageprep("push", "--local", local, "--registry-url", untrusted.host, *insecure, check=True)
            storage.run("rmi", local)
            remote = f"{untrusted.host}/tripleomaster/centos-binary-nova-compute:current-tripleo"
            rpms = tmp_path / "rpms"
            make_rpm(rpms, "imageprep-insecure-hotfix")
            refused = imageprep("hotfix", "--image", remote, "--rpms-path", str(rpms))
            assert refused.returncode == 7 and "TLS certificate verification failed" in refused.stderr
            done = imageprep("hotfix", "--image", remote, "--rpms-path", str(rpms), *insecure)
            assert done.returncode == 0, done.stderr
            assert f"{remote}-latest" in storage.images()
    finally:
        storage.cleanup()


def test_a_registry_ca_in_the_users_certs_d_is_trusted_without_ca_file(
    imageprep: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with tls_registry_server(tmp_path / "tls") as registry:
        untrusted = imageprep("list", "--registry-url", registry.host, "-f", "value")
        assert untrusted.returncode != 0 and "certificate verification failed" in untrusted.stderr
        assert "Traceback" not in untrusted.stderr
        directory = tmp_path / "home" / ".config" / "containers" / "certs.d" / registry.host
        directory.mkdir(parents=True)
        (directory / "ca.crt").write_bytes(Path(str(registry.ca_file)).read_bytes())
        imageprep("list", "--registry-url", registry.host, "-f", "value", check=True)
