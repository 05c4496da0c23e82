"""What is attached to an image's digest, and how those attachments are named.

Two conventions hang things (signatures, attestations, SBOMs) on a manifest digest without
changing the manifest:

- sigstore/cosign tags: ``sha256-<hex>.sig``, ``.att`` and ``.sbom`` in the image's repository;
- OCI 1.1 referrers: manifests whose ``subject`` names the digest, listed by the registry's
  ``GET /v2/<name>/referrers/<digest>``, or, where a registry has no such API, in an index stored
  under the tag ``sha256-<hex>`` (the referrers tag schema), which clients keep up to date.

Both are plain manifests and blobs of the same repository, so they are copied as images are:
byte for byte, and so still valid for the same digest at the destination.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from imageprep.model import mediatypes
from imageprep.model.errors import RegistryError

COSIGN_SUFFIXES = (".sig", ".att", ".sbom")


def digest_tag(digest: str) -> str:
    """``sha256:HEX`` as a tag: ``sha256-HEX`` (the referrers fallback tag, and cosign's stem)."""
    algorithm, _, hexadecimal = digest.partition(":")
    return f"{algorithm}-{hexadecimal}"


def cosign_tags(digest: str) -> tuple[str, ...]:
    """The tags cosign attaches to ``digest`` under: signature, attestation, SBOM."""
    stem = digest_tag(digest)
    return tuple(stem + suffix for suffix in COSIGN_SUFFIXES)


def is_attachment_tag(tag: str) -> bool:
    """Whether a tag is one of these conventions' (not an image an operator named)."""
    stem, dot, suffix = tag.partition(".")
    algorithm, dash, hexadecimal = stem.partition("-")
    named = algorithm == "sha256" and dash == "-" and len(hexadecimal) == 64
    return named and (not dot or f".{suffix}" in COSIGN_SUFFIXES)


def referrers_index(entries: Iterable[Mapping[str, Any]]) -> bytes:
    """An OCI index listing ``entries`` (referrer descriptors), as the API and fallback tag answer."""
    document = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": list(entries)}
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def index_entries(raw: bytes, where: str) -> list[dict[str, Any]]:
    """The ``manifests`` entries of a referrers index (an empty list for an empty one)."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError(f"referrers index of {where} is not valid JSON: {exc}") from exc
    entries = document.get("manifests") if isinstance(document, dict) else None
    if entries is None:
        return []
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise RegistryError(f"referrers index of {where} has a malformed 'manifests' array")
    return list(entries)


def with_entry(entries: list[dict[str, Any]], entry: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """``entries`` with ``entry`` added, or ``None`` when a referrer of its digest is listed already."""
    if any(existing.get("digest") == entry["digest"] for existing in entries):
        return None
    return [*entries, dict(entry)]


def matching(entries: Iterable[Mapping[str, Any]], artifact_type: str | None) -> list[dict[str, Any]]:
    """The entries of ``artifact_type`` (all of them for ``None``): the API's ``artifactType`` filter."""
    return [
        dict(entry)
        for entry in entries
        if artifact_type is None or entry.get("artifactType") == artifact_type
    ]
