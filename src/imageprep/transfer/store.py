"""The one interface every place an image can live implements.

A remote registry, the local image-serve tree and local containers storage all offer the same
few operations, so the copy engine is written once against :class:`ImageStore`. Repositories are
API paths (``tripleomaster/centos-binary-nova-api``); references are tags or digests.

What hangs on a manifest digest travels through the same interface: OCI referrers (a store keeps
its own record of them, or its registry's, as each ``put_manifest`` of a manifest with a
``subject`` goes by) and lookaside signatures (``signature-N`` files beside the registry).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from imageprep.model.blobs import BlobBody, BlobStream
from imageprep.model.manifest import Descriptor, Manifest


class ImageStore(Protocol):
    """Where images can be read from and written to."""

    @property
    def location(self) -> str:
        """How operators know this store (``127.0.0.1:5000``, ``/var/lib/image-serve``)."""
        ...

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest under a tag or digest; raises ``NotFoundError`` when there is none."""
        ...

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest a tag points at, or ``None`` when the tag does not exist (cheap: a HEAD)."""
        ...

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        """Store the manifest's exact bytes under a tag or its digest.

        A manifest with a ``subject`` is recorded as a referrer of that digest, in whatever form
        the store answers referrers in (its API, or the ``sha256-HEX`` fallback tag).
        """
        ...

    def referrers(self, repository: str, digest: str) -> list[Descriptor] | None:
        """The manifests whose ``subject`` is ``digest``; ``None`` when the store has no referrers
        API (a client then finds them under the fallback tag)."""
        ...

    def read_signatures(self, repository: str, digest: str) -> list[bytes]:
        """The lookaside ("simple signing") signatures of a manifest digest, in order; ``[]`` when
        there are none or the store has no lookaside."""
        ...

    def write_signatures(self, repository: str, digest: str, signatures: Sequence[bytes]) -> int:
        """Add those of ``signatures`` the store does not hold yet; how many were added.

        Raises ``NoSignatureStorageError`` when the store has nowhere to write signatures.
        """
        ...

    def has_blob(self, repository: str, digest: str) -> bool:
        """Whether the repository can already serve this blob."""
        ...

    def read_blob(
        self, repository: str, descriptor: Descriptor, start: int = 0, end: int | None = None
    ) -> AbstractContextManager[BlobStream]:
        """Stream a blob's bytes from offset ``start`` to ``end`` (exclusive; ``None``: the end).

        The stream's ``start`` and ``stop`` say what it really serves: the whole blob (0 and
        ``None``) when the store cannot serve a part; the caller verifies the digest.

        One attempt: a stream that breaks raises ``TransientError`` and the caller resumes it.
        """
        ...

    def write_blob(self, repository: str, descriptor: Descriptor, body: BlobBody) -> None:
        """Store a blob; nothing is committed if the body's stream raises.

        The store may open the body more than once (to retry an upload from the first byte).
        """
        ...

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Make a blob of another repository of this store available here without copying bytes.

        Returns False when the store could not mount it (the caller then copies it).
        """
        ...

    def list_tags(self, repository: str) -> list[str]:
        """Every tag of the repository (all pages); empty when the repository does not exist."""
        ...
