"""Registry credentials: from the deployment's parameters, then the usual auth files.

The library reads no environment variables itself: :func:`default_auth_files` turns an
environment mapping the CLI passes in into the list of files to read. A password is never part
of a ``repr``, a log line or an error message.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imageprep.model.errors import ConfigurationError
from imageprep.model.reference import DOCKER_HUB, DOCKER_HUB_API_HOST

PARAMETER = "ContainerImageRegistryCredentials"
# Names Docker Hub goes by in auth files written by docker, podman and skopeo.
_DOCKER_HUB_ALIASES = (DOCKER_HUB, DOCKER_HUB_API_HOST, "index.docker.io")


@dataclass(frozen=True, slots=True)
class Credential:
    """A username and password for one registry; the password never shows in ``repr``."""

    username: str
    password: str = field(repr=False)

    def basic_header(self) -> str:
        """The ``Authorization`` value for HTTP basic auth."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def normalise_host(key: str) -> str:
    """``https://host/v1/`` or ``host/namespace`` → ``host``; Docker Hub's aliases → ``docker.io``."""
    text = key.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    host = text.split("/", 1)[0].lower()
    return DOCKER_HUB if host in _DOCKER_HUB_ALIASES else host


def parse_registry_credentials(value: Any) -> dict[str, Credential]:
    """Validate ``ContainerImageRegistryCredentials``: ``{registry_host: {username: password}}``.

    Exactly one pair per host, both strings, so that which login is used is never a guess.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"{PARAMETER} must be a mapping of registry host to {{username: password}}, "
            f"not {type(value).__name__}"
        )
    result: dict[str, Credential] = {}
    for host, pair in value.items():
        if not isinstance(host, str) or not host.strip():
            raise ConfigurationError(f"{PARAMETER} has a registry key that is not a host name: {host!r}")
        if not isinstance(pair, Mapping):
            raise ConfigurationError(
                f"{PARAMETER}[{host}] must be a mapping {{username: password}}, not {type(pair).__name__}"
            )
        if len(pair) != 1:
            raise ConfigurationError(
                f"{PARAMETER}[{host}] must hold exactly one username: password pair, it holds {len(pair)}",
                hint="keep one login per registry",
            )
        ((username, password),) = pair.items()
        if not isinstance(username, str) or not username:
            raise ConfigurationError(f"{PARAMETER}[{host}] has a username that is not a non-empty string")
        if not isinstance(password, str):
            # The value itself is never echoed: it may be a mistyped secret.
            raise ConfigurationError(
                f"{PARAMETER}[{host}] password for user {username!r} must be a string, "
                f"not {type(password).__name__}",
                hint="quote the password in the environment file",
            )
        normalised = normalise_host(host)
        if normalised in result:
            raise ConfigurationError(f"{PARAMETER} lists registry {normalised} more than once")
        result[normalised] = Credential(username, password)
    return result


def read_auth_file(path: Path) -> dict[str, Credential]:
    """Logins from a containers ``auth.json`` or docker ``config.json`` (``auths.<host>.auth``).

    A missing file yields nothing; a file that exists but cannot be read is an error naming it.
    Entries holding only identity tokens or helpers are skipped: we cannot use them.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigurationError(f"cannot read registry auth file {path}: {exc.strerror}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"registry auth file {path} is not valid JSON (line {exc.lineno})") from exc
    auths = document.get("auths") if isinstance(document, dict) else None
    if auths is None:
        return {}
    if not isinstance(auths, dict):
        raise ConfigurationError(f"registry auth file {path}: 'auths' is not a mapping")
    result: dict[str, Credential] = {}
    for key, entry in auths.items():
        credential = _entry_credential(entry, key, path)
        if credential is not None:
            result.setdefault(normalise_host(key), credential)
    return result


def _entry_credential(entry: Any, key: str, path: Path) -> Credential | None:
    if not isinstance(entry, dict):
        return None
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ConfigurationError(
                f"registry auth file {path}: the 'auth' of {key} is not base64"
            ) from None
        username, colon, password = decoded.partition(":")
        if not colon or not username:
            raise ConfigurationError(f"registry auth file {path}: the 'auth' of {key} is not user:password")
        return Credential(username, password)
    user, secret = entry.get("username"), entry.get("password")
    if isinstance(user, str) and user and isinstance(secret, str):
        return Credential(user, secret)
    return None


def default_auth_files(environ: Mapping[str, str], home: Path) -> list[Path]:
    """The auth files podman/skopeo/docker would read, in the order they are consulted."""
    files: list[Path] = []
    if environ.get("REGISTRY_AUTH_FILE"):
        files.append(Path(environ["REGISTRY_AUTH_FILE"]))
    if environ.get("XDG_RUNTIME_DIR"):
        files.append(Path(environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    docker_config = environ.get("DOCKER_CONFIG")
    files.append(Path(docker_config) / "config.json" if docker_config else home / ".docker" / "config.json")
    return files


class CredentialStore:
    """Which login to use for which registry host; explicit parameters win over auth files."""

    def __init__(
        self, explicit: Mapping[str, Credential] | None = None, auth_files: Iterable[Path] = ()
    ) -> None:
        self._credentials: dict[str, Credential] = {normalise_host(k): v for k, v in (explicit or {}).items()}
        for path in auth_files:
            for host, credential in read_auth_file(path).items():
                self._credentials.setdefault(host, credential)

    @classmethod
    def from_parameters(cls, registry_credentials: Any, auth_files: Iterable[Path] = ()) -> CredentialStore:
        """Build from the raw ``ContainerImageRegistryCredentials`` value plus auth files."""
        return cls(parse_registry_credentials(registry_credentials), auth_files)

    def lookup(self, host: str) -> Credential | None:
        """The login for a registry host (``docker.io`` also answers for its API host)."""
        return self._credentials.get(normalise_host(host))

    def hosts(self) -> frozenset[str]:
        """Every host a login is known for."""
        return frozenset(self._credentials)

    def __repr__(self) -> str:
        return f"CredentialStore(hosts={sorted(self._credentials)})"
