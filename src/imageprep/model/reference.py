"""Image references as small immutable values.

Parsing follows the distribution reference grammar: the first path component names a registry
host only when it contains ``.`` or ``:`` or is ``localhost``; otherwise the image lives on
Docker Hub. The host the operator wrote (or did not write) is remembered, so a reference prints
back exactly as it was given, which keeps heat parameters recognisable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from imageprep.model.errors import InvalidReferenceError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
DEFAULT_TAG = "latest"
MAX_NAME_LENGTH = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
PATH_COMPONENT = re.compile(rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*")
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[0-9a-fA-F:.]+\])"
DOMAIN = re.compile(rf"{_HOST}(?::[0-9]+)?")
TAG = re.compile(r"[\w][\w.-]{0,127}")
DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-fA-F0-9]{32,}")
TRANSPORT_PREFIX = "docker://"


def looks_like_registry_host(component: str) -> bool:
    """Whether a first path component names a registry host (distribution rule)."""
    return "." in component or ":" in component or component == "localhost"


def split_registry(text: str) -> tuple[str, str]:
    """Split ``host/rest`` into its registry host ("" when implicit) and the remainder."""
    first, slash, rest = text.partition("/")
    if slash and looks_like_registry_host(first):
        return first, rest
    return "", text


@dataclass(frozen=True, slots=True)
class ImageReference:
    """``[domain/]path[:tag][@digest]``; ``domain`` is empty when the reference names none."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        """Parse ``text`` (an optional ``docker://`` prefix is accepted)."""
        original = text
        if text.startswith(TRANSPORT_PREFIX):
            text = text[len(TRANSPORT_PREFIX) :]
        if not text:
            raise InvalidReferenceError("empty image reference")
        digest: str | None = None
        if "@" in text:
            text, digest = text.split("@", 1)
            if not DIGEST.fullmatch(digest):
                raise InvalidReferenceError(f"invalid digest {digest!r} in image reference {original!r}")
        domain, remainder = split_registry(text)
        tag: str | None = None
        last_slash = remainder.rfind("/")
        colon = remainder.rfind(":")
        if colon > last_slash:
            remainder, tag = remainder[:colon], remainder[colon + 1 :]
            if not TAG.fullmatch(tag):
                raise InvalidReferenceError(f"invalid tag {tag!r} in image reference {original!r}")
        if domain and not DOMAIN.fullmatch(domain):
            raise InvalidReferenceError(f"invalid registry host {domain!r} in image reference {original!r}")
        components = remainder.split("/")
        for component in components:
            if not PATH_COMPONENT.fullmatch(component):
                raise InvalidReferenceError(
                    f"invalid repository name {remainder!r} in image reference {original!r}",
                    hint="repository names are lower-case letters, digits and single separators (. _ __ -)",
                )
        name_length = len(domain) + bool(domain) + len(remainder)
        if name_length > MAX_NAME_LENGTH:
            raise InvalidReferenceError(
                f"image name in {original!r} is longer than {MAX_NAME_LENGTH} characters"
            )
        return cls(domain=domain, path=remainder, tag=tag, digest=digest)

    @property
    def registry(self) -> str:
        """The registry host the image lives on (Docker Hub when none is written)."""
        return self.domain or DOCKER_HUB

    @property
    def repository(self) -> str:
        """The repository path as the registry API knows it (``library/`` for Hub's official images)."""
        if self.registry == DOCKER_HUB and "/" not in self.path:
            return f"library/{self.path}"
        return self.path

    @property
    def name(self) -> str:
        """``[domain/]path``: the reference without tag or digest, as written."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag (``latest`` by default)."""
        return self.digest or self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def with_tag(self, tag: str) -> ImageReference:
        """The same repository under another tag (any digest pin is dropped)."""
        return replace(self, tag=tag, digest=None)

    def with_registry(self, host: str) -> ImageReference:
        """The same path on another registry: how a push destination rewrites a reference."""
        return replace(self, domain=host.rstrip("/"))
