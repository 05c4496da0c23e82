"""What to copy: one source image and where it goes.

A job names stores and repositories rather than references because the caller (prepare, push)
has already resolved hosts, mirrors and credentials into store objects; the engine only moves bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from imageprep.transfer.store import ImageStore


def is_digest(reference: str) -> bool:
    """Whether a reference is a digest rather than a tag (tags can never contain ``:``)."""
    return ":" in reference


def _join(store: ImageStore, repository: str, reference: str) -> str:
    separator = "@" if is_digest(reference) else ":"
    return f"{store.location}/{repository}{separator}{reference}"


@dataclass(frozen=True)
class CopyJob:
    """Copy ``source_repository:source_reference`` from ``source`` to a tag of ``destination``.

    ``source_reference`` is a tag or a digest. With ``all_architectures`` a manifest list is copied
    whole (every child by digest, then the list under the tag); otherwise only the host's child is
    copied and tagged, which is what a single-architecture deployment pulls anyway. ``attachments``
    says whether what hangs on the copied digests (signatures, attestations, SBOMs) goes along; an
    image built here (a modification) has a new digest, and so nothing to bring.
    """

    source: ImageStore
    source_repository: str
    source_reference: str
    destination: ImageStore
    destination_repository: str
    destination_tag: str
    all_architectures: bool = False
    attachments: bool = True

    @property
    def source_name(self) -> str:
        """The source image as operators write it (``host/repo:tag`` or ``host/repo@digest``)."""
        return _join(self.source, self.source_repository, self.source_reference)

    @property
    def destination_name(self) -> str:
        """The destination image as operators write it (``host/repo:tag``)."""
        return f"{self.destination.location}/{self.destination_repository}:{self.destination_tag}"
