"""How imageprep reaches registries and the local image-serve tree: declared once, read once.

Every command that talks to a registry or the tree declares its options with
:func:`add_registry_options` and turns them, together with the environment, into one frozen
:class:`Settings` with :func:`settings_from_arguments`; the use cases take that value and never
read the environment themselves. What is read from the environment follows the conventions of the
containers tools (skopeo, podman, buildah):

- logins: ``REGISTRY_AUTH_FILE``, ``$XDG_RUNTIME_DIR/containers/auth.json``,
  ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``;
- trusted CAs: ``SSL_CERT_FILE`` (unless ``--ca-file`` is given);
- proxies: ``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY`` (either case);
- the tree: ``IMAGEPREP_IMAGE_SERVE_ROOT`` (unless ``--image-serve-root`` is given);
- the cache: ``XDG_CACHE_HOME``.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from imageprep.imageserve.root import DEFAULT_ROOT, ROOT_VARIABLE, resolve_root
from imageprep.lookaside.config import registries_directory
from imageprep.model.errors import ConfigurationError
from imageprep.model.reference import DOMAIN
from imageprep.model.retry import RetryPolicy
from imageprep.registry.certsd import certificate_roots
from imageprep.registry.credentials import Credential, default_auth_files
from imageprep.registry.proxy import ProxyConfig
from imageprep.registry.transport import Timeouts

CA_VARIABLE = "SSL_CERT_FILE"


def registry_host(text: str, what: str = "registry") -> str:
    """``HOST[:PORT]`` as written (a ``docker://`` prefix and a trailing ``/`` dropped), or an error."""
    host = text.strip().removeprefix("docker://").rstrip("/")
    if not DOMAIN.fullmatch(host):
        raise ConfigurationError(
            f"{what} {text!r} is not a registry address",
            hint="write it as HOST or HOST:PORT, e.g. 127.0.0.1:5000",
        )
    return host


def positive_count(text: str) -> int:
    """A whole number of at least 1, from the command line."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """A number of seconds above 0, from the command line."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text!r}")
    return value


def _insecure_host(text: str) -> str:
    try:
        return registry_host(text, "--insecure-registry")
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST or HOST:PORT") from exc


def login(username: str | None, password: str | None, what: str) -> Credential | None:
    """A login from a pair of options; one without the other is an error naming both."""
    if username and password is not None:
        return Credential(username, password)
    if username or password:
        raise ConfigurationError(f"{what} needs both a username and a password")
    return None


def cache_directory(environ: Mapping[str, str], home: Path) -> Path:
    """Where imageprep keeps what it can rebuild (compiled templates): ``$XDG_CACHE_HOME/imageprep``.

    A relative ``XDG_CACHE_HOME`` is ignored, as the XDG base directory specification says.
    """
    base = environ.get("XDG_CACHE_HOME", "")
    return (Path(base) if os.path.isabs(base) else home / ".cache") / "imageprep"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything about reaching images that is the same for every command.

    ``login`` is the one ``--username/--password`` gives, for the registry the command works on;
    ``source_login`` the ``--source-username/--source-password`` of ``push``. ``hostname`` names
    this host (the local registry is reached under its ``.ctlplane`` name). ``retry`` and
    ``timeouts`` (per request) have no options: their defaults suit every command.
    """

    insecure_registries: frozenset[str] = frozenset()
    ca_file: Path | None = None
    timeout: float | None = None
    image_serve_root: Path = DEFAULT_ROOT
    auth_files: tuple[Path, ...] = ()
    login: Credential | None = field(default=None, repr=False)
    source_login: Credential | None = field(default=None, repr=False)
    proxies: ProxyConfig = field(default_factory=ProxyConfig)
    cache_directory: Path | None = None
    hostname: str = "localhost"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    # Where each registry's lookaside signatures are (containers-registries.d(5)).
    registries_d: Path | None = None
    # Where each registry's own CAs and client certificates are (containers-certs.d(5)), in order.
    certificate_directories: tuple[Path, ...] = ()

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str],
        home: Path,
        *,
        insecure_registries: Iterable[str] = (),
        ca_file: Path | None = None,
        timeout: float | None = None,
        image_serve_root: str | None = None,
        login: Credential | None = None,
        source_login: Credential | None = None,
        hostname: str | None = None,
        registries_d: Path | None = None,
    ) -> Settings:
        """The settings for these options in this environment (``environ`` is read here, once)."""
        if ca_file is None and environ.get(CA_VARIABLE):
            ca_file = Path(environ[CA_VARIABLE])
        return cls(
            insecure_registries=frozenset(registry_host(h, "insecure registry") for h in insecure_registries),
            ca_file=ca_file.expanduser() if ca_file is not None else None,
            timeout=timeout,
            image_serve_root=resolve_root(image_serve_root, environ),
            auth_files=tuple(default_auth_files(environ, home)),
            login=login,
            source_login=source_login,
            proxies=ProxyConfig.from_environ(environ),
            cache_directory=cache_directory(environ, home),
            hostname=hostname if hostname is not None else socket.gethostname(),
            registries_d=registries_directory(registries_d.expanduser() if registries_d else None, home),
            certificate_directories=certificate_roots(home),
        )


def add_registry_options(
    parser: argparse.ArgumentParser,
    *,
    login: str | None = None,
    source_login: bool = False,
    tree: bool = True,
) -> None:
    """Declare the registry options on a command's parser.

    ``login`` names the registry ``--username/--password`` are for (``None``: no such options);
    ``source_login`` adds ``--source-username/--source-password``; ``tree`` off leaves out
    ``--image-serve-root`` (for a command that never touches the local registry).
    """
    group = parser.add_argument_group("registries and the local registry")
    group.add_argument(
        "--insecure-registry",
        dest="insecure_registries",
        action="append",
        default=[],
        type=_insecure_host,
        metavar="HOST:PORT",
        help="reach this registry over plain HTTP or unverified TLS, repeatable (default: none; "
        "loopback registries without TLS are found by themselves)",
    )
    group.add_argument(
        "--ca-file",
        type=Path,
        metavar="FILE",
        help=f"extra CA certificates to trust for registries (default: ${CA_VARIABLE}, else none)",
    )
    if tree:
        group.add_argument(
            "--image-serve-root",
            metavar="DIR",
            help=f"the local registry's image-serve tree (default: ${ROOT_VARIABLE}, else {DEFAULT_ROOT})",
        )
    group.add_argument(
        "--registries.d",
        dest="registries_d",
        type=Path,
        metavar="DIR",
        help="where registries' lookaside signature storage is configured, as for skopeo (default: "
        "~/.config/containers/registries.d if it exists, else /etc/containers/registries.d)",
    )
    group.add_argument(
        "--timeout",
        type=positive_seconds,
        metavar="SECONDS",
        help="give up when the whole command takes longer than SECONDS; nothing is left "
        "half-written (default: no limit)",
    )
    if login is not None:
        group.add_argument("--username", help=f"user for {login} (default: from the auth files)")
        group.add_argument("--password", help=f"password for {login} (default: from the auth files)")
    if source_login:
        group.add_argument(
            "--source-username", help="user for the source registry (default: from the auth files)"
        )
        group.add_argument(
            "--source-password", help="password for the source registry (default: from the auth files)"
        )


def settings_from_arguments(
    args: argparse.Namespace, environ: Mapping[str, str], home: Path, *, hostname: str | None = None
) -> Settings:
    """The settings the options of :func:`add_registry_options` and the environment give."""
    return Settings.from_environ(
        environ,
        home,
        insecure_registries=getattr(args, "insecure_registries", ()) or (),
        ca_file=getattr(args, "ca_file", None),
        timeout=getattr(args, "timeout", None),
        image_serve_root=getattr(args, "image_serve_root", None),
        login=login(
            getattr(args, "username", None), getattr(args, "password", None), "--username/--password"
        ),
        source_login=login(
            getattr(args, "source_username", None),
            getattr(args, "source_password", None),
            "--source-username/--source-password",
        ),
        hostname=hostname,
        registries_d=getattr(args, "registries_d", None),
    )
