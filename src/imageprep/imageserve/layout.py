"""Where each thing lives in the tree, as paths; nothing here reads or writes.

::

    ROOT/v2/index.json                         {} (the answer to GET /v2/)
    ROOT/v2/_catalog                           {"repositories": [...]}
    ROOT/v2/REPO/blobs/sha256:HEX              a blob (hard link to the pool)
    ROOT/v2/REPO/manifests/sha256:HEX/index.json     manifest bytes
    ROOT/v2/REPO/manifests/sha256:HEX/.htaccess      Apache headers (type, digest, ETag)
    ROOT/v2/REPO/manifests/sha256:HEX/manifest.EXT   the same bytes; EXT names the media type for nginx
    ROOT/v2/REPO/manifests/TAG.type-map        Apache type map: media type -> digest variants
    ROOT/v2/REPO/manifests/TAG.ref             symlink to sha256:HEX (the tagged manifest, for nginx)
    ROOT/v2/REPO/tags/list                     {"name": REPO, "tags": [...]}
    ROOT/v2/REPO/referrers/sha256:HEX          the OCI index of HEX's referrers (also under tag sha256-HEX)
    ROOT/sigstore/REPO@sha256=HEX/signature-N  lookaside signatures of HEX
    ROOT/.imageprep/lock                       flock'ed by every writer
    ROOT/.imageprep/pool/sha256/HEX            each blob once; repositories hard-link to it
    ROOT/.imageprep/tmp/                       blob downloads in progress

Names starting with a dot are never served (temporary files are ``.tmp-*`` next to their final
name), and every path is built from names checked in :mod:`.names`, then checked again to be
inside the root.
"""

from __future__ import annotations

import os
from pathlib import Path

from imageprep.imageserve.names import check_digest, check_repository, check_tag
from imageprep.model import mediatypes
from imageprep.model.errors import ImageServeError

V2 = "v2"
INTERNAL = ".imageprep"
MANIFEST_FILE = "index.json"
HTACCESS = ".htaccess"
TYPE_MAP_SUFFIX = ".type-map"
REF_SUFFIX = ".ref"

REPOSITORY_DIRECTORIES = ("blobs", "manifests", "tags")
REFERRERS = "referrers"  # only where a manifest of the repository has referrers
SIGSTORE = "sigstore"

# nginx picks Content-Type by file extension (a ``types {}`` block), so each stored manifest also
# gets a name whose extension says its media type.
MANIFEST_EXTENSIONS: dict[str, str] = {
    mediatypes.DOCKER_MANIFEST: "dockerv2",
    mediatypes.DOCKER_MANIFEST_LIST: "dockerlist",
    mediatypes.OCI_MANIFEST: "ocimanifest",
    mediatypes.OCI_INDEX: "ociindex",
}
MEDIA_TYPES_BY_EXTENSION = {extension: media for media, extension in MANIFEST_EXTENSIONS.items()}


def typed_manifest_name(media_type: str) -> str:
    """``manifest.EXT`` for a media type we store."""
    try:
        return f"manifest.{MANIFEST_EXTENSIONS[media_type]}"
    except KeyError:
        raise ImageServeError(f"the image-serve tree cannot store manifests of type {media_type!r}") from None


class TreeLayout:
    """Paths of one tree; every method checks its names and that the result stays inside the root."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self.v2 = self.root / V2
        self.internal = self.root / INTERNAL
        self.lock_file = self.internal / "lock"
        # The address nodes pull the tree's images from (``LocalContainerRegistry``:8787).
        self.registry_name = self.internal / "registry-name"
        self.pool = self.internal / "pool" / "sha256"
        self.downloads = self.internal / "tmp"
        self.api_index = self.v2 / "index.json"
        self.catalog = self.v2 / "_catalog"
        # Lookaside signatures, served at /sigstore/ (outside v2/: they are no registry API).
        self.sigstore = self.root / SIGSTORE

    def _inside(self, path: Path) -> Path:
        # Names are checked before they get here; this is the belt to those braces.
        relative = path.relative_to(self.v2) if path.is_relative_to(self.v2) else None
        if relative is None or any(part.startswith(".") or not part for part in relative.parts):
            raise ImageServeError(f"refusing path {path}: it is not inside {self.v2}")
        return path

    def repository(self, repository: str) -> Path:
        """``v2/REPO``."""
        return self._inside(self.v2.joinpath(*check_repository(repository).split("/")))

    def blobs(self, repository: str) -> Path:
        """``v2/REPO/blobs``."""
        return self.repository(repository) / "blobs"

    def blob(self, repository: str, digest: str) -> Path:
        """``v2/REPO/blobs/sha256:HEX``."""
        return self.blobs(repository) / check_digest(digest)

    def pool_blob(self, digest: str) -> Path:
        """The one copy of a blob: ``.imageprep/pool/sha256/HEX``."""
        return self.pool / check_digest(digest).split(":", 1)[1]

    def manifests(self, repository: str) -> Path:
        """``v2/REPO/manifests``."""
        return self.repository(repository) / "manifests"

    def manifest_directory(self, repository: str, digest: str) -> Path:
        """``v2/REPO/manifests/sha256:HEX``."""
        return self.manifests(repository) / check_digest(digest)

    def manifest(self, repository: str, digest: str) -> Path:
        """``v2/REPO/manifests/sha256:HEX/index.json``."""
        return self.manifest_directory(repository, digest) / MANIFEST_FILE

    def type_map(self, repository: str, tag: str) -> Path:
        """``v2/REPO/manifests/TAG.type-map``."""
        return self.manifests(repository) / f"{check_tag(tag)}{TYPE_MAP_SUFFIX}"

    def tag_link(self, repository: str, tag: str) -> Path:
        """``v2/REPO/manifests/TAG.ref`` (symlink to the tagged manifest's directory)."""
        return self.manifests(repository) / f"{check_tag(tag)}{REF_SUFFIX}"

    def tags_list(self, repository: str) -> Path:
        """``v2/REPO/tags/list``."""
        return self.repository(repository) / "tags" / "list"

    def referrers_index(self, repository: str, digest: str) -> Path:
        """``v2/REPO/referrers/sha256:HEX``: what the referrers API answers for HEX, unfiltered."""
        return self.repository(repository) / REFERRERS / check_digest(digest)


def is_repository_directory(path: Path) -> bool:
    """Whether ``path`` holds a repository (all of ``blobs``, ``manifests`` and ``tags``)."""
    return all((path / name).is_dir() for name in REPOSITORY_DIRECTORIES)


def manifest_uri(digest: str) -> str:
    """A type-map variant's URI, relative to the type map (``sha256:HEX/index.json``)."""
    return f"{digest}/{MANIFEST_FILE}"


def digest_of_uri(uri: str) -> str | None:
    """The digest a type-map variant URI points at, or None when it is not one of ours."""
    digest, slash, name = uri.partition("/")
    if slash and name == MANIFEST_FILE:
        return digest
    return None
