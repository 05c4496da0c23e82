"""``registries.d``: where the containers tools find each registry's lookaside signature storage.

Read as containers-registries.d(5) describes it: every ``*.yaml`` file of one directory (the
``--registries.d`` one, else ``~/.config/containers/registries.d`` if it exists, else
``/etc/containers/registries.d``), merged; a ``docker`` mapping of scopes (``host[:port]``, a
namespace or repository under it, or one image with its tag or digest) to sections, and an
optional ``default-docker`` section. An image uses only the section of its most precise scope.
A section's ``lookaside`` is the URL signatures are read from; ``lookaside-staging`` where new
ones are written (``lookaside`` when there is no staging URL). The older names ``sigstore`` and
``sigstore-staging`` are read too.

The containers tools fall back to ``/var/lib/containers/sigstore`` for images with no section at
all; imageprep does not: a mirror run should neither read nor write signatures nobody configured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from imageprep.model.errors import ConfigurationError

SYSTEM_DIRECTORY = Path("/etc/containers/registries.d")
USER_DIRECTORY = Path(".config/containers/registries.d")  # under $HOME
_KEYS = {
    "lookaside": "lookaside",
    "sigstore": "lookaside",
    "lookaside-staging": "lookaside-staging",
    "sigstore-staging": "lookaside-staging",
}


@dataclass(frozen=True, slots=True)
class LookasideSection:
    """One scope's signature storage: ``read`` URL, and ``write`` URL (staging, else ``read``)."""

    scope: str
    read: str | None = None
    staging: str | None = None

    @property
    def write(self) -> str | None:
        """Where new signatures go."""
        return self.staging or self.read


@dataclass(frozen=True, slots=True)
class RegistriesD:
    """The merged configuration of one ``registries.d`` directory."""

    sections: Mapping[str, LookasideSection]
    default: LookasideSection | None = None
    directory: Path | None = None

    @classmethod
    def load(cls, directory: Path | None) -> RegistriesD:
        """Read ``directory`` (every ``*.yaml`` in name order); an absent one configures nothing."""
        if directory is None or not directory.is_dir():
            return cls({}, None, directory)
        from imageprep.catalogue.yamlfile import load_yaml_file  # only where there is something to read

        sections: dict[str, LookasideSection] = {}
        default: LookasideSection | None = None
        for path in sorted(directory.glob("*.yaml")):
            document = load_yaml_file(path) or {}
            if not isinstance(document, dict):
                raise ConfigurationError(f"{path}: a registries.d file must be a mapping")
            if "default-docker" in document:
                if default is not None:
                    raise ConfigurationError(f"{path}: default-docker is configured in another file too")
                default = _section(path, "default-docker", document["default-docker"])
            scopes = document.get("docker") or {}
            if not isinstance(scopes, dict):
                raise ConfigurationError(f"{path}: 'docker' must map scopes to sections")
            for scope, body in scopes.items():
                name = str(scope)
                if name in sections:
                    raise ConfigurationError(f"{path}: scope {name} is configured in another file too")
                sections[name] = _section(path, name, body)
        return cls(sections, default, directory)

    def section_for(self, image: str) -> LookasideSection | None:
        """The section of the most precise scope for ``image`` (``host/path`` and ``:tag`` or
        ``@digest``), else the default one."""
        for scope in _scopes(image):
            found = self.sections.get(scope)
            if found is not None:
                return found
        return self.default


def registries_directory(given: Path | None, home: Path | None = None) -> Path:
    """The directory the containers tools would read: ``given``, else the user's if it exists, else
    the system's."""
    if given is not None:
        return given
    user = (home if home is not None else Path(os.path.expanduser("~"))) / USER_DIRECTORY
    return user if user.is_dir() else SYSTEM_DIRECTORY


def _section(path: Path, scope: str, body: Any) -> LookasideSection:
    if body is None:
        return LookasideSection(scope)
    if not isinstance(body, dict):
        raise ConfigurationError(f"{path}: the section of {scope} must be a mapping")
    urls: dict[str, str] = {}
    for key, value in body.items():
        meaning = _KEYS.get(str(key))
        if meaning is None:
            continue  # use-sigstore-attachments and the like: not about lookaside storage
        if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https", "file"):
            raise ConfigurationError(
                f"{path}: {scope}: {key} must be an http://, https:// or file:// URL, not {value!r}"
            )
        if str(key) == meaning:
            urls[meaning] = value  # the current name wins over the legacy one
        else:
            urls.setdefault(meaning, value)
    return LookasideSection(scope, urls.get("lookaside"), urls.get("lookaside-staging"))


def _scopes(image: str) -> Sequence[str]:
    """``host/a/b:tag`` -> the image itself, ``host/a/b``, ``host/a``, ``host`` (most precise first)."""
    name, at, digest = image.partition("@")
    scopes = [image] if at else []
    slash = name.find("/")
    last = name.rfind(":")
    if not at and last > slash > 0:
        scopes.append(name)  # with its tag
        name = name[:last]
    while True:
        scopes.append(name)
        if "/" not in name:
            return scopes
        name = name.rsplit("/", 1)[0]
