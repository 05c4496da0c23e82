"""The buildah backend: storage driver fallback, bounded calls, cleanup, and moving images between
local storage and real registries through the copy engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from imageprep.model.errors import ModificationError, TransferError
from imageprep.modify.buildah import Buildah, BuildahSettings
from imageprep.registry.credentials import Credential, CredentialStore
from imageprep.registry.session import RegistrySession
from imageprep.transfer.report import Outcome
from imageprep.usecases.localstorage import fetch_into_storage, send_from_storage
from tests.support.buildimages import ScratchStorage, buildah_available, make_base_image, make_storage
from tests.support.registry_server import RunningRegistry
from tests.support.seeding import skopeo_inspect

pytestmark = pytest.mark.integration
BASE = "localhost/test/base:1"


def _fake_buildah(directory: Path, body: str) -> Path:
    script = directory / "buildah"
    script.write_text(f'#!/bin/sh\necho "$*" >> {directory}/calls\n{body}\n')
    script.chmod(0o755)
    return script


def test_vfs_is_used_when_the_configured_driver_cannot_work(tmp_path: Path) -> None:
    script = _fake_buildah(
        tmp_path,
        'case "$*" in *"--storage-driver vfs"*) echo ok; exit 0;; esac\n'
        "echo 'Error: kernel does not support overlay fs: overlay is not supported over extfs' >&2; exit 125",
    )
    buildah = Buildah(BuildahSettings(executable=str(script), root=tmp_path / "graph"))

    assert buildah.run(["images"], subject="x") == "ok"
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == [
        f"--root {tmp_path / 'graph'} info",
        f"--root {tmp_path / 'graph'} --storage-driver vfs images",
    ]
    assert 'driver = "vfs"' in buildah.storage_conf()


def test_other_storage_trouble_is_reported_not_papered_over(tmp_path: Path) -> None:
    script = _fake_buildah(tmp_path, "echo 'Error: permission denied: /srv/storage' >&2; exit 125")
    with pytest.raises(
        ModificationError, match="cannot open its container storage: Error: permission denied"
    ):
        Buildah(BuildahSettings(executable=str(script))).run(["images"], subject="x")


def test_every_call_is_bounded(tmp_path: Path) -> None:
    script = _fake_buildah(tmp_path, 'case "$1" in info) exit 0;; esac\nexec sleep 30')
    buildah = Buildah(BuildahSettings(executable=str(script), timeout=0.5))
    with pytest.raises(ModificationError, match="buildah inspect did not finish within 0.5s"):
        buildah.image_exists("x")


def test_a_missing_buildah_says_what_to_install() -> None:
    with pytest.raises(ModificationError) as caught:
        Buildah(BuildahSettings(executable="/nonexistent/buildah")).run(["images"], subject="x")
    assert "is not installed" in caught.value.message and "apt-get install buildah" in str(caught.value)


# --- real buildah -------------------------------------------------------------------------------------

needs_buildah = pytest.mark.skipif(not buildah_available(), reason="needs buildah and busybox-static")


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScratchStorage]:
    if not buildah_available():
        pytest.skip("needs buildah and busybox-static")
    scratch = make_storage(tmp_path_factory.mktemp("storage"))
    make_base_image(scratch, BASE, labels={"name": "base"})
    yield scratch
    scratch.cleanup()


@needs_buildah
def test_working_containers_are_removed_when_a_step_fails(storage: ScratchStorage) -> None:
    buildah = storage.buildah()
    with (
        pytest.raises(ModificationError, match="step failed: buildah run failed"),
        buildah.container(BASE) as c,
    ):
        assert storage.containers() != []
        buildah.run_in(c, ["/bin/sh", "-c", "exit 4"], subject="step failed")
    assert storage.containers() == []


@needs_buildah
def test_a_local_image_goes_to_a_registry_and_comes_back_the_same(
    storage: ScratchStorage, plain_registry: RunningRegistry
) -> None:
    buildah = storage.buildah()
    with RegistrySession() as session:
        client = session.client(plain_registry.host)
        sent = send_from_storage(buildah, BASE, client, "roundtrip/base", "1")
        assert sent.outcome is Outcome.COPIED
        assert sent.source == "containers-storage:localhost/test/base:1"
        inspected = skopeo_inspect(plain_registry, "roundtrip/base", "1")
        assert inspected["Digest"] == sent.digest
        assert inspected["Labels"]["name"] == "base"  # type: ignore[index]

        again = send_from_storage(buildah, BASE, client, "roundtrip/base", "1")
        assert again.outcome is Outcome.SKIPPED

        fetch_into_storage(client, "roundtrip/base", "1", buildah, "127.0.0.1/fetched/base:1")
    original = json.loads(storage.run("inspect", "--type", "image", BASE).stdout)
    fetched = json.loads(storage.run("inspect", "--type", "image", "127.0.0.1/fetched/base:1").stdout)
    assert fetched["FromImageID"] == original["FromImageID"]  # same config, same image id
    storage.run("rmi", "127.0.0.1/fetched/base:1")


@needs_buildah
def test_fetch_and_send_use_the_registry_logins(
    storage: ScratchStorage, token_registry: RunningRegistry
) -> None:
    buildah = storage.buildah()
    assert token_registry.username and token_registry.password
    login = CredentialStore(
        {token_registry.host: Credential(token_registry.username, token_registry.password)}
    )
    with RegistrySession(login) as session:
        client = session.client(token_registry.host)
        assert send_from_storage(buildah, BASE, client, "private/base", "1").outcome is Outcome.COPIED
        fetch_into_storage(client, "private/base", "1", buildah, "127.0.0.1/private/base:1")
    assert "127.0.0.1/private/base:1" in storage.images()
    storage.run("rmi", "127.0.0.1/private/base:1")
    with RegistrySession() as anonymous:
        result = send_from_storage(buildah, BASE, anonymous.client(token_registry.host), "private/base", "2")
    assert result.outcome is Outcome.FAILED and result.error


@needs_buildah
def test_fetching_a_missing_image_names_it(storage: ScratchStorage, plain_registry: RunningRegistry) -> None:
    with RegistrySession() as session, pytest.raises(TransferError) as caught:
        fetch_into_storage(session.client(plain_registry.host), "no/such", "1", storage.buildah(), "x/y:1")
    assert f"cannot fetch {plain_registry.host}/no/such:1 into local storage" in str(caught.value)
