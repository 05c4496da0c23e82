"""The registry session a prepare uses, built from the environment and the operator's options."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from imageprep.model.control import RunControl
from imageprep.prepare.environment import Environment
from imageprep.prepare.parameters import INSECURE_PARAM, address_list
from imageprep.registry.credentials import CredentialStore, parse_registry_credentials
from imageprep.registry.session import RegistrySession

CREDENTIALS_PARAM = "ContainerImageRegistryCredentials"
MIRROR_PARAM = "DockerRegistryMirror"


def declared_insecure(environment: Environment, extra: Iterable[str] = ()) -> frozenset[str]:
    """Registries the operator declared insecure: the environment's list plus ``--insecure-registry``."""
    return frozenset(address_list(environment.parameters.get(INSECURE_PARAM)) | set(extra))


def ceph_credentials(environment: Environment) -> dict[str, tuple[str, str]]:
    """``ContainerImageRegistryCredentials`` as ``{host: (username, password)}`` (validated)."""
    parsed = parse_registry_credentials(environment.parameters.get(CREDENTIALS_PARAM))
    return {host: (credential.username, credential.password) for host, credential in parsed.items()}


def open_session(
    environment: Environment,
    *,
    insecure: frozenset[str],
    ca_file: Path | None,
    auth_files: Iterable[Path],
    control: RunControl | None = None,
) -> RegistrySession:
    """A session with the environment's credentials, then the auth files, and its mirror."""
    credentials = CredentialStore.from_parameters(environment.parameters.get(CREDENTIALS_PARAM), auth_files)
    mirror = environment.parameters.get(MIRROR_PARAM)
    return RegistrySession(
        credentials,
        insecure=insecure,
        ca_file=ca_file,
        mirror=mirror if isinstance(mirror, str) and mirror else None,
        control=control,
    )
