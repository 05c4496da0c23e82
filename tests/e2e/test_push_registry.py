"""``imageprep push`` from one registry to another, with basic and bearer-token logins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Run
from tests.support.imagegen import make_image
from tests.support.registry_server import (
    RunningRegistry,
    basic_auth_registry_server,
    plain_registry_server,
    registry_available,
    token_registry_server,
)
from tests.support.seeding import seed_image, skopeo_inspect

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not registry_available(), reason="needs docker-registry and skopeo"),
]
REPOSITORY = "tripleomaster/centos-binary-nova-api"
IMAGE = make_image({"name": "nova-api"}, oci=True)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with plain_registry_server(tmp_path_factory.mktemp("source")) as registry:
        seed_image(registry, REPOSITORY, "current-tripleo", IMAGE)
        yield registry


@pytest.fixture(scope="module")
def basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with basic_auth_registry_server(tmp_path_factory.mktemp("basic")) as registry:
        yield registry


def test_push_to_a_basic_auth_registry_keeps_path_and_digest(
    imageprep: Run, source: RunningRegistry, basic: RunningRegistry
) -> None:
    assert basic.username and basic.password
    result = imageprep(
        "push",
        "--registry-url",
        basic.host,
        "--append-tag=-pushed",
        "--username",
        basic.username,
        "--password",
        basic.password,
        f"{source.host}/{REPOSITORY}:current-tripleo",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{basic.host}/{REPOSITORY}:current-tripleo-pushed {IMAGE.digest} (pushed)\n"
    assert skopeo_inspect(basic, REPOSITORY, "current-tripleo-pushed")["Digest"] == IMAGE.digest


def test_push_to_a_token_registry(imageprep: Run, source: RunningRegistry, tmp_path: Path) -> None:
    with token_registry_server(tmp_path / "token") as token:
        assert token.username and token.password
        result = imageprep(
            "push",
            "--registry-url",
            token.host,
            "--username",
            token.username,
            "--password",
            token.password,
            f"docker://{source.host}/{REPOSITORY}:current-tripleo",
        )
        assert result.returncode == 0, result.stderr
        assert skopeo_inspect(token, REPOSITORY, "current-tripleo")["Digest"] == IMAGE.digest


def test_dry_run_only_logs_in(imageprep: Run, source: RunningRegistry, basic: RunningRegistry) -> None:
    assert basic.username
    image = f"{source.host}/{REPOSITORY}:current-tripleo"
    ok = imageprep(
        "push",
        "--dry-run",
        "--registry-url",
        basic.host,
        "--username",
        basic.username,
        "--password",
        str(basic.password),
        "--append-tag=-dry",
        image,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == f"would push {image} to {basic.host}/{REPOSITORY}:current-tripleo-dry\n"
    with pytest.raises(AssertionError):
        skopeo_inspect(basic, REPOSITORY, "current-tripleo-dry")

    refused = imageprep(
        "push",
        "--dry-run",
        "--registry-url",
        basic.host,
        "--username",
        basic.username,
        "--password",
        "wrong-secret-value",
        image,
    )
    assert refused.returncode == 4
    assert basic.host in refused.stderr
    assert "wrong-secret-value" not in refused.stderr and "Traceback" not in refused.stderr


def test_push_of_a_missing_image_fails_with_the_transfer_exit_code(
    imageprep: Run, source: RunningRegistry, basic: RunningRegistry
) -> None:
    result = imageprep(
        "push",
        "--registry-url",
        basic.host,
        "--username",
        str(basic.username),
        "--password",
        str(basic.password),
        f"{source.host}/tripleomaster/absent:1",
    )
    assert result.returncode == 5
    assert f"error: cannot push {source.host}/tripleomaster/absent:1" in result.stderr


def test_username_without_password_is_a_usage_error(imageprep: Run, source: RunningRegistry) -> None:
    result = imageprep("push", "--registry-url", "127.0.0.1:1", "--username", "u", f"{source.host}/a/b:1")
    assert result.returncode == 2
    assert "--username/--password needs both" in result.stderr
