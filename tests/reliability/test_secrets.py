"""Passwords and tokens stay secret: not in logs, errors, reports or reprs, nor sent to other hosts."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
import yaml

from imageprep.model.manifest import sha256_digest
from imageprep.model.retry import RetryPolicy
from imageprep.registry import Credential, CredentialStore, RegistrySession
from tests.reliability.catalogue import NAMES, _image, repository
from tests.reliability.conftest import Cli, finish
from tests.support.httpserver import Recorded, Reply, scripted_server
from tests.support.registry_server import (
    basic_auth_registry_server,
    plain_registry_server,
    registry_available,
    token_registry_server,
)
from tests.support.seeding import seed_image

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not registry_available(), reason="needs docker-registry and skopeo"),
]
NAME = NAMES[0]
JWT_START = "eyJ"  # every JWT (a bearer token) starts with the base64 of '{"'


def _environment(path: Path, source: str, destination: str, credentials: dict[str, object] | None) -> None:
    entry = {
        "push_destination": destination,
        "includes": [f"{NAME}:"],
        "set": {"namespace": f"{source}/tripleomaster", "name_prefix": "centos-binary-", "tag": "t"},
        "tag_from_label": "rdo_version",
    }
    parameters: dict[str, object] = {"ContainerImagePrepare": [entry]}
    if credentials:
        parameters["ContainerImageRegistryCredentials"] = credentials
    path.write_text(yaml.safe_dump({"parameter_defaults": parameters}))


def _everything(tmp_path: Path, *texts: str) -> str:
    """All a run showed or wrote: its output streams and every file it left in its directory."""
    written = [
        p.read_text(errors="replace") for p in tmp_path.glob("*") if p.is_file() and p.suffix != ".yaml"
    ]
    out = tmp_path / "out.yaml"
    return "\n".join([*texts, *written, out.read_text() if out.exists() else ""])


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_secrets_never_show_in_logs_reports_or_errors(kind: str, cli: Cli, tmp_path: Path) -> None:
    server = basic_auth_registry_server if kind == "basic" else token_registry_server
    with server(tmp_path / "source") as source, plain_registry_server(tmp_path / "dest") as destination:
        image = _image(NAME)
        for tag in ("t", json.loads(image.config.data)["config"]["Labels"]["rdo_version"]):
            seed_image(source, repository(NAME), tag, image)
        password = str(source.password)
        encoded = base64.b64encode(f"{source.username}:{password}".encode()).decode()
        env = tmp_path / "env.yaml"
        _environment(env, source.host, destination.host, {source.host: {source.username: password}})
        args = ["-vv", "--debug", "prepare", "-e", str(env), "--output-env-file", "out.yaml"]
        code, stdout, stderr = finish(cli(*args, "--report", "report.json"))
        assert code == 0, stderr
        assert "HTTP Request" in stderr  # -vv really logged every request
        seen = _everything(tmp_path, stdout, stderr)
        assert password not in seen and encoded not in seen and JWT_START not in seen

        _environment(env, source.host, destination.host, {source.host: {source.username: password + "x"}})
        code, stdout, stderr = finish(cli(*args, "--report", "failed.json"))
        assert code == 4, stderr
        seen = _everything(tmp_path, stdout, stderr)
        assert password not in seen and JWT_START not in seen


def test_auth_files_are_read_never_written(cli: Cli, tmp_path: Path) -> None:
    with (
        basic_auth_registry_server(tmp_path / "source") as source,
        plain_registry_server(tmp_path / "d") as dest,
    ):
        image = _image(NAME)
        for tag in ("t", json.loads(image.config.data)["config"]["Labels"]["rdo_version"]):
            seed_image(source, repository(NAME), tag, image)
        auth = tmp_path / "home" / ".docker" / "config.json"
        auth.parent.mkdir(parents=True)
        encoded = base64.b64encode(f"{source.username}:{source.password}".encode()).decode()
        auth.write_text(json.dumps({"auths": {source.host: {"auth": encoded}}}))
        os.utime(auth, (1_000_000_000, 1_000_000_000))
        before = (auth.read_bytes(), auth.stat().st_mtime_ns, sorted(auth.parent.iterdir()))
        _environment(tmp_path / "env.yaml", source.host, dest.host, None)
        code, stdout, stderr = finish(
            cli("-vv", "prepare", "-e", "env.yaml", "--output-env-file", "out.yaml")
        )
        assert code == 0, stderr  # the credentials came from the auth file
        assert (auth.read_bytes(), auth.stat().st_mtime_ns, sorted(auth.parent.iterdir())) == before
        assert str(source.password) not in _everything(tmp_path, stdout, stderr)


def test_credentials_do_not_follow_a_manifest_redirect_to_another_host() -> None:
    image = _image(NAME)
    credential = Credential("alice", "not-for-the-cdn")

    def cdn(request: Recorded) -> Reply:
        return Reply(200, {"Content-Type": image.manifest_media_type}, image.manifest)

    with scripted_server(cdn, "127.0.0.2" if _loopback_alias() else "127.0.0.1") as cdn_server:

        def registry(request: Recorded) -> Reply:
            if request.headers.get("authorization") != credential.basic_header():
                return Reply(401, {"WWW-Authenticate": 'Basic realm="r"'})
            if "/manifests/" in request.path:
                return Reply(302, {"Location": f"{cdn_server.url}/signed/manifest?sig=1"})
            return Reply(200)

        with scripted_server(registry) as registry_server:
            store = CredentialStore({registry_server.host: credential})
            with RegistrySession(store, retry=RetryPolicy(attempts=2, backoff=0.01)) as session:
                manifest = session.client(registry_server.host).get_manifest("a/b", image.digest)
                assert repr(credential.password) not in repr(session.credentials)
    assert manifest.digest == sha256_digest(image.manifest)
    assert cdn_server.requests and all("authorization" not in r.headers for r in cdn_server.requests)


def _loopback_alias() -> bool:
    import socket

    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", 0))
        return True
    except OSError:
        return False
