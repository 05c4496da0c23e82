"""Pulling over verified TLS: ``serve --tls-cert/--tls-key``, and the printed Apache and nginx configs.

The certificate comes from a trustme CA that only the client is told about (skopeo's
``--cert-dir``), so every pull here is verified; a client without the CA must refuse the server.
Bad TLS files are one error line before the server starts.
"""

from __future__ import annotations

import hashlib
import http.client
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from imageprep.imageserve import ImageServeTree
from imageprep.transfer import CopyJob, copy_images
from tests.e2e.conftest import Run
from tests.support.imagegen import GeneratedImage, make_image, make_layer, random_layer
from tests.support.imageserve_servers import (
    SKOPEO_TIMEOUT,
    TlsFiles,
    apache_available,
    apache_serving,
    imageprep_serving,
    make_tls_files,
    nginx_available,
    nginx_serving,
    world_readable_directory,
)
from tests.support.memory_store import MemoryStore
from tests.support.registry_server import registry_available

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not registry_available(), reason="needs skopeo")]
REPOSITORY = "tripleo/nova-api"
TAG = "current"


@pytest.fixture(scope="module")
def image() -> GeneratedImage:
    layers = [random_layer(700_000, "tls-layer", oci=True), make_layer({"etc/tls": b"tls"}, oci=True)]
    return make_image({"name": "tls"}, layers, oci=True)


@pytest.fixture(scope="module")
def base(image: GeneratedImage) -> Iterator[Path]:
    """A world-readable directory with the tree (``tree``) and the TLS files (``tls``)."""
    with world_readable_directory("imageprep-tls-") as directory:
        source = MemoryStore("memory")
        source.add_image(REPOSITORY, TAG, image)
        tree = ImageServeTree(directory / "tree")
        assert not copy_images([CopyJob(source, REPOSITORY, TAG, tree, REPOSITORY, TAG)]).failed
        yield directory


@pytest.fixture(scope="module")
def tls(base: Path) -> TlsFiles:
    return make_tls_files(base / "tls")


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["skopeo", *args], capture_output=True, text=True, timeout=SKOPEO_TIMEOUT, check=False
    )


def _verified_copy_digest(host: str, tls: TlsFiles) -> str:
    """skopeo copy with verification (the CA from --src-cert-dir): the digest of the manifest it got."""
    with tempfile.TemporaryDirectory(prefix="imageprep-tls-pull-") as target:
        result = _skopeo(
            "copy",
            "--src-cert-dir",
            str(tls.cert_dir),
            f"docker://{host}/{REPOSITORY}:{TAG}",
            f"dir:{target}",
        )
        assert result.returncode == 0, result.stderr
        return "sha256:" + hashlib.sha256((Path(target) / "manifest.json").read_bytes()).hexdigest()


def _assert_unverified_client_refuses(host: str) -> None:
    result = _skopeo("inspect", "--raw", f"docker://{host}/{REPOSITORY}:{TAG}")
    assert result.returncode != 0
    assert "certificate" in result.stderr


def test_skopeo_pulls_from_serve_over_verified_tls(base: Path, tls: TlsFiles, image: GeneratedImage) -> None:
    with imageprep_serving(base / "tree", tls=tls) as served:
        assert _verified_copy_digest(served.host, tls) == image.digest
        _assert_unverified_client_refuses(served.host)
        connection = http.client.HTTPSConnection(served.host, timeout=10, context=tls.client_context())
        try:
            for layer in image.layers:  # blobs over TLS are encrypted in pieces, not sendfile'd
                connection.request("GET", f"/v2/{REPOSITORY}/blobs/{layer.digest}")
                response = connection.getresponse()
                assert (response.status, response.read()) == (200, layer.data)
        finally:
            connection.close()


def test_serve_over_tls_with_several_workers(base: Path, tls: TlsFiles, image: GeneratedImage) -> None:
    with imageprep_serving(base / "tree", serve_options=("--workers", "3"), tls=tls) as served:
        for _ in range(3):
            assert _verified_copy_digest(served.host, tls) == image.digest
        assert served.stop() == 0
    assert b"Traceback" not in served.stderr


@pytest.mark.parametrize("kind", ["apache", "nginx"])
def test_the_printed_web_server_configs_serve_verified_tls(
    kind: str, base: Path, tls: TlsFiles, image: GeneratedImage, tmp_path: Path
) -> None:
    available, serving = {
        "apache": (apache_available, apache_serving),
        "nginx": (nginx_available, nginx_serving),
    }[kind]
    if not available():
        pytest.skip(f"needs {kind}")
    with serving(base / "tree", tmp_path / kind, tls=tls) as host:
        assert _verified_copy_digest(host, tls) == image.digest
        _assert_unverified_client_refuses(host)


def test_bad_tls_files_are_one_error_line_before_serving(
    imageprep: Run, base: Path, tls: TlsFiles, tmp_path: Path
) -> None:
    other = make_tls_files(tmp_path / "other")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    encrypted = tmp_path / "encrypted.key"
    private = serialization.load_pem_private_key(tls.key.read_bytes(), None)
    encrypted.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    cert, key = str(tls.certificate), str(tls.key)
    cases = [
        (["--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", key], "--tls-cert", "no such file"),
        (["--tls-cert", cert, "--tls-key", str(tmp_path)], "--tls-key", "is a directory"),
        (["--tls-cert", str(not_pem), "--tls-key", key], "--tls-cert", "not a PEM certificate"),
        (["--tls-cert", cert, "--tls-key", str(not_pem)], "--tls-key", "not a PEM private key"),
        (["--tls-cert", cert, "--tls-key", str(other.key)], "--tls-key", "is not the key of"),
        (["--tls-cert", cert, "--tls-key", str(encrypted)], "--tls-key", "encrypted with a passphrase"),
        (["--tls-cert", cert], "--tls-cert", "needs --tls-key"),
        (["--workers", "0"], "--workers", "at least 1"),
    ]
    for options, option, words in cases:
        result = imageprep("serve", "--root", str(base / "tree"), "--listen", "127.0.0.1:0", *options)
        assert result.returncode == 2, (options, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert lines[0].startswith("error: ") and option in lines[0] and words in lines[0], result.stderr
        assert "Traceback" not in result.stderr and "Serving" not in result.stdout


def test_printed_configs_carry_the_tls_files(imageprep: Run, tls: TlsFiles) -> None:
    apache = imageprep("serve", "--print-config", "apache", "--listen", "127.0.0.1:8787", *tls.options())
    assert f'SSLCertificateFile "{tls.certificate}"' in apache.stdout
    assert f'SSLCertificateKeyFile "{tls.key}"' in apache.stdout
    assert "Listen 127.0.0.1:8787 https" in apache.stdout
    nginx = imageprep("serve", "--print-config", "nginx", "--listen", "127.0.0.1:8787", *tls.options())
    assert "listen 127.0.0.1:8787 ssl;" in nginx.stdout
    assert f'ssl_certificate "{tls.certificate}";' in nginx.stdout
