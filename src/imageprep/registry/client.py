"""A registry as an image store: the distribution API calls the copy engine needs.

:class:`RegistryClient` satisfies the transfer layer's ``ImageStore`` protocol structurally (the
registry layer does not import transfer). Manifests travel as exact bytes; every blob read is
hashed on the way through and refused if it does not match its digest.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from imageprep.model import mediatypes
from imageprep.model.errors import (
    DigestMismatchError,
    ImageprepError,
    NotFoundError,
    RegistryError,
    TransientError,
)
from imageprep.model.manifest import Descriptor, Manifest, sha256_digest
from imageprep.model.platforms import host_architecture, select_child
from imageprep.model.verify import verified_chunks
from imageprep.registry.auth import CATALOG_SCOPE, PULL, PUSH, repository_scope
from imageprep.registry.connection import Connection
from imageprep.registry.digests import rechunk
from imageprep.registry.transport import HttpResponse, raise_for_status

MiB = 1024 * 1024
MAX_PAGES = 10_000
_log = logging.getLogger(__name__)
# Bytes damaged in transit fail the digest check; fetching again cures that, while a registry that
# really serves bad bytes fails the same way every time, so a few fetches are enough.
FETCHES = 3
# What the OCI distribution spec lets registries refuse above; real manifests are a few KiB.
MAX_MANIFEST_BYTES = 4 * MiB
_NEXT_LINK = re.compile(r'<([^>]*)>\s*;[^,]*?\brel="?next"?', re.IGNORECASE)
_OCTET_STREAM = {"Content-Type": "application/octet-stream"}


@dataclass(frozen=True, slots=True)
class UploadPolicy:
    """Blobs up to ``monolithic_limit`` bytes go in one streamed PUT; larger ones in ``chunk_size`` PATCHes.

    The PUT streams, so a large limit costs no memory; it saves round trips on every layer.
    """

    monolithic_limit: int = 64 * MiB
    chunk_size: int = 8 * MiB


def next_link(header: str | None, current_url: str) -> str | None:
    """The absolute URL of a ``Link: <...>; rel="next"`` header, if there is one."""
    if not header:
        return None
    match = _NEXT_LINK.search(header)
    return urljoin(current_url, match.group(1)) if match else None


class RegistryClient:
    """One registry host; repositories are API paths, references tags or digests."""

    def __init__(
        self,
        connection: Connection,
        *,
        upload: UploadPolicy = UploadPolicy(),
        page_size: int | None = None,
        architecture: Callable[[], str] = host_architecture,
    ) -> None:
        self._connection = connection
        self._upload = upload
        self._page_size = page_size
        self._architecture = architecture

    @property
    def location(self) -> str:
        """The registry host as operators name it (``127.0.0.1:5000``, ``docker.io``)."""
        return self._connection.registry

    def _check(self, response: HttpResponse, action: str, subject: str) -> None:
        raise_for_status(response, registry=self.location, subject=subject, action=action)

    # --- general --------------------------------------------------------------------------------

    def ping(self) -> None:
        """Check that the registry answers the v2 API and accepts our credentials (``GET /v2/``)."""
        response = self._connection.request("GET", "", scope="", action="contacting", subject="the v2 API")
        self._check(response, "contacting", "the v2 API")

    def _paginate(self, path: str, key: str, scope: str, subject: str, missing_ok: bool) -> list[str]:
        params: dict[str, str | list[str]] | None = {"n": str(self._page_size)} if self._page_size else None
        url: str | None = path
        seen: set[str] = set()
        items: list[str] = []
        for _ in range(MAX_PAGES):
            if url is None:
                return items
            response = self._connection.request(
                "GET", url, scope=scope, action="listing", subject=subject, params=params
            )
            if response.status == 404 and missing_ok:
                return []
            self._check(response, "listing", subject)
            try:
                document = json.loads(response.content)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise RegistryError(
                    f"listing {subject} on registry {self.location}: answer is not JSON"
                ) from exc
            values = document.get(key) if isinstance(document, dict) else None
            items.extend(str(v) for v in values or [])
            params = None  # the next link carries its own query
            url = next_link(response.header("link"), response.url)
            if url is not None and url in seen:
                raise RegistryError(f"listing {subject} on registry {self.location}: pagination loops")
            if url is not None:
                seen.add(url)
        raise RegistryError(f"listing {subject} on registry {self.location}: more than {MAX_PAGES} pages")

    def list_tags(self, repository: str) -> list[str]:
        """Every tag of the repository, all pages followed; ``[]`` when it does not exist."""
        return self._paginate(
            f"{repository}/tags/list", "tags", repository_scope(repository), f"tags of {repository}", True
        )

    def catalog(self) -> list[str]:
        """Every repository the registry lists in ``_catalog`` (all pages)."""
        return self._paginate("_catalog", "repositories", CATALOG_SCOPE, "the catalog", False)

    def repositories(self) -> frozenset[str] | None:
        """The catalog as a set, or ``None`` when this registry will not list it for us.

        Many public registries refuse ``_catalog`` (401/403/404); that only means the copy engine
        asks per image instead, so it is not an error here.
        """
        try:
            return frozenset(self.catalog())
        except RegistryError as exc:
            _log.debug("registry %s does not list its repositories: %s", self.location, exc)
            return None

    # --- manifests ------------------------------------------------------------------------------

    @staticmethod
    def _name(repository: str, reference: str) -> str:
        separator = "@" if ":" in reference else ":"
        return f"{repository}{separator}{reference}"

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest's exact bytes; a digest reference is checked against them."""
        subject = f"manifest {self._name(repository, reference)}"
        for fetch in range(1, FETCHES + 1):
            response = self._connection.request(
                "GET",
                f"{repository}/manifests/{reference}",
                scope=repository_scope(repository),
                action="reading",
                subject=subject,
                headers={"Accept": mediatypes.MANIFEST_ACCEPT},
                follow_redirects=True,
                limit=MAX_MANIFEST_BYTES,
            )
            self._check(response, "reading", subject)
            announced = response.header("docker-content-digest") or ""
            intact = not announced.startswith("sha256:") or sha256_digest(response.content) == announced
            if intact or fetch == FETCHES:
                break
        where = f"{self.location}/{self._name(repository, reference)}"
        manifest = Manifest.parse(response.content, response.header("content-type"), where)
        expected = [reference] if reference.startswith("sha256:") else []
        served = response.header("docker-content-digest")
        if served and served.startswith("sha256:"):
            expected.append(served)
        for digest in expected:
            if digest != manifest.digest:
                raise DigestMismatchError(f"manifest of {where} hashes to {manifest.digest}, not {digest}")
        return manifest

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest a tag points at (a HEAD); ``None`` when there is no such manifest."""
        subject = f"manifest {self._name(repository, reference)}"
        response = self._connection.request(
            "HEAD",
            f"{repository}/manifests/{reference}",
            scope=repository_scope(repository),
            action="checking",
            subject=subject,
            headers={"Accept": mediatypes.MANIFEST_ACCEPT},
            follow_redirects=True,
        )
        if response.status == 404:
            return None
        self._check(response, "checking", subject)
        digest = response.header("docker-content-digest")
        if digest:
            return digest
        # Some servers omit the header on HEAD; the body tells the same.
        try:
            return self.get_manifest(repository, reference).digest
        except NotFoundError:
            return None

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        """Store the manifest's exact bytes under a tag or its digest."""
        subject = f"manifest {self._name(repository, reference)}"
        response = self._connection.request(
            "PUT",
            f"{repository}/manifests/{reference}",
            scope=repository_scope(repository, PUSH),
            action="pushing",
            subject=subject,
            headers={"Content-Type": manifest.media_type},
            content=manifest.raw,
        )
        self._check(response, "pushing", subject)
        stored = response.header("docker-content-digest")
        if stored and stored.startswith("sha256:") and stored != manifest.digest:
            raise DigestMismatchError(
                f"registry {self.location} stored {subject} as {stored}, not {manifest.digest}"
            )

    # --- blobs ----------------------------------------------------------------------------------

    def has_blob(self, repository: str, digest: str) -> bool:
        """Whether the repository can serve the blob (a HEAD; a redirect counts as yes)."""
        subject = f"blob {digest} of {repository}"
        response = self._connection.request(
            "HEAD",
            f"{repository}/blobs/{digest}",
            scope=repository_scope(repository),
            action="checking",
            subject=subject,
        )
        if response.status == 404:
            return False
        if 300 <= response.status < 400:
            return True
        self._check(response, "checking", subject)
        return True

    def read_blob(self, repository: str, descriptor: Descriptor) -> AbstractContextManager[Iterator[bytes]]:
        """Stream a blob as served; the caller verifies it (the copy engine does, once, while streaming)."""
        return self._read_blob(repository, descriptor)

    @contextmanager
    def _read_blob(self, repository: str, descriptor: Descriptor) -> Iterator[Iterator[bytes]]:
        subject = f"blob {descriptor.digest} of {repository}"
        with self._connection.stream(
            f"{repository}/blobs/{descriptor.digest}",
            scope=repository_scope(repository),
            action="reading",
            subject=subject,
        ) as response:
            yield response.iter_bytes()

    def read_blob_bytes(self, repository: str, descriptor: Descriptor) -> bytes:
        """A small blob (a config) in memory, verified."""
        for fetch in range(1, FETCHES + 1):
            try:
                with self.read_blob(repository, descriptor) as chunks:
                    return b"".join(verified_chunks(chunks, descriptor, f"{self.location}/{repository}"))
            except (TransientError, DigestMismatchError):
                if fetch == FETCHES:
                    raise
        raise AssertionError("unreachable: the last fetch returns or raises")  # pragma: no cover

    def _start_upload(
        self, repository: str, subject: str, params: dict[str, str | list[str]] | None
    ) -> HttpResponse:
        return self._connection.request(
            "POST",
            f"{repository}/blobs/uploads/",
            scope=_push_scope(repository, params),
            action="starting upload of",
            subject=subject,
            params=params,
            content=b"",
        )

    def _upload_location(self, response: HttpResponse, subject: str) -> str:
        location = response.header("location")
        if not location:
            raise RegistryError(f"registry {self.location} opened an upload of {subject} without a Location")
        return urljoin(response.url, location)

    def _cancel(self, location: str, repository: str) -> None:
        """Abandon an upload session; best effort, the registry expires it anyway."""
        with suppress(ImageprepError):
            self._connection.request(
                "DELETE",
                location,
                scope=repository_scope(repository, PUSH),
                action="cancelling upload to",
                subject=repository,
            )

    def write_blob(self, repository: str, descriptor: Descriptor, chunks: Iterable[bytes]) -> None:
        """Upload a blob from a stream: one PUT when small, PATCH chunks then PUT when large.

        The registry checks the bytes against ``?digest=`` before committing (the copy engine has
        already verified them while streaming); if the stream raises, the upload is abandoned and
        nothing is committed.
        """
        subject = f"blob {descriptor.digest} of {repository}"
        response = self._start_upload(repository, subject, None)
        self._check(response, "starting upload of", subject)
        location = self._upload_location(response, subject)
        try:
            if 0 <= descriptor.size <= self._upload.monolithic_limit:
                final = self._put(location, repository, descriptor, subject, chunks)
            else:
                final = self._put_chunked(location, repository, descriptor, subject, chunks)
        except BaseException:
            self._cancel(location, repository)
            raise
        stored = final.header("docker-content-digest")
        if stored and stored != descriptor.digest:
            raise DigestMismatchError(f"registry {self.location} stored {subject} as {stored}")

    def _put(
        self,
        location: str,
        repository: str,
        descriptor: Descriptor,
        subject: str,
        body: Iterable[bytes] | bytes,
    ) -> HttpResponse:
        headers = dict(_OCTET_STREAM)
        if isinstance(body, bytes):
            headers["Content-Length"] = str(len(body))
        elif descriptor.size >= 0:
            headers["Content-Length"] = str(descriptor.size)
        response = self._connection.request(
            "PUT",
            location,
            scope=repository_scope(repository, PUSH),
            action="uploading",
            subject=subject,
            headers=headers,
            params={"digest": descriptor.digest},
            content=body,
        )
        self._check(response, "uploading", subject)
        return response

    def _put_chunked(
        self, location: str, repository: str, descriptor: Descriptor, subject: str, chunks: Iterable[bytes]
    ) -> HttpResponse:
        offset = 0
        for piece in rechunk(chunks, self._upload.chunk_size):
            response = self._connection.request(
                "PATCH",
                location,
                scope=repository_scope(repository, PUSH),
                action="uploading",
                subject=subject,
                headers={
                    **_OCTET_STREAM,
                    "Content-Range": f"{offset}-{offset + len(piece) - 1}",
                    "Content-Length": str(len(piece)),
                },
                content=piece,
            )
            self._check(response, "uploading", subject)
            location = self._upload_location(response, subject)
            offset += len(piece)
        return self._put(location, repository, descriptor, subject, b"")

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Ask the registry to link a blob of another repository here; False if it would not."""
        subject = f"blob {digest} of {repository} (from {from_repository})"
        response = self._start_upload(repository, subject, {"mount": digest, "from": from_repository})
        if response.status == 201:
            return True
        if response.status == 202:
            location = response.header("location")
            if location:
                self._cancel(urljoin(response.url, location), repository)
            return False
        self._check(response, "mounting", subject)
        return False

    # --- image configuration --------------------------------------------------------------------

    def get_config(self, repository: str, manifest: Manifest) -> dict[str, Any]:
        """The image configuration document of an image manifest."""
        if manifest.config is None:
            raise RegistryError(f"manifest {manifest.digest} of {self.location}/{repository} has no config")
        raw = self.read_blob_bytes(repository, manifest.config)
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RegistryError(f"image config of {self.location}/{repository} is not valid JSON") from exc
        if not isinstance(document, dict):
            raise RegistryError(f"image config of {self.location}/{repository} is not a JSON object")
        return document

    def image_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest for this machine's architecture (a list is resolved to its matching entry)."""
        manifest = self.get_manifest(repository, reference)
        if not manifest.is_index:
            return manifest
        where = f"{self.location}/{self._name(repository, reference)}"
        child = select_child(manifest.manifests, self._architecture(), where)
        return self.get_manifest(repository, child.digest)

    def labels(self, repository: str, reference: str) -> dict[str, str]:
        """The image's ``config.Labels`` (``{}`` when null or absent)."""
        config = self.get_config(repository, self.image_manifest(repository, reference))
        section = config.get("config")
        labels = section.get("Labels") if isinstance(section, dict) else None
        if not isinstance(labels, dict):
            return {}
        return {str(key): "" if value is None else str(value) for key, value in labels.items()}


def _push_scope(repository: str, params: dict[str, str | list[str]] | None) -> str:
    scope = repository_scope(repository, PUSH)
    source = (params or {}).get("from")
    if isinstance(source, str) and source != repository:
        scope += " " + repository_scope(source, PULL)
    return scope
