"""The local image-serve tree: a directory any web server can serve as a read-only registry.

:class:`ImageServeTree` is an image store the copy engine writes into (and reads from);
:mod:`.manage` deletes its images (listing and showing work on any store, see
:mod:`imageprep.transfer.listing`); :mod:`.server` serves it over the OCI distribution API;
:mod:`.webconfig` prints Apache and nginx configurations for it.
"""

from imageprep.imageserve.manage import (
    DeleteResult,
    GarbageReport,
    collect_garbage,
    delete_image,
)
from imageprep.imageserve.names import check_digest, check_reference, check_repository, check_tag
from imageprep.imageserve.reader import TreeReader
from imageprep.imageserve.root import DEFAULT_ROOT, ROOT_VARIABLE, resolve_root
from imageprep.imageserve.tree import ImageServeTree

__all__ = [
    "DEFAULT_ROOT",
    "ROOT_VARIABLE",
    "DeleteResult",
    "GarbageReport",
    "ImageServeTree",
    "TreeReader",
    "check_digest",
    "check_reference",
    "check_repository",
    "check_tag",
    "collect_garbage",
    "delete_image",
    "resolve_root",
]
