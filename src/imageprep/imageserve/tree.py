"""Writing the tree: the image-serve tree as an image store the copy engine copies into.

Blobs are stored once, in a content-addressed pool under ``.imageprep/``; each repository holding
one has a hard link to it, so a web server serves plain files and the disk holds each layer once.
A blob is streamed to a hidden temporary file while its digest is checked, and only a verified,
fsync'd file is linked into the pool and the repository. A manifest is written as a whole
directory renamed into place, after the blobs it needs are there; tags (type map, nginx link) and
the index files (``tags/list``, ``_catalog``) come last. So a killed run leaves only complete files
a client can read, plus hidden leftovers the next writer removes.

Every change of names runs under one ``flock`` on ``.imageprep/lock`` (held briefly; downloads
happen outside it), which keeps concurrent prepares and deletes from losing each other's updates
of the shared index files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from imageprep.imageserve.atomic import TreeLock, link_into_place, remove_stale_temporaries, remove_tree
from imageprep.imageserve.layout import (
    HTACCESS,
    MANIFEST_FILE,
    REF_SUFFIX,
    manifest_uri,
    typed_manifest_name,
)
from imageprep.imageserve.names import DIGEST, check_digest, check_reference, check_repository, is_digest
from imageprep.imageserve.reader import TreeReader
from imageprep.imageserve.sidefiles import render_htaccess, render_type_map
from imageprep.lookaside.storage import SignatureDirectory
from imageprep.model import mediatypes
from imageprep.model.atomicfile import (
    fsync_directory,
    make_directories,
    replace_symlink,
    temporary_path,
    write_file,
    write_stream,
)
from imageprep.model.attachments import digest_tag, referrers_index, with_entry
from imageprep.model.blobs import BlobBody
from imageprep.model.errors import DigestMismatchError, ImageServeError
from imageprep.model.manifest import Descriptor, Manifest
from imageprep.model.verify import verified_chunks

DEFAULT_ARCHITECTURE = "amd64"


def _json_bytes(document: object) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


class ImageServeTree(TreeReader):
    """The image-serve tree at ``root`` as an ``ImageStore``; creates what it needs on first write."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.lock = TreeLock(self.layout.lock_file)
        self._initialised = False

    # --- setting up ------------------------------------------------------------------------------

    def ensure_ready(self) -> None:
        """Create the tree's fixed files if needed; raises ImageServeError when the root is unusable."""
        if self._initialised:
            return
        try:
            make_directories(self.layout.internal)
            with self.lock.held():
                for directory in (self.layout.pool, self.layout.downloads, self.layout.v2):
                    make_directories(directory)
                if not self.layout.api_index.is_file():
                    write_file(self.layout.api_index, b"{}")
                remove_stale_temporaries(self.layout.downloads)
                self._bring_indexes_up_to_date()
        except OSError as exc:
            raise ImageServeError(
                f"cannot set up the image-serve tree in {self.root}: {exc.strerror or exc}",
                hint="check that the directory is writable by this user (or choose another "
                "with --image-serve-root / IMAGEPREP_IMAGE_SERVE_ROOT)",
            ) from exc
        self._initialised = True

    def record_registry_name(self, address: str) -> None:
        """Remember ``address`` as the name nodes pull the tree's images from, so that ``list``
        and ``show`` print them as the parameters name them (written only when it changed)."""
        self.ensure_ready()
        if self.registry_name() == address:
            return
        with self._writing("the local registry's name"), self.lock.held():
            write_file(self.layout.registry_name, address.encode("ascii") + b"\n")

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """Turn OS errors of a write into one operator-readable ImageServeError."""
        self.ensure_ready()
        try:
            yield
        except OSError as exc:
            raise ImageServeError(
                f"cannot write {what} into the image-serve tree {self.root}: {exc.strerror or exc}",
                hint="check free space and permissions of the image-serve root",
            ) from exc

    # --- blobs ---------------------------------------------------------------------------------

    def _link_from_pool(self, repository: str, digest: str) -> bool:
        """Hard-link a pooled blob into ``repository`` (caller holds the lock); False if not pooled."""
        pooled = self.layout.pool_blob(digest)
        target = self.layout.blob(repository, digest)
        if target.is_file():
            return True
        if not pooled.is_file():
            return False
        make_directories(target.parent)
        link_into_place(pooled, target)
        fsync_directory(target.parent)
        return True

    def has_blob(self, repository: str, digest: str) -> bool:
        """Whether the repository holds the blob, linking it from the pool when another one has it.

        Linking here (rather than answering no) saves fetching a layer again that any repository
        of the tree already has, for example in a second prepare into a new namespace.
        """
        if self.blob_file(repository, digest) is not None:
            return True
        if not self.layout.pool_blob(digest).is_file():
            return False
        with self._writing(f"blob {digest} of {repository}"), self.lock.held():
            return self._link_from_pool(repository, digest)

    def write_blob(self, repository: str, descriptor: Descriptor, body: BlobBody) -> None:
        """Stream a blob in, checking size and digest; nothing is linked unless it verifies."""
        check_repository(repository)
        digest = check_digest(descriptor.digest)
        where = f"{self.location}/{repository}"
        with self._writing(f"blob {digest} of {repository}"):
            temporary = temporary_path(self.layout.downloads)
            write_stream(temporary, verified_chunks(body.open(), descriptor, where))
            try:
                with self.lock.held():
                    if link_into_place(temporary, self.layout.pool_blob(digest)):
                        fsync_directory(self.layout.pool)
                    self._link_from_pool(repository, digest)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Link a blob the tree already holds into ``repository``; False when the tree lacks it."""
        check_repository(from_repository)
        check_repository(repository)
        check_digest(digest)
        return self.has_blob(repository, digest)  # which links it from the pool when it can

    # --- manifests -----------------------------------------------------------------------------

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        """Store a manifest's exact bytes by digest and, for a tag, point the tag at it."""
        check_repository(repository)
        check_reference(reference)
        digest = "sha256:" + hashlib.sha256(manifest.raw).hexdigest()
        if digest != manifest.digest or (is_digest(reference) and reference != digest):
            raise DigestMismatchError(
                f"manifest for {self._name(repository, reference)} has digest {digest}, "
                f"not {reference if is_digest(reference) else manifest.digest}"
            )
        typed_manifest_name(manifest.media_type)  # refuse an unknown type before writing anything
        with self._writing(f"manifest {digest} of {repository}"), self.lock.held():
            self._check_references(repository, manifest)
            self._store_manifest(repository, manifest)
            if not is_digest(reference):
                self._point_tag(repository, reference, manifest)
                self.write_tags_list(repository)
                self._add_to_catalog(repository)
            if manifest.subject is not None:
                self._record_referrer(repository, manifest)

    def _record_referrer(self, repository: str, referrer: Manifest) -> None:
        """List ``referrer`` under its subject, for the referrers API and (for static web servers,
        which have no such API) under the fallback tag ``sha256-HEX`` too. The caller holds the lock."""
        assert referrer.subject is not None
        subject = check_digest(referrer.subject.digest)
        path = self.layout.referrers_index(repository, subject)
        updated = with_entry(self.referrer_entries(repository, subject), referrer.referrer_entry())
        if updated is None:
            return
        raw = referrers_index(updated)
        make_directories(path.parent)
        write_file(path, raw)
        index = Manifest.parse(raw, mediatypes.OCI_INDEX, self._name(repository, subject))
        self._store_manifest(repository, index)
        self._point_tag(repository, digest_tag(subject), index, negotiate=False)
        self.write_tags_list(repository)
        self._add_to_catalog(repository)

    def write_signatures(self, repository: str, digest: str, signatures: Sequence[bytes]) -> int:
        """Add lookaside signatures under ``sigstore/`` (served at ``/sigstore/``); how many were new."""
        check_repository(repository)
        check_digest(digest)
        with self._writing(f"signatures of {repository}@{digest}"), self.lock.held():
            return SignatureDirectory(self.layout.sigstore).write(repository, digest, signatures)

    def _check_references(self, repository: str, manifest: Manifest) -> None:
        """Refuse a manifest whose blobs or child manifests are missing (as a registry would)."""
        for blob in manifest.blobs:
            if not self._link_from_pool(repository, check_digest(blob.digest)):
                raise ImageServeError(
                    f"manifest {manifest.digest} of {self.location}/{repository} needs blob "
                    f"{blob.digest}, which is not in the image-serve tree",
                    hint="copy the image again: its blobs are written before its manifest",
                )
        for child in manifest.manifests:
            if self.manifest_file(repository, check_digest(child.digest)) is None:
                raise ImageServeError(
                    f"manifest list {manifest.digest} of {self.location}/{repository} needs manifest "
                    f"{child.digest}, which is not in the image-serve tree",
                    hint="copy the image again with all architectures",
                )

    def _store_manifest(self, repository: str, manifest: Manifest) -> None:
        """Write ``manifests/sha256:HEX/`` as one directory rename (caller holds the lock)."""
        final = self.layout.manifest_directory(repository, manifest.digest)
        if (final / MANIFEST_FILE).is_file():
            return
        make_directories(final.parent)
        staging = temporary_path(final.parent)
        os.mkdir(staging, 0o755)
        os.chmod(staging, 0o755)
        try:
            write_file(staging / HTACCESS, render_htaccess(manifest.media_type, manifest.digest).encode())
            write_file(staging / MANIFEST_FILE, manifest.raw)
            os.link(staging / MANIFEST_FILE, staging / typed_manifest_name(manifest.media_type))
            fsync_directory(staging)
            remove_tree(final)  # only a damaged leftover can be here: it had no index.json
            os.rename(staging, final)
        finally:
            remove_tree(staging)
        fsync_directory(final.parent)

    def _point_tag(self, repository: str, tag: str, manifest: Manifest, *, negotiate: bool = True) -> None:
        """Point ``tag`` at ``manifest``; for a list, a client that cannot read lists is offered its
        default child (``negotiate``; not for a referrers index, whose entries are no platforms)."""
        variants = [(manifest.media_type, manifest.digest)]
        child = default_child(manifest) if negotiate else None
        if child is not None:
            child_type = self.manifest_media_type(repository, child.digest)
            if child_type is not None:
                variants.append((child_type, child.digest))
        text = render_type_map(tag, [(media_type, manifest_uri(digest)) for media_type, digest in variants])
        replace_symlink(self.layout.tag_link(repository, tag), manifest.digest)
        write_file(self.layout.type_map(repository, tag), text.encode("utf-8"))

    # --- index files ---------------------------------------------------------------------------

    def _bring_indexes_up_to_date(self) -> None:
        """Rewrite a lagging ``_catalog`` or ``tags/list``; drop killed writers' staging entries.

        A writer killed after placing a tag but before rewriting the indexes leaves them behind;
        a later run may skip that image as already there, so it would never rewrite them itself.
        The caller holds the lock.
        """
        repositories = self.repositories()
        for repository in repositories:
            for directory in (self.layout.manifests(repository), self.layout.tags_list(repository).parent):
                remove_stale_temporaries(directory)
            listed = self.tags_document(repository) or {}
            if listed.get("tags") != self.list_tags(repository):
                self.write_tags_list(repository)
        catalog = self.catalog_document() or {}
        if catalog.get("repositories") != repositories:
            self.write_catalog()

    def write_tags_list(self, repository: str) -> None:
        """Rewrite ``tags/list`` from the tag files (caller holds the lock)."""
        self.migrate_legacy_tags(repository)
        path = self.layout.tags_list(repository)
        make_directories(path.parent)
        write_file(path, _json_bytes({"name": repository, "tags": self.list_tags(repository)}))

    def _add_to_catalog(self, repository: str) -> None:
        listed = self.catalog_document() or {}
        repositories = listed.get("repositories")
        if isinstance(repositories, list) and repository in repositories:
            return
        self.write_catalog()

    def write_catalog(self) -> None:
        """Rewrite ``v2/_catalog`` from the repositories on disk (caller holds the lock)."""
        write_file(self.layout.catalog, _json_bytes({"repositories": self.repositories()}))

    def migrate_legacy_tags(self, repository: str) -> None:
        """Turn old-style tag symlinks (``manifests/TAG -> sha256:HEX``) into type maps and links."""
        directory = self.layout.manifests(repository)
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return
        for entry in entries:
            if not entry.is_symlink() or entry.name.endswith(REF_SUFFIX) or entry.name.startswith("."):
                continue
            target = os.path.basename(os.readlink(entry.path).rstrip("/"))
            media_type = self.manifest_media_type(repository, target) if DIGEST.fullmatch(target) else None
            with contextlib.suppress(ImageServeError):
                check_reference(entry.name)
                if media_type is not None and not is_digest(entry.name):
                    text = render_type_map(entry.name, [(media_type, manifest_uri(target))])
                    write_file(self.layout.type_map(repository, entry.name), text.encode("utf-8"))
                    replace_symlink(self.layout.tag_link(repository, entry.name), target)
                    os.unlink(entry.path)


def default_child(manifest: Manifest) -> Descriptor | None:
    """The child a client that cannot read lists gets: linux/amd64, else the first."""
    if not manifest.manifests:
        return None
    for child in manifest.manifests:
        platform = child.platform
        if platform is not None and platform.architecture == DEFAULT_ARCHITECTURE and platform.os == "linux":
            return child
    return manifest.manifests[0]
