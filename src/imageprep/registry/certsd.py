"""``certs.d``: the per-registry certificates the containers tools read (containers-certs.d(5)).

An operator who trusts a registry's own CA, or who must show the registry a client certificate,
puts the files in a directory named after the registry's ``HOST[:PORT]``: ``*.crt`` files are CA
certificates trusted for that host (beside the system's and ``--ca-file``), and each ``NAME.cert``
with its ``NAME.key`` is a client certificate offered to it. The directories are looked for in
``~/.config/containers/certs.d``, then ``/etc/containers/certs.d``, then ``/etc/docker/certs.d``;
the first that has one for the host is the only one used, as podman and skopeo do (they read the
user's directory only when rootless; imageprep reads it whoever runs it, so a test or a user can
trust a CA without writing to ``/etc``).

A host with CA certificates of its own speaks TLS, so a loopback registry that has them is not
probed for plain HTTP first (see :mod:`imageprep.registry.endpoint`).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from imageprep.model.errors import ConfigurationError

USER_DIRECTORY = Path(".config/containers/certs.d")  # under $HOME
SYSTEM_DIRECTORIES = (Path("/etc/containers/certs.d"), Path("/etc/docker/certs.d"))


def certificate_roots(home: Path) -> tuple[Path, ...]:
    """Where per-host directories are looked for, first match winning."""
    return (home / USER_DIRECTORY, *SYSTEM_DIRECTORIES)


@dataclass(frozen=True, slots=True)
class HostCertificates:
    """One host's ``certs.d`` directory: its CA files and its client certificate/key pairs."""

    directory: Path
    authorities: tuple[Path, ...] = ()
    client_pairs: tuple[tuple[Path, Path], ...] = ()

    @classmethod
    def read(cls, directory: Path) -> HostCertificates:
        """The files of ``directory``; a client certificate without its key (or the reverse) is refused."""
        try:
            names = sorted(entry.name for entry in directory.iterdir() if entry.is_file())
        except OSError as exc:
            raise ConfigurationError(f"cannot read {directory}: {exc.strerror or exc}") from exc
        present = set(names)
        for name in names:
            stem, _, suffix = name.rpartition(".")
            partner = {"cert": f"{stem}.key", "key": f"{stem}.cert"}.get(suffix)
            if partner is not None and partner not in present:
                raise ConfigurationError(
                    f"{directory / name} has no {partner} beside it",
                    hint="a client certificate NAME.cert needs its key NAME.key in the same directory",
                )
        return cls(
            directory,
            authorities=tuple(directory / name for name in names if name.endswith(".crt")),
            client_pairs=tuple(
                (directory / name, directory / f"{name[: -len('.cert')]}.key")
                for name in names
                if name.endswith(".cert")
            ),
        )

    def apply(self, context: ssl.SSLContext, *, authorities: bool = True) -> None:
        """Trust this host's CAs (unless ``authorities`` is off) and offer its client certificates."""
        for path in self.authorities if authorities else ():
            try:
                context.load_verify_locations(cafile=str(path))
            except (OSError, ssl.SSLError) as exc:
                raise ConfigurationError(f"cannot load CA certificates from {path}: {exc}") from exc
        for certificate, key in self.client_pairs:
            try:
                context.load_cert_chain(str(certificate), str(key))
            except (OSError, ssl.SSLError) as exc:
                raise ConfigurationError(
                    f"cannot load the client certificate {certificate} with {key}: {exc}"
                ) from exc


class CertificateDirectories:
    """Each host's ``certs.d`` directory under the first root that has one; looked up once per host."""

    def __init__(self, roots: Sequence[Path] = ()) -> None:
        self._roots = tuple(roots)
        self._found: dict[str, HostCertificates | None] = {}
        self._lock = threading.Lock()

    def for_host(self, netloc: str) -> HostCertificates | None:
        """The certificates for ``HOST[:PORT]`` as a URL names it, or None when no root has any."""
        key = netloc.lower()
        try:
            return self._found[key]  # every new pool asks: no lock once known
        except KeyError:
            pass
        found: HostCertificates | None = None
        for root in self._roots:
            directory = root / key
            if directory.is_dir():
                found = HostCertificates.read(directory)
                break
        with self._lock:
            return self._found.setdefault(key, found)

    def has_authorities(self, netloc: str) -> bool:
        """Whether the host has CA certificates of its own (so it speaks TLS)."""
        found = self.for_host(netloc)
        return found is not None and bool(found.authorities)
