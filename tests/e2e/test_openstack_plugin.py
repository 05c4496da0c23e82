"""The seed's ``openstack tripleo container image ...`` commands, through the real ``openstack`` program.

Needs ``pip install imageprep[openstack]`` (``make test`` installs it); skipped without it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.imagegen import make_image, make_layer
from tests.support.registry_server import RunningRegistry, plain_registry_server, registry_available
from tests.support.seeding import seed_image, skopeo_inspect

OPENSTACK = Path(sys.executable).parent / "openstack"
REPOSITORY = "tripleomaster/centos-binary-nova-api"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not OPENSTACK.exists(), reason="needs python-openstackclient (imageprep[openstack])"),
    pytest.mark.skipif(not registry_available(), reason="needs docker-registry and skopeo"),
]


@pytest.fixture
def source(tmp_path: Path) -> Iterator[RunningRegistry]:
    image = make_image({"rdo_version": "abc123"}, [make_layer({"etc/nova": b"nova"}, oci=True)], oci=True)
    with plain_registry_server(tmp_path / "source") as registry:
        for tag in ("current-tripleo", "abc123"):
            seed_image(registry, REPOSITORY, tag, image)
        yield registry


def openstack(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": f"{OPENSTACK.parent}:/usr/bin:/bin",
        "HOME": str(home),
        "IMAGEPREP_IMAGE_SERVE_ROOT": str(home / "image-serve"),
    }
    return subprocess.run(
        [str(OPENSTACK), *args], cwd=home, env=environment, capture_output=True, text=True, timeout=120
    )


def test_the_seed_commands_run_unchanged(tmp_path: Path, source: RunningRegistry) -> None:
    home = tmp_path
    seed_command = "tripleo container image prepare default --local-push-destination --output-env-file "
    done = openstack(home, *(seed_command + "containers-prepare-parameters.yaml").split())
    assert done.returncode == 0, done.stderr
    document = yaml.safe_load((home / "containers-prepare-parameters.yaml").read_text())
    entry = document["parameter_defaults"]["ContainerImagePrepare"][0]
    assert entry["push_destination"] is True
    # Point the default entry at the loopback registry and keep one image, as an operator would edit it.
    entry["set"]["namespace"] = f"{source.host}/tripleomaster"
    entry["includes"] = ["nova-api:"]
    document["parameter_defaults"]["LocalContainerRegistry"] = "127.0.0.1"
    (home / "containers-prepare-parameters.yaml").write_text(yaml.safe_dump(document))

    # Verbatim: no shell expands the ~ here, imageprep does.
    seed_command = "tripleo container image prepare -e ~/containers-prepare-parameters.yaml"
    done = openstack(home, *seed_command.split())
    assert done.returncode == 0, done.stderr
    parameters = yaml.safe_load(done.stdout)["parameter_defaults"]
    assert parameters["ContainerNovaApiImage"] == f"127.0.0.1:8787/{REPOSITORY}:abc123"

    listed = openstack(home, "tripleo", "container", "image", "list", "-f", "json")
    assert listed.returncode == 0, listed.stderr
    assert [row["Image Name"].split("/", 1)[1] for row in json.loads(listed.stdout)] == [
        f"{REPOSITORY}:abc123"
    ]
    shown = openstack(home, "tripleo", "container", "image", "show", f"{REPOSITORY}:abc123", "-f", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["Digest"] == skopeo_inspect(source, REPOSITORY, "abc123")["Digest"]
    deleted = openstack(home, "tripleo", "container", "image", "delete", f"{REPOSITORY}:abc123", "-y")
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(openstack(home, "tripleo", "container", "image", "list", "-f", "json").stdout) == []


@pytest.mark.parametrize("command", ["hotfix", "push"])
def test_hotfix_and_push_are_registered(tmp_path: Path, command: str) -> None:
    done = openstack(tmp_path, "tripleo", "container", "image", command, "--help")
    assert done.returncode == 0, done.stderr
    assert "--registry-url" in done.stdout if command == "push" else "--rpms-path" in done.stdout


def test_errors_keep_their_exit_codes_under_openstack(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("parameter_defaults:\n  ContainerImagePrepare: [{includes: 7}]\n")
    done = openstack(tmp_path, "tripleo", "container", "image", "prepare", "-e", "bad.yaml", "--dry-run")
    assert done.returncode == 2
    assert "includes" in done.stderr and "Traceback" not in done.stderr


def _lines(text: str) -> list[str]:
    """Console lines with what changes from run to run (times) blanked."""
    import re

    return [re.sub(r"in \d+\.\d+s", "in Ns", line) for line in text.splitlines() if line.strip()]


def test_the_console_says_the_same_under_openstack_as_under_imageprep(
    tmp_path: Path, source: RunningRegistry
) -> None:
    entry = {
        "push_destination": True,
        "includes": ["nova-api:"],
        "tag_from_label": "no_such_label",  # a warning, with its WARNING: prefix
        "set": {
            "namespace": f"{source.host}/tripleomaster",
            "name_prefix": "centos-binary-",
            "tag": "current-tripleo",
        },
    }
    outputs = {}
    for program in ("imageprep", "openstack"):
        home = tmp_path / program
        home.mkdir()
        (home / "env.yaml").write_text(
            yaml.safe_dump({"parameter_defaults": {"ContainerImagePrepare": [entry]}})
        )
        words = ["prepare", "-e", "env.yaml", "--output-env-file", "out.yaml"]
        if program == "imageprep":
            environment = {
                "HOME": str(home),
                "IMAGEPREP_IMAGE_SERVE_ROOT": str(home / "image-serve"),
                "PATH": "/usr/bin:/bin",
            }
            done = subprocess.run(
                [sys.executable, "-m", "imageprep.cli.app", *words],
                cwd=home, env=environment, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
        else:
            done = openstack(home, "tripleo", "container", "image", *words)
        assert done.returncode == 0, done.stderr
        outputs[program] = _lines(done.stderr)
    assert outputs["openstack"] == outputs["imageprep"]
    assert any(line.startswith("WARNING: ") and "no_such_label" in line for line in outputs["openstack"])
    assert any(line.startswith("INFO: 1 images: 1 copied") for line in outputs["openstack"])  # the summary


def test_serve_is_offered_under_openstack_too(tmp_path: Path) -> None:
    done = openstack(tmp_path, "tripleo", "container", "image", "serve", "--help")
    assert done.returncode == 0, done.stderr
    assert "--print-config" in done.stdout
