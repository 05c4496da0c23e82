"""Descriptors and manifests as immutable values that keep the exact bytes they came from.

Manifests are copied byte for byte so that digests survive the copy; the parsed view is only
used to find what a manifest points at.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from imageprep.model import mediatypes
from imageprep.model.errors import RegistryError, UnsupportedMediaTypeError

# The digests we can verify, in canonical form. Anything else is refused when a manifest is read:
# a digest ends up in URLs and file names, so "sha256:../../x" must never get that far.
DIGEST_FORMAT = re.compile(r"sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128}")
# No real layer comes near this; a larger claim is a broken or hostile manifest.
MAX_BLOB_SIZE = 1024**4


def sha256_digest(data: bytes) -> str:
    """The ``sha256:<hex>`` digest of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Platform:
    """The platform a manifest-list entry is for."""

    os: str
    architecture: str
    variant: str | None = None


@dataclass(frozen=True, slots=True)
class Descriptor:
    """What a manifest says about a blob or a child manifest."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    # What an OCI 1.1 referrer is (a signature, an SBOM ...), as a referrers index lists it.
    artifact_type: str | None = None

    @classmethod
    def from_json(cls, data: Any, where: str) -> Descriptor:
        """Build from a manifest's JSON descriptor object; ``where`` names the manifest in errors."""
        try:
            platform_data = data.get("platform")
            platform = None
            if isinstance(platform_data, dict):
                platform = Platform(
                    os=str(platform_data.get("os", "")),
                    architecture=str(platform_data.get("architecture", "")),
                    variant=platform_data.get("variant"),
                )
            digest = str(data["digest"])
            size = data["size"]
            if isinstance(size, bool) or not isinstance(size, int):
                raise TypeError(f"size {size!r} is not a whole number")
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise RegistryError(f"malformed descriptor in manifest {where}: {exc}") from exc
        if not DIGEST_FORMAT.fullmatch(digest):
            raise RegistryError(
                f"manifest {where} references {digest[:100]!r}, which is not a sha256/sha384/sha512 digest"
            )
        if not 0 <= size <= MAX_BLOB_SIZE:
            raise RegistryError(f"manifest {where} claims a size of {size} bytes for {digest}; refused")
        artifact_type = data.get("artifactType")
        return cls(
            media_type=str(data.get("mediaType", "")),
            digest=digest,
            size=size,
            platform=platform,
            artifact_type=str(artifact_type) if isinstance(artifact_type, str) else None,
        )


@dataclass(frozen=True, slots=True)
class Manifest:
    """A manifest or index: its raw bytes, media type and what it references."""

    raw: bytes
    media_type: str
    digest: str
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = field(default=())
    # OCI 1.1: the manifest this one is about (it is then a referrer of that manifest).
    subject: Descriptor | None = None

    @property
    def is_index(self) -> bool:
        """Whether this is a manifest list / OCI index."""
        return self.media_type in mediatypes.MANIFEST_INDEXES

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """Config first, then layers: every blob an image manifest needs."""
        return ((self.config,) if self.config else ()) + self.layers

    @property
    def descriptor(self) -> Descriptor:
        """A descriptor pointing at this manifest."""
        return Descriptor(self.media_type, self.digest, len(self.raw))

    def referrer_entry(self) -> dict[str, Any]:
        """This manifest as a referrers index lists it: its descriptor, ``artifactType`` (the
        manifest's own, else its config's media type) and its annotations (OCI 1.1)."""
        data = json.loads(self.raw)
        entry: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.raw)}
        config = data.get("config") if isinstance(data.get("config"), dict) else {}
        artifact_type = data.get("artifactType") or config.get("mediaType")
        if isinstance(artifact_type, str) and artifact_type:
            entry["artifactType"] = artifact_type
        if isinstance(data.get("annotations"), dict) and data["annotations"]:
            entry["annotations"] = data["annotations"]
        return entry

    @classmethod
    def parse(cls, raw: bytes, content_type: str | None, where: str) -> Manifest:
        """Parse manifest bytes; ``content_type`` (the server's header) counts when the body has none."""
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RegistryError(f"manifest of {where} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise RegistryError(f"manifest of {where} is not a JSON object")
        media_type = data.get("mediaType") or (content_type or "").split(";")[0].strip()
        if data.get("schemaVersion") == 1 or media_type in mediatypes.SCHEMA1:
            raise UnsupportedMediaTypeError(
                f"{where} uses a Docker schema 1 manifest, which imageprep does not copy",
                hint="rebuild or re-push the image with a current client (schema 2 or OCI)",
            )
        if not media_type:
            media_type = mediatypes.OCI_INDEX if "manifests" in data else mediatypes.OCI_MANIFEST
        if media_type not in mediatypes.SUPPORTED_MANIFESTS:
            raise UnsupportedMediaTypeError(f"{where} has an unsupported manifest type {media_type!r}")
        digest = sha256_digest(raw)
        subject_data = data.get("subject")
        subject = Descriptor.from_json(subject_data, where) if isinstance(subject_data, dict) else None
        if media_type in mediatypes.MANIFEST_INDEXES:
            children = data.get("manifests")
            if not isinstance(children, list):
                raise RegistryError(f"manifest list of {where} has no 'manifests' array")
            return cls(
                raw=raw,
                media_type=media_type,
                digest=digest,
                manifests=tuple(Descriptor.from_json(c, where) for c in children),
                subject=subject,
            )
        layers = data.get("layers")
        config = data.get("config")
        if not isinstance(layers, list) or not isinstance(config, dict):
            raise RegistryError(f"image manifest of {where} lacks 'config' or 'layers'")
        return cls(
            raw=raw,
            media_type=media_type,
            digest=digest,
            config=Descriptor.from_json(config, where),
            layers=tuple(Descriptor.from_json(layer, where) for layer in layers),
            subject=subject,
        )
