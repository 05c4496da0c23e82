"""registries.d read as the containers tools read it, and signature files in a directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from imageprep.lookaside.config import RegistriesD, registries_directory
from imageprep.lookaside.storage import SignatureDirectory, signature_path
from imageprep.model.errors import ConfigurationError

DIGEST = "sha256:" + "c0" * 32


def configured(tmp_path: Path, **files: str) -> RegistriesD:
    directory = tmp_path / "registries.d"
    directory.mkdir()
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(text)
    return RegistriesD.load(directory)


def test_the_most_precise_scope_wins_and_the_default_is_the_last_resort(tmp_path: Path) -> None:
    config = configured(
        tmp_path,
        vendor="""
docker:
  registry.example.com:
    lookaside: https://sigs.example.com
  registry.example.com/openstack:
    lookaside: https://openstack-sigs.example.com
    lookaside-staging: file:///srv/staging
  registry.example.com/openstack/nova:latest:
    lookaside: http://127.0.0.1:4242/one-tag
""",
        default="default-docker:\n  sigstore-staging: file:///srv/everything\n",
    )
    image = "registry.example.com/openstack/nova-api@" + DIGEST
    section = config.section_for(image)
    assert section is not None and section.read == "https://openstack-sigs.example.com"
    assert section.write == "file:///srv/staging"
    host_only = config.section_for("registry.example.com/other/x@" + DIGEST)
    assert host_only is not None and host_only.read == "https://sigs.example.com"
    assert host_only.write == "https://sigs.example.com"  # no staging: the lookaside itself
    tagged = config.section_for("registry.example.com/openstack/nova:latest")
    assert tagged is not None and tagged.read == "http://127.0.0.1:4242/one-tag"
    elsewhere = config.section_for("quay.io/tripleomaster/x@" + DIGEST)
    assert elsewhere is not None and elsewhere.scope == "default-docker"
    assert elsewhere.read is None and elsewhere.write == "file:///srv/everything"  # the legacy name


def test_a_host_with_a_port_is_its_own_scope(tmp_path: Path) -> None:
    config = configured(tmp_path, local="docker:\n  127.0.0.1:5000:\n    lookaside: file:///srv/sigs\n")
    assert config.section_for("127.0.0.1:5000/ns/image@" + DIGEST) is not None
    assert config.section_for("127.0.0.1/ns/image@" + DIGEST) is None


def test_the_current_key_wins_over_the_legacy_one(tmp_path: Path) -> None:
    config = configured(
        tmp_path,
        both="docker:\n  h.example:\n    sigstore: http://old.example\n    lookaside: http://new.example\n",
    )
    section = config.section_for("h.example/a/b@" + DIGEST)
    assert section is not None and section.read == "http://new.example"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"a": "docker:\n  h.example: {}\n", "b": "docker:\n  h.example: {}\n"},
            "h.example is configured in another file",
        ),
        (
            {"a": "default-docker: {}\n", "b": "default-docker: {}\n"},
            "default-docker is configured in another file",
        ),
        (
            {"a": "docker:\n  h.example:\n    lookaside: ftp://x\n"},
            "must be an http://, https:// or file:// URL",
        ),
        ({"a": "- a list\n"}, "must be a mapping"),
        ({"a": "docker: [1]\n"}, "'docker' must map scopes to sections"),
        ({"a": "docker:\n  h: [\n"}, "invalid YAML"),
    ],
)
def test_a_broken_configuration_names_its_file(tmp_path: Path, files: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as raised:
        configured(tmp_path, **files)
    assert "registries.d/" in str(raised.value)


def test_the_directory_is_the_given_one_else_the_users_else_the_systems(tmp_path: Path) -> None:
    given = tmp_path / "mine"
    assert registries_directory(given, tmp_path) == given
    assert registries_directory(None, tmp_path) == Path("/etc/containers/registries.d")
    user = tmp_path / ".config/containers/registries.d"
    user.mkdir(parents=True)
    assert registries_directory(None, tmp_path) == user
    assert RegistriesD.load(tmp_path / "absent").section_for("h/a@" + DIGEST) is None


def test_signatures_are_numbered_from_one_and_added_only_once(tmp_path: Path) -> None:
    directory = SignatureDirectory(tmp_path / "sigstore")
    assert directory.read("ns/image", DIGEST) == []
    assert directory.write("ns/image", DIGEST, [b"one", b"two", b"one"]) == 2
    assert directory.write("ns/image", DIGEST, [b"two", b"three"]) == 1
    assert directory.read("ns/image", DIGEST) == [b"one", b"two", b"three"]
    base = tmp_path / "sigstore" / f"ns/image@sha256={'c0' * 32}"
    assert sorted(path.name for path in base.iterdir()) == ["signature-1", "signature-2", "signature-3"]


@pytest.mark.parametrize(("repository", "digest"), [("../etc", DIGEST), ("ns/image", "sha256:../../x")])
def test_names_that_would_leave_the_lookaside_are_refused(repository: str, digest: str) -> None:
    with pytest.raises(ConfigurationError):
        signature_path(repository, digest, 1)
