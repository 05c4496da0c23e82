"""The system's CAs are trusted through OpenSSL's hashed directory when it stands in for the bundle
(nothing parsed up front), and through the bundle otherwise; checked by real TLS handshakes with a
registry whose CA plays the system's (the system paths are pointed at files made here)."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from imageprep.registry import tls
from tests.support.registry_server import RunningRegistry, registry_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not registry_available(), reason="needs docker-registry"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to name the hashed entry"),
]


def _system(tmp_path: Path, ca_file: Path, *, hashed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 'system' bundle holding the test CA, and a directory with its hashed entry (or none)."""
    bundle, directory = tmp_path / "bundle.pem", tmp_path / "certs"
    directory.mkdir()
    bundle.write_bytes(ca_file.read_bytes())
    if hashed:
        subject = subprocess.run(
            ["openssl", "x509", "-hash", "-noout", "-in", str(ca_file)],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        os.symlink(bundle, directory / f"{subject}.0")
    paths = ssl.DefaultVerifyPaths(
        str(bundle), str(directory), "SSL_CERT_FILE", str(bundle), "SSL_CERT_DIR", str(directory)
    )
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: paths)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)


def _handshake(context: ssl.SSLContext, registry: RunningRegistry) -> None:
    host, port = registry.host.rsplit(":", 1)
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host),
    ):
        pass  # the handshake verified the chain


def test_the_hashed_directory_is_read_only_for_the_ca_a_server_names(
    tls_registry: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _system(tmp_path, Path(str(tls_registry.ca_file)), hashed=True, monkeypatch=monkeypatch)
    context = tls.verified_context(None)
    assert context.cert_store_stats()["x509_ca"] == 0  # nothing parsed before a server needs it
    _handshake(context, tls_registry)
    assert context.cert_store_stats()["x509_ca"] == 1


def test_without_a_matching_hashed_directory_the_bundle_is_loaded(
    tls_registry: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _system(tmp_path, Path(str(tls_registry.ca_file)), hashed=False, monkeypatch=monkeypatch)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "bundle.pem"))  # what set_default_verify_paths reads
    context = tls.verified_context(None)
    assert context.cert_store_stats()["x509_ca"] == 1
    _handshake(context, tls_registry)


def test_a_ca_file_that_is_the_trusted_bundle_is_not_loaded_twice_and_others_are(
    tls_registry: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _system(tmp_path, Path(str(tls_registry.ca_file)), hashed=True, monkeypatch=monkeypatch)
    same = tls.verified_context(str(tmp_path / "bundle.pem"))
    assert same.cert_store_stats()["x509_ca"] == 0
    _handshake(same, tls_registry)
    other = tmp_path / "other.pem"
    other.write_bytes(Path(str(tls_registry.ca_file)).read_bytes())
    assert tls.verified_context(str(other)).cert_store_stats()["x509_ca"] == 1
