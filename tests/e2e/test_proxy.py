"""Every command that reaches a registry goes through ``HTTPS_PROXY`` / ``HTTP_PROXY``, as a real
forward proxy (tinyproxy, with basic auth) sees it: CONNECT tunnels to a TLS registry, absolute-form
requests to a plain-HTTP one, the proxy's password never in any output, ``NO_PROXY`` obeyed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
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
from tests.support.forwardproxy import ForwardProxy, forward_proxy, proxy_available
from tests.support.imagegen import GeneratedImage, make_image, random_layer
from tests.support.registry_server import (
    RunningRegistry,
    plain_registry_server,
    registry_available,
    tls_registry_server,
)
from tests.support.seeding import seed_image, skopeo_inspect

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (proxy_available() and registry_available()), reason="needs tinyproxy, docker-registry and skopeo"
    ),
]
TAG = "current-tripleo"
NAMES = ("nova-api", "keystone")


def _image(name: str) -> GeneratedImage:
    return make_image(
        {"rdo_version": f"v-{name}", "name": name}, [random_layer(3000, name, oci=True)], oci=True
    )


IMAGES = {name: _image(name) for name in NAMES}


@dataclass
class Setup:
    proxy: ForwardProxy
    source: RunningRegistry  # TLS, its CA in SSL_CERT_FILE
    destination: RunningRegistry  # plain HTTP


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    with (
        tls_registry_server(tmp_path / "source") as source,
        plain_registry_server(tmp_path / "destination") as destination,
        forward_proxy(tmp_path / "proxy") as proxy,
    ):
        for name, image in IMAGES.items():
            for tag in (TAG, f"v-{name}"):
                seed_image(source, f"tripleomaster/centos-binary-{name}", tag, image)
        assert source.ca_file is not None
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.setenv("SSL_CERT_FILE", str(source.ca_file))
        yield Setup(proxy, source, destination)


def _environment(path: Path, source: str, destination: str) -> Path:
    entry = {
        "includes": [f"-{name}:" for name in NAMES],
        "tag_from_label": "rdo_version",
        "push_destination": destination,
        "set": {"namespace": f"{source}/tripleomaster", "name_prefix": "centos-binary-", "tag": TAG},
    }
    path.write_text(yaml.safe_dump({"parameter_defaults": {"ContainerImagePrepare": [entry]}}))
    return path


def _no_secret(setup: Setup, *outputs: str) -> None:
    for output in outputs:
        assert setup.proxy.password not in output


def test_prepare_discovers_tags_and_copies_through_the_proxy(
    imageprep: Run, setup: Setup, tmp_path: Path
) -> None:
    env = _environment(tmp_path / "env.yaml", setup.source.host, setup.destination.host)
    done = imageprep("-vv", "--debug", "prepare", "-e", str(env), "--output-env-file", "out.yaml")
    assert done.returncode == 0, done.stderr
    _no_secret(setup, done.stdout, done.stderr, (tmp_path / "out.yaml").read_text())
    parameters = yaml.safe_load((tmp_path / "out.yaml").read_text())["parameter_defaults"]
    for name in NAMES:
        repository = f"tripleomaster/centos-binary-{name}"
        assert parameters[f"Container{name.title().replace('-', '')}Image"] == (
            f"{setup.destination.host}/{repository}:v-{name}"
        )
        assert skopeo_inspect(setup.destination, repository, f"v-{name}")["Digest"] == IMAGES[name].digest
    # https to the TLS source through CONNECT tunnels, plain http to the destination in absolute form
    assert setup.source.host in setup.proxy.tunnels()
    assert any(url.startswith(f"http://{setup.destination.host}/v2/") for url in setup.proxy.forwarded())
    assert f"via {setup.proxy.address}" in done.stderr  # -vv names the proxy, without its login


def test_push_to_a_tls_registry_through_the_proxy(imageprep: Run, setup: Setup, tmp_path: Path) -> None:
    seed_image(setup.destination, "tripleomaster/centos-binary-heat-api", TAG, _image("heat-api"))
    done = imageprep(
        "-vv",
        "--debug",
        "push",
        f"{setup.destination.host}/tripleomaster/centos-binary-heat-api:{TAG}",
        "--registry-url",
        setup.source.host,
    )
    assert done.returncode == 0, done.stderr
    _no_secret(setup, done.stdout, done.stderr)
    assert (
        skopeo_inspect(setup.source, "tripleomaster/centos-binary-heat-api", TAG)["Digest"]
        == _image("heat-api").digest
    )
    assert setup.source.host in setup.proxy.tunnels()


def test_list_and_show_a_tls_registry_through_the_proxy(imageprep: Run, setup: Setup) -> None:
    listed = imageprep("-vv", "--debug", "list", "--registry-url", setup.source.host, "-f", "json")
    assert listed.returncode == 0, listed.stderr
    names = {row["Image Name"] for row in json.loads(listed.stdout)}
    assert f"{setup.source.host}/tripleomaster/centos-binary-keystone:{TAG}" in names
    shown = imageprep("show", f"{setup.source.host}/tripleomaster/centos-binary-keystone:{TAG}", "-f", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["Digest"] == IMAGES["keystone"].digest
    _no_secret(setup, listed.stdout, listed.stderr, shown.stdout, shown.stderr)
    assert setup.proxy.tunnels().count(setup.source.host) >= 2


def test_a_wrong_proxy_password_is_one_clear_error(
    imageprep: Run, setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = f"http://{setup.proxy.username}:not-the-password@{setup.proxy.host}"
    monkeypatch.setenv("HTTPS_PROXY", wrong)
    done = imageprep("--debug", "list", "--registry-url", setup.source.host)
    assert done.returncode == 4
    assert (
        f"proxy {setup.proxy.address} (from HTTPS_PROXY) refused the tunnel: it wants a login" in done.stderr
    )
    assert "not-the-password" not in done.stdout + done.stderr


def test_an_unreachable_proxy_is_named(imageprep: Run, setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://someone:hush@127.0.0.1:1")
    done = imageprep("list", "--registry-url", setup.source.host, "--timeout", "20")
    assert done.returncode == 4
    assert "cannot connect to proxy http://127.0.0.1:1 (from HTTPS_PROXY)" in done.stderr
    assert "hush" not in done.stdout + done.stderr


def test_no_proxy_sends_a_registry_direct(
    imageprep: Run, setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", f"example.com,{setup.source.host}")
    done = imageprep("show", f"{setup.source.host}/tripleomaster/centos-binary-keystone:{TAG}")
    assert done.returncode == 0, done.stderr
    assert setup.proxy.tunnels() == [] and setup.proxy.forwarded() == []


@pytest.mark.skipif(
    not (buildah_available() and rpm_tools_available()),
    reason="needs buildah, busybox-static, rpm and rpmbuild",
)
def test_hotfix_fetches_its_image_through_the_proxy(
    imageprep: Run, setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = make_storage(tmp_path / "storage")
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(storage.conf))
    try:
        local = "localhost/tripleomaster/centos-binary-nova-compute:current-tripleo"
        make_base_image(storage, local)
        pushed = imageprep("push", "--local", local, "--registry-url", setup.source.host)
        assert pushed.returncode == 0, pushed.stderr
        storage.run("rmi", local)
        remote = f"{setup.source.host}/tripleomaster/centos-binary-nova-compute:current-tripleo"
        rpms = tmp_path / "rpms"
        make_rpm(rpms, "imageprep-proxy-hotfix")
        done = imageprep("-vv", "--debug", "hotfix", "--image", remote, "--rpms-path", str(rpms))
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"{remote}-latest"
        assert f"{remote}-latest" in storage.images()
        _no_secret(setup, done.stdout, done.stderr)
        assert setup.proxy.tunnels().count(setup.source.host) >= 2  # the push, then the fetch
    finally:
        storage.cleanup()
