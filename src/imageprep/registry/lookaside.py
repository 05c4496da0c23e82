"""A registry's lookaside signatures, where ``registries.d`` says they are.

Read from the section's ``lookaside`` URL: over HTTP(S) through the run's transport (proxies, CA
files and retries as for the registry itself; no registry credentials, which belong to the
registry alone), or from a ``file://`` directory. Written only to a ``file://`` staging location
(``lookaside-staging``, else a ``file://`` ``lookaside``), as the containers tools write them:
publishing that directory at the ``lookaside`` URL is the operator's web server's job.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from imageprep.lookaside.config import RegistriesD
from imageprep.lookaside.storage import (
    MAX_SIGNATURE_BYTES,
    MAX_SIGNATURES,
    SignatureDirectory,
    directory_of,
    signature_path,
)
from imageprep.model.errors import NoSignatureStorageError, RegistryError
from imageprep.registry.request import HttpRequest
from imageprep.registry.transport import Transport


class RegistryLookaside:
    """The signatures of one registry's images (``registry`` as operators name it)."""

    def __init__(
        self, registry: str, config: RegistriesD, transport: Transport, verify: Callable[[str], bool]
    ) -> None:
        self._registry = registry
        self._config = config
        self._transport = transport
        self._verify = verify

    def _image(self, repository: str, digest: str) -> str:
        return f"{self._registry}/{repository}@{digest}"

    def read(self, repository: str, digest: str) -> list[bytes]:
        """The signatures of ``repository@digest``; ``[]`` without a configured lookaside."""
        section = self._config.section_for(self._image(repository, digest))
        if section is None or section.read is None:
            return []
        directory = directory_of(section.read)
        if directory is not None:
            return SignatureDirectory(directory).read(repository, digest)
        return self._fetch(section.read.rstrip("/"), repository, digest)

    def _fetch(self, base: str, repository: str, digest: str) -> list[bytes]:
        found: list[bytes] = []
        for index in range(1, MAX_SIGNATURES + 1):
            url = f"{base}/{signature_path(repository, digest, index)}"
            context = f"reading signature {index} of {self._image(repository, digest)} from {base}"
            request = HttpRequest(
                "GET",
                url,
                context=context,
                verify=self._verify(urlsplit(url).netloc.lower()),
                limit=MAX_SIGNATURE_BYTES,
            )
            response = self._transport.send(request)
            if response.status == 404:
                return found
            if response.status != 200:
                raise RegistryError(f"{context}: HTTP {response.status}")
            found.append(response.content)
        return found

    def write(self, repository: str, digest: str, signatures: Sequence[bytes]) -> int:
        """Add the signatures not there yet to the staging directory; how many were added."""
        image = self._image(repository, digest)
        section = self._config.section_for(image)
        target = section.write if section is not None else None
        directory = directory_of(target) if target is not None else None
        if directory is None:
            where = self._config.directory or "registries.d"
            raise NoSignatureStorageError(
                f"{where} names no file:// lookaside-staging for {self._registry}/{repository}",
                hint=f"add to a file in {where}: 'docker: {{{self._registry}: {{lookaside-staging: "
                "file:///DIR, lookaside: URL}}}}' and publish DIR at URL (or use --remove-signatures)",
            )
        return SignatureDirectory(directory).write(repository, digest, signatures)
