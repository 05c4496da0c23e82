"""Lookaside signatures as files: ``<base>/<repository>@sha256=<hex>/signature-<N>``.

That is where the containers tools look for the "simple signing" signatures of a manifest digest,
on a web server or in a directory (a ``file://`` lookaside, or a staging one that a web server
publishes). Signatures are numbered from 1 without gaps; a reader stops at the first missing one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from imageprep.model.atomicfile import make_directories, write_file
from imageprep.model.errors import ConfigurationError
from imageprep.model.manifest import DIGEST_FORMAT
from imageprep.model.reference import PATH_COMPONENT

# More than any image carries; a reader stops here rather than follow an endless numbering.
MAX_SIGNATURES = 64
# A signature is a small signed document; a larger file is not one.
MAX_SIGNATURE_BYTES = 4 * 1024 * 1024


def signature_path(repository: str, digest: str, index: int) -> str:
    """``<repository>@sha256=<hex>/signature-<index>``, relative to a lookaside's base (index from 1).

    The repository and digest are checked: they become file and URL paths.
    """
    if not all(PATH_COMPONENT.fullmatch(part) for part in repository.split("/")):
        raise ConfigurationError(f"{repository!r} is not a repository name")
    if not DIGEST_FORMAT.fullmatch(digest):
        raise ConfigurationError(f"{digest!r} is not a manifest digest")
    algorithm, _, hexadecimal = digest.partition(":")
    return f"{repository}@{algorithm}={hexadecimal}/signature-{index}"


class SignatureDirectory:
    """A lookaside kept in a local directory (a ``file://`` URL, or the tree's ``sigstore/``)."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def read(self, repository: str, digest: str) -> list[bytes]:
        """The signatures of ``digest``, in order (``[]`` when there are none)."""
        found: list[bytes] = []
        for index in range(1, MAX_SIGNATURES + 1):
            path = self.base / signature_path(repository, digest, index)
            try:
                with path.open("rb") as handle:
                    data = handle.read(MAX_SIGNATURE_BYTES + 1)
            except (FileNotFoundError, NotADirectoryError):
                return found
            except OSError as exc:
                raise ConfigurationError(f"cannot read signature {path}: {exc.strerror or exc}") from exc
            if len(data) > MAX_SIGNATURE_BYTES:
                raise ConfigurationError(f"{path} is larger than a signature can be; refused")
            found.append(data)
        return found

    def write(self, repository: str, digest: str, signatures: Sequence[bytes]) -> int:
        """Add those of ``signatures`` not held yet, numbered after the existing ones; how many.

        Each file is written whole (a reader sees it complete or not at all), in order, so a
        killed run leaves a gapless numbering a later run continues.
        """
        held = self.read(repository, digest)
        new = [signature for signature in dict.fromkeys(signatures) if signature not in held]
        if not new:
            return 0
        try:
            first = self.base / signature_path(repository, digest, len(held) + 1)
            make_directories(first.parent)
            for offset, signature in enumerate(new):
                index = len(held) + 1 + offset
                write_file(self.base / signature_path(repository, digest, index), signature)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot write signatures of {repository}@{digest} under {self.base}: {exc.strerror or exc}",
                hint="check that the lookaside directory is writable by this user",
            ) from exc
        return len(new)


def directory_of(url: str) -> Path | None:
    """The directory of a ``file://`` URL (``None`` for any other scheme)."""
    if not url.startswith("file://"):
        return None
    path = url[len("file://") :]
    return Path(os.path.abspath(path.split("?", 1)[0]))
