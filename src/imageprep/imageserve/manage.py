"""What the list / show / delete commands do to the tree: values out, no printing.

Deleting a tag collects the repository's garbage the way a registry's garbage collector would:
manifests no remaining tag reaches go, then blobs no remaining manifest uses; a blob's pool copy
goes only when no repository links to it any more, so a layer another image uses is never lost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from imageprep.imageserve.atomic import is_stale_temporary, remove_stale_temporaries, remove_tree
from imageprep.imageserve.layout import REF_SUFFIX, REFERRERS, REPOSITORY_DIRECTORIES
from imageprep.imageserve.names import DIGEST, check_repository, check_tag, is_digest
from imageprep.imageserve.reader import TreeReader
from imageprep.imageserve.tree import ImageServeTree
from imageprep.model.errors import ImageprepError, ImageServeError, NotFoundError
from imageprep.model.manifest import Manifest


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """What deleting one tag removed."""

    repository: str
    tag: str
    manifests_removed: tuple[str, ...]
    blobs_removed: tuple[str, ...]
    bytes_freed: int
    repository_removed: bool
    blobs_freed: tuple[str, ...] = ()  # of blobs_removed, those no other repository still uses


def delete_image(tree: ImageServeTree, repository: str, tag: str) -> DeleteResult:
    """Remove ``repository:tag`` and whatever only it used; other images' blobs always stay."""
    check_repository(repository)
    if is_digest(tag):
        raise ImageServeError(
            f"{tree.location}/{repository}@{tag}: delete removes tags; name the image by tag"
        )
    check_tag(tag)
    layout = tree.layout
    if not layout.manifests(repository).is_dir():
        raise NotFoundError(f"{tree.location}/{repository}:{tag} is not in the image-serve tree")
    with tree.lock.held():
        type_map = layout.type_map(repository, tag)
        legacy = layout.manifests(repository) / tag
        if not type_map.is_file() and not legacy.is_symlink():
            raise NotFoundError(f"{tree.location}/{repository}:{tag} is not in the image-serve tree")
        try:
            for path in (type_map, layout.tag_link(repository, tag), legacy):
                if path.is_symlink() or path.exists():
                    path.unlink()
            tree.write_tags_list(repository)
            manifests_removed = _remove_unreferenced_manifests(tree, repository)
            blobs_removed, blobs_freed, freed = _remove_unreferenced_blobs(tree, repository)
            removed_repository = not tree.list_tags(repository) and _remove_repository(tree, repository)
            tree.write_catalog()
        except OSError as exc:
            raise ImageServeError(
                f"cannot delete {tree.location}/{repository}:{tag}: {exc.strerror or exc}",
                hint="check permissions of the image-serve root; running delete again finishes the job",
            ) from exc
    return DeleteResult(
        repository=repository,
        tag=tag,
        manifests_removed=tuple(manifests_removed),
        blobs_removed=tuple(blobs_removed),
        bytes_freed=freed,
        repository_removed=removed_repository,
        blobs_freed=tuple(blobs_freed),
    )


def _referenced_manifests(tree: TreeReader, repository: str) -> dict[str, Manifest | None]:
    """Digest -> manifest (None if unreadable) of everything a remaining tag reaches."""
    reached: dict[str, Manifest | None] = {}
    pending = [d for tag in tree.list_tags(repository) for d in tree.tag_variants(repository, tag).values()]
    while pending:
        digest = pending.pop()
        if digest in reached:
            continue
        try:
            manifest: Manifest | None = tree.read_manifest(repository, digest)
        except NotFoundError:
            continue
        except ImageprepError:
            manifest = None
        reached[digest] = manifest
        if manifest is not None:
            pending.extend(child.digest for child in manifest.manifests)
    return reached


def _remove_unreferenced_manifests(tree: TreeReader, repository: str) -> list[str]:
    directory = tree.layout.manifests(repository)
    keep = _referenced_manifests(tree, repository)
    removed = []
    remove_stale_temporaries(directory)
    for name in sorted(os.listdir(directory)) if directory.is_dir() else []:
        if DIGEST.fullmatch(name) and name not in keep:
            remove_tree(directory / name)
            removed.append(name)
    return removed


def _remove_unreferenced_blobs(tree: TreeReader, repository: str) -> tuple[list[str], list[str], int]:
    """The blobs unlinked from the repository, those of them whose last copy went, and the bytes."""
    referenced = _referenced_manifests(tree, repository)
    if any(manifest is None for manifest in referenced.values()):
        return [], [], 0  # a damaged manifest: we cannot tell what it uses, so keep every blob
    keep = {blob.digest for manifest in referenced.values() if manifest for blob in manifest.blobs}
    directory = tree.layout.blobs(repository)
    removed: list[str] = []
    released: list[str] = []
    freed = 0
    for name in sorted(os.listdir(directory)) if directory.is_dir() else []:
        if (DIGEST.fullmatch(name) and name not in keep) or is_stale_temporary(name):
            path = directory / name
            path.unlink()
            if not DIGEST.fullmatch(name):
                continue  # a dead writer's leftover, not a blob
            removed.append(name)
            size = _release_pool_copy(tree, name)
            if size is not None:
                released.append(name)
                freed += size
    return removed, released, freed


def _release_pool_copy(tree: TreeReader, digest: str) -> int | None:
    """Remove a blob's pool file once no repository links to it; the bytes freed, or ``None``
    when another repository still holds the blob."""
    pooled = tree.layout.pool_blob(digest)
    try:
        status = pooled.stat()
    except FileNotFoundError:
        return 0  # no pool copy (a tree written before there was a pool): the link was the last
    if status.st_nlink > 1:
        return None
    pooled.unlink()
    return status.st_size


def _remove_repository(tree: TreeReader, repository: str) -> bool:
    """Remove a repository without tags (its own directories only: nested repositories stay)."""
    directory = tree.layout.repository(repository)
    for name in (*REPOSITORY_DIRECTORIES, REFERRERS):
        remove_tree(directory / name)
    for entry in os.listdir(directory) if directory.is_dir() else []:
        if is_stale_temporary(entry) or entry.endswith(REF_SUFFIX):
            remove_tree(directory / entry)
    current = directory
    while current != tree.layout.v2:
        try:
            current.rmdir()
        except OSError:
            break
        current = current.parent
    return not directory.exists()


@dataclass(frozen=True, slots=True)
class GarbageReport:
    """What :func:`collect_garbage` removed."""

    pool_blobs_removed: int
    bytes_freed: int
    temporaries_removed: int


def collect_garbage(tree: ImageServeTree) -> GarbageReport:
    """Remove pooled blobs no repository links to and temporaries killed writers left behind.

    Safe while prepares run: a blob enters the pool and its first repository in one locked step.
    """
    layout = tree.layout
    blobs = 0
    freed = 0
    temporaries = 0
    with tree.lock.held():
        temporaries += remove_stale_temporaries(layout.downloads)
        temporaries += remove_stale_temporaries(layout.pool)
        for entry in list(os.scandir(layout.pool)) if layout.pool.is_dir() else []:
            if entry.name.startswith("."):
                continue
            status = entry.stat(follow_symlinks=False)
            if status.st_nlink == 1:
                Path(entry.path).unlink()
                blobs += 1
                freed += status.st_size
        for directory, subdirectories, files in os.walk(layout.v2):
            stale = [name for name in (*subdirectories, *files) if is_stale_temporary(name)]
            for name in stale:
                remove_tree(Path(directory) / name)
            temporaries += len(stale)
            subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
    return GarbageReport(pool_blobs_removed=blobs, bytes_freed=freed, temporaries_removed=temporaries)
