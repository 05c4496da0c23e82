"""Registry fixtures: each variant is started once per test session and always stopped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.imageserve_servers import served_by
from tests.support.registry_server import (
    RunningRegistry,
    basic_auth_registry_server,
    plain_registry_server,
    registry_available,
    tls_registry_server,
    token_registry_server,
)


def _require_registry() -> None:
    if not registry_available():
        pytest.skip("docker-registry and skopeo are needed (apt-get install docker-registry skopeo)")


@pytest.fixture(scope="session")
def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """docker-registry over plain HTTP on 127.0.0.1, no authentication."""
    _require_registry()
    with plain_registry_server(tmp_path_factory.mktemp("plain-registry")) as registry:
        yield registry


@pytest.fixture(scope="session")
def basic_auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """docker-registry with htpasswd basic auth; ``.username`` / ``.password`` log in."""
    _require_registry()
    with basic_auth_registry_server(tmp_path_factory.mktemp("basic-registry")) as registry:
        yield registry


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """docker-registry with bearer tokens from a test token server (``.token_server``)."""
    _require_registry()
    with token_registry_server(tmp_path_factory.mktemp("token-registry")) as registry:
        yield registry


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """docker-registry over HTTPS with a trustme CA (``.ca_file``), no authentication."""
    _require_registry()
    with tls_registry_server(tmp_path_factory.mktemp("tls-registry")) as registry:
        yield registry


@pytest.fixture(scope="module", params=["imageprep", "apache", "nginx"])
def host(
    request: pytest.FixtureRequest, root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The test module's tree (its ``root`` fixture) served by each of ``imageprep serve`` and the
    printed Apache and nginx configurations in turn: their ``HOST:PORT``."""
    with served_by(request.param, root, tmp_path_factory.mktemp(request.param)) as address:
        yield address
