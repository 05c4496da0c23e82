"""``certs.d``: a registry's own CA and client certificate, found by its ``HOST:PORT`` directory,
against real TLS registries (one of them refusing clients without a certificate)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from imageprep.model.errors import ImageprepError, RegistryError
from imageprep.registry import RegistrySession
from imageprep.registry.endpoint import ProbeOutcome
from tests.support.registry_server import RunningRegistry, registry_available, tls_registry_server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not registry_available(), reason="needs docker-registry"),
]


@pytest.fixture(scope="module")
def mutual_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with tls_registry_server(tmp_path_factory.mktemp("mtls"), client_certificates=True) as registry:
        yield registry


def _host_directory(root: Path, registry: RunningRegistry) -> Path:
    directory = root / registry.host
    directory.mkdir(parents=True)
    return directory


def _counting_probes(session: RegistrySession, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URLs the session probes (the real probe still runs)."""
    asked: list[str] = []
    real = session.transport.probe

    def probe(url: str, *, verify: bool) -> ProbeOutcome:
        asked.append(url)
        return real(url, verify=verify)

    monkeypatch.setattr(session.transport, "probe", probe)
    return asked


def test_a_ca_in_the_hosts_directory_is_trusted_and_spares_the_plain_http_probe(
    tls_registry: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tls_registry.ca_file is not None
    roots = (tmp_path / "user-certs.d", tmp_path / "system-certs.d")
    shutil.copy(tls_registry.ca_file, _host_directory(roots[1], tls_registry) / "ca.crt")
    with RegistrySession(certificate_roots=roots) as session:
        asked = _counting_probes(session, monkeypatch)
        session.client(tls_registry.host).ping()
        session.client(tls_registry.host).catalog()
        assert session.probe(tls_registry.host) == "https"
        assert tls_registry.host not in session.insecure_hosts()
    assert asked == []  # a loopback host with its own CA speaks TLS: nothing asked in plain HTTP


def test_without_the_hosts_directory_the_certificate_is_refused_and_the_host_probed(
    tls_registry: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = RunningRegistry("127.0.0.1:1", "https://127.0.0.1:1", tmp_path)
    shutil.copy(str(tls_registry.ca_file), _host_directory(tmp_path / "certs.d", other) / "ca.crt")
    with RegistrySession(certificate_roots=(tmp_path / "certs.d",)) as session:
        asked = _counting_probes(session, monkeypatch)
        with pytest.raises(RegistryError, match="certificate verification failed"):
            session.client(tls_registry.host).ping()
    assert asked == [f"http://{tls_registry.host}/v2/"]


def test_only_the_first_root_with_a_directory_for_the_host_is_read(
    tls_registry: RunningRegistry, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _host_directory(first, tls_registry)  # present but empty: it wins, so its CA-less trust applies
    shutil.copy(str(tls_registry.ca_file), _host_directory(second, tls_registry) / "ca.crt")
    with (
        RegistrySession(certificate_roots=(first, second)) as session,
        pytest.raises(RegistryError, match="certificate verification failed"),
    ):
        session.client(tls_registry.host).ping()


def test_a_client_certificate_pair_is_shown_to_a_registry_that_demands_one(
    mutual_tls: RunningRegistry, tmp_path: Path
) -> None:
    directory = _host_directory(tmp_path / "certs.d", mutual_tls)
    shutil.copy(str(mutual_tls.ca_file), directory / "ca.crt")
    shutil.copy(mutual_tls.root / "client.cert", directory / "client.cert")
    shutil.copy(mutual_tls.root / "client.key", directory / "client.key")
    with RegistrySession(certificate_roots=(tmp_path / "certs.d",)) as session:
        session.client(mutual_tls.host).ping()
        assert session.client(mutual_tls.host).catalog() == []


def test_without_a_client_certificate_that_registry_fails_the_request_with_an_error(
    mutual_tls: RunningRegistry, tmp_path: Path
) -> None:
    directory = _host_directory(tmp_path / "certs.d", mutual_tls)
    shutil.copy(str(mutual_tls.ca_file), directory / "ca.crt")
    slept: list[float] = []
    with (
        RegistrySession(certificate_roots=(tmp_path / "certs.d",), sleep=slept.append) as session,
        pytest.raises(RegistryError, match="wants a client certificate") as refused,
    ):
        session.client(mutual_tls.host).ping()
    assert f"certs.d/{mutual_tls.host}/" in (refused.value.hint or "")
    assert slept == []  # a refused certificate is not retried


def test_a_client_certificate_without_its_key_is_refused_naming_the_file(
    tls_registry: RunningRegistry, tmp_path: Path
) -> None:
    directory = _host_directory(tmp_path / "certs.d", tls_registry)
    shutil.copy(str(tls_registry.ca_file), directory / "ca.crt")
    (directory / "client.cert").write_text("not used\n")
    with (
        RegistrySession(certificate_roots=(tmp_path / "certs.d",)) as session,
        pytest.raises(ImageprepError, match=r"client\.cert has no client\.key"),
    ):
        session.client(tls_registry.host).ping()
