"""A real ``imageprep prepare``: tag discovery and copies between docker-registry processes on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import Run
from tests.support.imagegen import make_image, make_layer
from tests.support.registry_server import (
    RunningRegistry,
    basic_auth_registry_server,
    plain_registry_server,
    registry_available,
)
from tests.support.seeding import seed_image, skopeo_inspect

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not registry_available(), reason="needs docker-registry and skopeo"),
]
BASE = make_layer({"usr/share/base": b"shared base layer " * 64}, oci=True)
LABELS = {
    "nova-api": {"rdo_version": "abc123", "version": "1.0", "release": "7"},
    "keystone": {"rdo_version": "abc123", "version": "1.0", "release": "7"},
    "heat-api": {"version": "2.0", "release": "1"},  # no rdo_version: falls back to the template tag
}


def _image(name: str):  # type: ignore[no-untyped-def]
    own = make_layer({f"etc/{name}": name.encode()}, oci=True)
    return make_image(LABELS[name], [BASE, own], oci=True)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """A source registry with three tripleomaster images, tagged current-tripleo and by version."""
    with plain_registry_server(tmp_path_factory.mktemp("source")) as registry:
        for name, labels in LABELS.items():
            image = _image(name)
            repository = f"tripleomaster/centos-binary-{name}"
            for tag in (
                "current-tripleo",
                labels.get("rdo_version"),
                f"{labels['version']}-{labels['release']}",
            ):
                if tag:
                    seed_image(registry, repository, tag, image)
        yield registry


@pytest.fixture
def destination(tmp_path: Path) -> Iterator[RunningRegistry]:
    with plain_registry_server(tmp_path / "destination") as registry:
        yield registry


def _environment(tmp_path: Path, entries: list[dict[str, object]], **parameters: object) -> Path:
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump({"parameter_defaults": {"ContainerImagePrepare": entries, **parameters}}))
    return path


def _entry(source: RunningRegistry, destination: RunningRegistry, **keys: object) -> dict[str, object]:
    return {
        "push_destination": destination.host,
        "includes": ["nova-api:", "centos-binary-keystone:", "heat-api:"],
        "set": {
            "namespace": f"{source.host}/tripleomaster",
            "name_prefix": "centos-binary-",
            "tag": "current-tripleo",
        },
        **keys,
    }


def _parameters(path: Path) -> dict[str, object]:
    return yaml.safe_load(path.read_text())["parameter_defaults"]  # type: ignore[no-any-return]


def test_prepare_discovers_tags_copies_and_reruns_idempotently(
    imageprep: Run, tmp_path: Path, source: RunningRegistry, destination: RunningRegistry
) -> None:
    _environment(tmp_path, [_entry(source, destination, tag_from_label="rdo_version")])
    process = imageprep(
        "prepare", "-e", "env.yaml", "--output-env-file", "out.yaml", "--report", "report.json", check=True
    )
    parameters = _parameters(tmp_path / "out.yaml")
    dest = destination.host
    assert parameters["ContainerNovaApiImage"] == f"{dest}/tripleomaster/centos-binary-nova-api:abc123"
    assert parameters["DockerKeystoneImage"] == f"{dest}/tripleomaster/centos-binary-keystone:abc123"
    assert (
        parameters["ContainerHeatApiImage"] == f"{dest}/tripleomaster/centos-binary-heat-api:current-tripleo"
    )
    assert parameters["DockerInsecureRegistryAddress"] == [dest]  # loopback registry without TLS
    assert "centos-binary-heat-api:current-tripleo has no label 'rdo_version'" in process.stderr
    for name, tag in (("nova-api", "abc123"), ("keystone", "abc123"), ("heat-api", "current-tripleo")):
        copied = skopeo_inspect(destination, f"tripleomaster/centos-binary-{name}", tag)
        original = skopeo_inspect(source, f"tripleomaster/centos-binary-{name}", tag)
        assert copied["Digest"] == original["Digest"]
        assert copied["Labels"] == LABELS[name]
    first = json.loads((tmp_path / "report.json").read_text())
    assert (first["copied"], first["skipped"], first["failed"]) == (3, 0, 0)
    assert first["blobs_copied"] == 7  # one shared base layer, three own layers, three configs

    imageprep(
        "prepare", "-e", "env.yaml", "--output-env-file", "out.yaml", "--report", "report.json", check=True
    )
    second = json.loads((tmp_path / "report.json").read_text())
    assert (second["copied"], second["skipped"], second["blobs_copied"], second["bytes"]) == (0, 3, 0, 0)


def test_label_template_discovery(
    imageprep: Run, tmp_path: Path, source: RunningRegistry, destination: RunningRegistry
) -> None:
    _environment(tmp_path, [_entry(source, destination, tag_from_label="{version}-{release}")])
    imageprep("prepare", "-e", "env.yaml", "--output-env-file", "out.yaml", check=True)
    parameters = _parameters(tmp_path / "out.yaml")
    assert str(parameters["ContainerNovaApiImage"]).endswith("centos-binary-nova-api:1.0-7")
    assert str(parameters["ContainerHeatApiImage"]).endswith("centos-binary-heat-api:2.0-1")


def test_dry_run_discovers_tags_but_copies_nothing(
    imageprep: Run, tmp_path: Path, source: RunningRegistry, destination: RunningRegistry
) -> None:
    _environment(tmp_path, [_entry(source, destination, tag_from_label="rdo_version")])
    process = imageprep("prepare", "-e", "env.yaml", "--dry-run", check=True)
    parameters = yaml.safe_load(process.stdout)["parameter_defaults"]
    assert str(parameters["ContainerNovaApiImage"]).endswith(":abc123")
    assert not (destination.root / "docker" / "registry" / "v2" / "repositories").exists()


def test_a_failing_image_fails_the_run_and_leaves_the_output_untouched(
    imageprep: Run, tmp_path: Path, source: RunningRegistry, destination: RunningRegistry
) -> None:
    entries = [
        _entry(source, destination),
        {**_entry(source, destination), "includes": ["nova-compute"]},  # not in the source registry
    ]
    _environment(tmp_path, entries)
    (tmp_path / "out.yaml").write_text("previous\n")
    process = imageprep("prepare", "-e", "env.yaml", "--output-env-file", "out.yaml")
    assert process.returncode == 5
    assert "centos-binary-nova-compute" in process.stderr
    assert "Traceback" not in process.stderr
    assert (tmp_path / "out.yaml").read_text() == "previous\n"
    copied = skopeo_inspect(destination, "tripleomaster/centos-binary-nova-api", "current-tripleo")
    assert copied["Labels"] == LABELS["nova-api"]  # the other images still made it


def test_a_missing_discovered_tag_is_an_error_listing_tags(
    imageprep: Run, tmp_path: Path, source: RunningRegistry, destination: RunningRegistry
) -> None:
    _environment(tmp_path, [_entry(source, destination, tag_from_label="version", includes=["nova-api"])])
    process = imageprep("prepare", "-e", "env.yaml", "--dry-run")
    assert process.returncode == 4
    assert "the tag '1.0' found from labels 'version' does not exist" in process.stderr
    assert "available tags: " in process.stderr and "abc123" in process.stderr


def test_credentials_from_the_environment_reach_an_authenticated_source(
    imageprep: Run, tmp_path: Path, destination: RunningRegistry
) -> None:
    with basic_auth_registry_server(tmp_path / "auth") as protected:
        seed_image(protected, "tripleomaster/centos-binary-nova-api", "current-tripleo", _image("nova-api"))
        entry = {**_entry(protected, destination), "includes": ["nova-api"]}
        credentials = {protected.host: {protected.username: protected.password}}
        _environment(tmp_path, [entry], ContainerImageRegistryCredentials=credentials)
        imageprep("prepare", "-e", "env.yaml", "--output-env-file", "out.yaml", check=True)
        copied = skopeo_inspect(destination, "tripleomaster/centos-binary-nova-api", "current-tripleo")
        assert copied["Labels"] == LABELS["nova-api"]

        _environment(tmp_path, [entry])
        process = imageprep("prepare", "-e", "env.yaml", "--dry-run")
        assert process.returncode == 0  # no discovery, no copy: nothing to authenticate
        _environment(tmp_path, [{**entry, "tag_from_label": "rdo_version"}])
        process = imageprep("prepare", "-e", "env.yaml", "--dry-run")
        assert process.returncode == 4
        assert str(protected.password) not in process.stderr


def test_push_destination_true_writes_the_image_serve_tree_that_serve_then_serves(
    imageprep: Run, tmp_path: Path, source: RunningRegistry
) -> None:
    from tests.support.imageserve_check import verify_tree
    from tests.support.imageserve_servers import imageprep_serving, inspect

    entry = {
        "push_destination": True,
        "tag_from_label": "rdo_version",
        "includes": ["nova-api:", "centos-binary-keystone:"],
        "set": {
            "namespace": f"{source.host}/tripleomaster",
            "name_prefix": "centos-binary-",
            "tag": "current-tripleo",
        },
    }
    _environment(tmp_path, [entry], LocalContainerRegistry="127.0.0.1")
    root = tmp_path / "image-serve"
    command = ("prepare", "-e", "env.yaml", "--output-env-file", "out.yaml", "--image-serve-root", str(root))
    imageprep(*command, "--report", "first.json", check=True)
    parameters = _parameters(tmp_path / "out.yaml")
    assert parameters["ContainerNovaApiImage"] == "127.0.0.1:8787/tripleomaster/centos-binary-nova-api:abc123"
    assert parameters["DockerInsecureRegistryAddress"] == ["127.0.0.1:8787"]
    assert verify_tree(root) == []
    first = json.loads((tmp_path / "first.json").read_text())
    assert (first["copied"], first["failed"]) == (2, 0)

    imageprep(*command, "--report", "again.json", check=True)
    again = json.loads((tmp_path / "again.json").read_text())
    assert (again["copied"], again["skipped"]) == (0, 2)

    with imageprep_serving(root) as served:
        for name in ("nova-api", "keystone"):
            repository = f"tripleomaster/centos-binary-{name}"
            assert (
                inspect(served.host, repository, "abc123")["Digest"]
                == (skopeo_inspect(source, repository, "abc123")["Digest"])
            )
