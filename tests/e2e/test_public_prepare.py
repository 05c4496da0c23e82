"""The library's way in gives what the command gives: ``container_images_prepare_multi`` (the
original's signature) and ``imageprep prepare`` agree on the spec's examples.

The examples' sources are never contacted (no ``tag_from_label``, dry runs); their destinations
are on loopback (the seed's 192.168.24.1 stays in tests that make no connection), so the probes
the dry runs make for ``DockerInsecureRegistryAddress`` stay on this machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import imageprep as library
from imageprep.model.errors import ConfigurationError
from tests.e2e.conftest import Run

HASH = "35414701c176a6288fc2ad141dad0f73624dcb94_43527485"
TRIPLEO = {"namespace": "docker.io/tripleomaster", "name_prefix": "centos-binary-", "tag": HASH}
LOCAL = {"LocalContainerRegistry": "127.0.0.1"}
EXAMPLES: dict[str, dict[str, Any]] = {
    "default registry": {"ContainerImagePrepare": [{"set": TRIPLEO}]},
    "push destination address": {
        "ContainerImagePrepare": [{"push_destination": "127.0.0.1:1", "set": TRIPLEO}]
    },
    "undercloud registry": {**LOCAL, "ContainerImagePrepare": [{"push_destination": True, "set": TRIPLEO}]},
    "ceph images off": {
        "ContainerImagePrepare": [
            {"push_destination": "127.0.0.1:1", "set": {**TRIPLEO, "ceph_images": False}}
        ]
    },
    "nova-api hotfix layered": {
        **LOCAL,
        "ContainerImagePrepare": [
            {"push_destination": True, "excludes": ["nova-api"], "set": TRIPLEO},
            {
                "push_destination": True,
                "includes": ["nova-api"],
                "set": {"namespace": "mylocal", "tag": "myhotfix"},
            },
        ],
    },
    "ceph split out": {
        "ContainerImagePrepare": [
            {"excludes": ["ceph", "prometheus"], "set": TRIPLEO},
            {"includes": ["ceph", "prometheus"], "push_destination": "127.0.0.1:1", "set": TRIPLEO},
        ],
        "ContainerImageRegistryCredentials": {"docker.io": {"ceph-user": "ceph-password"}},
    },
}
ROLES = [
    {"name": "Controller", "CountDefault": 1, "ServicesDefault": ["OS::TripleO::Services::NovaApi"]},
    {"name": "Compute", "CountDefault": 1, "ServicesDefault": ["OS::TripleO::Services::NovaCompute"]},
]


@pytest.fixture(autouse=True)
def _nothing_from_the_operators_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IMAGEPREP_IMAGE_SERVE_ROOT", str(tmp_path / "image-serve"))
    for variable in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "REGISTRY_AUTH_FILE"):
        monkeypatch.delenv(variable, raising=False)


def _cli(
    imageprep: Run, tmp_path: Path, parameters: dict[str, Any], roles: list[dict[str, Any]] | None
) -> Any:
    environment = tmp_path / "env.yaml"
    environment.write_text(yaml.safe_dump({"parameter_defaults": parameters}))
    args = ["prepare", "-e", str(environment), "--dry-run"]
    if roles is not None:
        (tmp_path / "roles.yaml").write_text(yaml.safe_dump(roles))
        args += ["-r", str(tmp_path / "roles.yaml")]
    done = imageprep(*args, check=True)
    return yaml.safe_load(done.stdout)["parameter_defaults"]


@pytest.mark.parametrize("example", sorted(EXAMPLES))
@pytest.mark.parametrize("with_roles", [False, True])
def test_the_library_gives_the_parameters_the_command_gives(
    imageprep: Run, tmp_path: Path, example: str, with_roles: bool
) -> None:
    parameters = EXAMPLES[example]
    roles = ROLES if with_roles else None
    expected = _cli(imageprep, tmp_path, parameters, roles)
    result = library.container_images_prepare_multi({"parameter_defaults": parameters}, roles, dry_run=True)
    assert result == expected
    assert result  # the example really prepares something


def test_cleanup_takes_the_upstream_modes_only() -> None:
    with pytest.raises(ConfigurationError, match="cleanup must be one of: full, partial, none"):
        library.container_images_prepare_multi({"parameter_defaults": {}}, None, True, "sometimes")


def test_a_bad_environment_is_an_operator_error_not_a_traceback() -> None:
    with pytest.raises(ConfigurationError, match="<environment>: parameter_defaults must be a mapping"):
        library.container_images_prepare_multi({"parameter_defaults": ["x"]}, None, dry_run=True)
