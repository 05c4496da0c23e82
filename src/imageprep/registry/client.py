"""A registry as an image store: the distribution API calls the copy engine needs.

:class:`RegistryClient` satisfies the transfer layer's ``ImageStore`` protocol structurally (the
registry layer does not import transfer). Manifests travel as exact bytes and are checked against
the digest they were asked for or served under; blob bytes are handed on as served (the copy
engine hashes them once, on the way through), except the small ones read here (configs).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from urllib.parse import urljoin

from imageprep.model import mediatypes
from imageprep.model.blobs import BlobBody, BlobStream
from imageprep.model.errors import (
    AuthenticationError,
    DigestMismatchError,
    NoSignatureStorageError,
    NotFoundError,
    RegistryError,
    TransientError,
)
from imageprep.model.manifest import Descriptor, Manifest, sha256_digest
from imageprep.model.platforms import host_architecture, select_child
from imageprep.model.verify import verified_chunks
from imageprep.registry.auth import CATALOG_SCOPE, PUSH, repository_scope
from imageprep.registry.connection import ApiCall, Connection
from imageprep.registry.lookaside import RegistryLookaside
from imageprep.registry.referrers import processes_subject, read_referrers, record_in_fallback_tag
from imageprep.registry.responses import HttpResponse
from imageprep.registry.upload import BlobUpload, UploadPolicy, cancel_upload, start_upload, upload_location

MiB = 1024 * 1024
MAX_PAGES = 10_000
_log = logging.getLogger(__name__)
# Bytes damaged in transit fail the digest check; fetching again cures that, while a registry that
# really serves bad bytes fails the same way every time, so a few fetches are enough.
FETCHES = 3
# What the OCI distribution spec lets registries refuse above; real manifests are a few KiB.
MAX_MANIFEST_BYTES = 4 * MiB
_NEXT_LINK = re.compile(r'<([^>]*)>\s*;[^,]*?\brel="?next"?', re.IGNORECASE)
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)


def next_link(header: str | None, current_url: str) -> str | None:
    """The absolute URL of a ``Link: <...>; rel="next"`` header, if there is one."""
    if not header:
        return None
    match = _NEXT_LINK.search(header)
    return urljoin(current_url, match.group(1)) if match else None


def served_range(status: int, content_range: str | None) -> tuple[int, int] | None:
    """The bytes (``start``, exclusive ``stop``) an answer to a ``Range`` request holds, or ``None``
    when it is not a proper 206 (the server sent the whole blob)."""
    if status != 206 or not content_range:
        return None
    match = _CONTENT_RANGE.fullmatch(content_range.strip())
    return (int(match.group(1)), int(match.group(2)) + 1) if match else None


def _name(repository: str, reference: str) -> str:
    separator = "@" if ":" in reference else ":"
    return f"{repository}{separator}{reference}"


class RegistryClient:
    """One registry host; repositories are API paths, references tags or digests."""

    def __init__(
        self,
        connection: Connection,
        *,
        upload: UploadPolicy | None = None,
        page_size: int | None = None,
        architecture: Callable[[], str] = host_architecture,
        lookaside: RegistryLookaside | None = None,
    ) -> None:
        self._connection = connection
        self._uploads = BlobUpload(connection, upload or UploadPolicy())
        self._page_size = page_size
        self._architecture = architecture
        self._lookaside = lookaside

    @property
    def location(self) -> str:
        """The registry host as operators name it (``127.0.0.1:5000``, ``docker.io``)."""
        return self._connection.registry

    def _send_checked(self, call: ApiCall) -> HttpResponse:
        response = self._connection.send(call)
        self._connection.check(response, call)
        return response

    # --- general --------------------------------------------------------------------------------

    def ping(self) -> None:
        """Check that the registry answers the v2 API and accepts our credentials (``GET /v2/``)."""
        self._send_checked(ApiCall("GET", "", "", "contacting", "the v2 API"))

    def _paginate(self, path: str, key: str, scope: str, subject: str, missing_ok: bool) -> list[str]:
        params: dict[str, str | list[str]] | None = {"n": str(self._page_size)} if self._page_size else None
        url: str | None = path
        seen: set[str] = set()
        items: list[str] = []
        for _ in range(MAX_PAGES):
            if url is None:
                return items
            call = ApiCall("GET", url, scope, "listing", subject, params=params)
            response = self._connection.send(call)
            if response.status == 404 and missing_ok:
                return []
            self._connection.check(response, call)
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
        asks per image instead, so it is not an error here. Any other failure (a registry that
        cannot be reached, a proxy that refuses us) is raised as it is.
        """
        try:
            return frozenset(self.catalog())
        except (AuthenticationError, NotFoundError) as exc:
            _log.debug("registry %s does not list its repositories: %s", self.location, exc)
            return None

    # --- manifests ------------------------------------------------------------------------------

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest's exact bytes; checked against a digest reference and the served digest."""
        call = ApiCall(
            "GET",
            f"{repository}/manifests/{reference}",
            repository_scope(repository),
            "reading",
            f"manifest {_name(repository, reference)}",
            headers={"Accept": mediatypes.MANIFEST_ACCEPT},
            follow_redirects=True,
            limit=MAX_MANIFEST_BYTES,
        )

        def fetch() -> Manifest:
            response = self._send_checked(call)
            return self._checked_manifest(response, repository, reference)

        retrier = self._connection.retrier
        return retrier.call(fetch, key=self.location, retry_on=(DigestMismatchError,), attempts=FETCHES)

    def _checked_manifest(self, response: HttpResponse, repository: str, reference: str) -> Manifest:
        where = f"{self.location}/{_name(repository, reference)}"
        served = response.header("docker-content-digest") or ""
        if served.startswith("sha256:") and sha256_digest(response.content) != served:
            # Damaged on the way (the registry says what it sent): worth fetching again.
            raise DigestMismatchError(f"manifest of {where} does not hash to the {served} it was served as")
        manifest = Manifest.parse(response.content, response.header("content-type"), where)
        if reference.startswith("sha256:") and reference != manifest.digest:
            raise DigestMismatchError(f"manifest of {where} hashes to {manifest.digest}, not {reference}")
        return manifest

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest a tag points at (a HEAD); ``None`` when there is no such manifest."""
        call = ApiCall(
            "HEAD",
            f"{repository}/manifests/{reference}",
            repository_scope(repository),
            "checking",
            f"manifest {_name(repository, reference)}",
            headers={"Accept": mediatypes.MANIFEST_ACCEPT},
            follow_redirects=True,
        )
        response = self._connection.send(call)
        if response.status == 404:
            return None
        self._connection.check(response, call)
        digest = response.header("docker-content-digest")
        if digest:
            return digest
        # Some servers omit the header on HEAD; the body tells the same.
        try:
            return self.get_manifest(repository, reference).digest
        except NotFoundError:
            return None

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        """Store the manifest's exact bytes under a tag or its digest.

        A referrer (a manifest with a ``subject``) pushed to a registry that does not index
        subjects itself is added to the subject's fallback tag, so clients still find it.
        """
        response = self._put_manifest(repository, reference, manifest)
        if manifest.subject is not None and not processes_subject(response):
            record_in_fallback_tag(self.location, repository, manifest, self.get_manifest, self._put_manifest)

    def _put_manifest(self, repository: str, reference: str, manifest: Manifest) -> HttpResponse:
        subject = f"manifest {_name(repository, reference)}"
        response = self._send_checked(
            ApiCall(
                "PUT",
                f"{repository}/manifests/{reference}",
                repository_scope(repository, PUSH),
                "pushing",
                subject,
                headers={"Content-Type": manifest.media_type},
                body=manifest.raw,
            )
        )
        stored = response.header("docker-content-digest")
        if stored and stored.startswith("sha256:") and stored != manifest.digest:
            raise DigestMismatchError(
                f"registry {self.location} stored {subject} as {stored}, not {manifest.digest}"
            )
        return response

    # --- what hangs on a digest -----------------------------------------------------------------

    def referrers(self, repository: str, digest: str) -> list[Descriptor] | None:
        """What the referrers API lists for ``digest``; ``None`` when the registry has none."""
        return read_referrers(self._connection, repository, digest)

    def read_signatures(self, repository: str, digest: str) -> list[bytes]:
        """The lookaside signatures of ``digest`` (``[]`` where registries.d names no lookaside)."""
        return self._lookaside.read(repository, digest) if self._lookaside is not None else []

    def write_signatures(self, repository: str, digest: str, signatures: Sequence[bytes]) -> int:
        """Add signatures to the registry's lookaside staging directory; how many were new."""
        if self._lookaside is None:
            raise NoSignatureStorageError(f"registry {self.location} has no lookaside configured")
        return self._lookaside.write(repository, digest, signatures)

    def delete_manifest(self, repository: str, digest: str) -> None:
        """Delete the manifest ``digest`` (and so every tag pointing at it), where the registry allows it."""
        subject = f"manifest {_name(repository, digest)}"
        call = ApiCall(
            "DELETE",
            f"{repository}/manifests/{digest}",
            repository_scope(repository, "delete"),
            "deleting",
            subject,
        )
        response = self._connection.send(call)
        if response.status in (405, 501) or (response.status == 400 and b"UNSUPPORTED" in response.content):
            raise RegistryError(
                f"registry {self.location} does not allow deleting images (HTTP {response.status})",
                hint="deleting must be enabled on the registry (docker-registry: storage.delete.enabled: "
                "true), or delete with the registry's own tools",
            )
        self._connection.check(response, call)

    # --- blobs ----------------------------------------------------------------------------------

    def has_blob(self, repository: str, digest: str) -> bool:
        """Whether the repository can serve the blob (a HEAD; a redirect counts as yes)."""
        call = ApiCall(
            "HEAD",
            f"{repository}/blobs/{digest}",
            repository_scope(repository),
            "checking",
            f"blob {digest} of {repository}",
        )
        response = self._connection.send(call)
        if response.status == 404:
            return False
        if 300 <= response.status < 400:
            return True
        self._connection.check(response, call)
        return True

    def read_blob(
        self, repository: str, descriptor: Descriptor, start: int = 0, end: int | None = None
    ) -> AbstractContextManager[BlobStream]:
        """Stream a blob's bytes ``start`` to ``end`` (one attempt; the reader resumes on failure).

        The caller verifies the bytes. A registry that ignores ``Range`` serves the whole blob,
        and the stream then says so (it starts at 0 and stops at the end).
        """
        return self._read_blob(repository, descriptor, start, end)

    @contextmanager
    def _read_blob(
        self, repository: str, descriptor: Descriptor, start: int, end: int | None
    ) -> Iterator[BlobStream]:
        ranged = start > 0 or (end is not None and end < descriptor.size)
        last = "" if end is None else str(end - 1)
        headers = {"Range": f"bytes={start}-{last}"} if ranged else {}
        call = ApiCall(
            "GET",
            f"{repository}/blobs/{descriptor.digest}",
            repository_scope(repository),
            "reading",
            f"blob {descriptor.digest} of {repository}",
            headers=headers,
            bulk=True,
        )
        with self._connection.open(call) as response:
            served = served_range(response.status, response.header("content-range")) if ranged else None
            first, stop = served if served is not None else (0, None)
            yield BlobStream(response.iter_bytes(), first, stop)

    def read_blob_bytes(self, repository: str, descriptor: Descriptor) -> bytes:
        """A small blob (a config) in memory, verified; fetched again when cut off or damaged."""

        def fetch() -> bytes:
            with self.read_blob(repository, descriptor) as chunks:
                return b"".join(verified_chunks(chunks, descriptor, f"{self.location}/{repository}"))

        retrier = self._connection.retrier
        return retrier.call(fetch, key=self.location, retry_on=(TransientError, DigestMismatchError))

    def write_blob(self, repository: str, descriptor: Descriptor, body: BlobBody) -> None:
        """Upload a blob (see :class:`~.upload.BlobUpload`); retried as an upload when it fails."""
        self._uploads.write(repository, descriptor, body)

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Ask the registry to link a blob of another repository here; False if it would not."""
        subject = f"blob {digest} of {repository} (from {from_repository})"
        response, call = start_upload(
            self._connection, repository, subject, {"mount": digest, "from": from_repository}
        )
        if response.status == 201:
            return True
        if response.status == 202:
            if response.header("location"):
                cancel_upload(
                    self._connection, upload_location(self._connection, response, subject), repository
                )
            return False
        self._connection.check(response, call)
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
        where = f"{self.location}/{_name(repository, reference)}"
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
