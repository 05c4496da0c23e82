"""Reading a ``certs.d`` directory: which files are CAs, which are client pairs, what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from imageprep.model.errors import ConfigurationError
from imageprep.registry.certsd import CertificateDirectories, HostCertificates, certificate_roots


def test_crt_files_are_authorities_and_cert_key_pairs_are_client_certificates(tmp_path: Path) -> None:
    for name in ("b.crt", "a.crt", "me.cert", "me.key", "README"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub.crt").mkdir()  # not a file: ignored
    found = HostCertificates.read(tmp_path)
    assert found.authorities == (tmp_path / "a.crt", tmp_path / "b.crt")
    assert found.client_pairs == ((tmp_path / "me.cert", tmp_path / "me.key"),)


@pytest.mark.parametrize(("present", "missing"), [("me.cert", "me.key"), ("me.key", "me.cert")])
def test_half_a_client_pair_is_refused_naming_both_files(tmp_path: Path, present: str, missing: str) -> None:
    (tmp_path / present).write_text("x")
    with pytest.raises(ConfigurationError, match=f"{present} has no {missing}"):
        HostCertificates.read(tmp_path)


def test_the_first_root_with_the_host_wins_and_hosts_are_matched_without_case(tmp_path: Path) -> None:
    (tmp_path / "one" / "registry.example:5000").mkdir(parents=True)
    (tmp_path / "two" / "registry.example:5000").mkdir(parents=True)
    (tmp_path / "two" / "registry.example:5000" / "ca.crt").write_text("x")
    directories = CertificateDirectories((tmp_path / "missing", tmp_path / "one", tmp_path / "two"))
    found = directories.for_host("Registry.Example:5000")
    assert found is not None and found.directory == tmp_path / "one" / "registry.example:5000"
    assert not directories.has_authorities("registry.example:5000")
    assert directories.for_host("other.example") is None


def test_the_users_directory_comes_before_the_systems(tmp_path: Path) -> None:
    roots = certificate_roots(tmp_path)
    assert roots[0] == tmp_path / ".config/containers/certs.d"
    assert roots[1:] == (Path("/etc/containers/certs.d"), Path("/etc/docker/certs.d"))
