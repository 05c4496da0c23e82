"""The local image-serve tree: a directory any web server can serve as a read-only registry.

:class:`ImageServeTree` is an image store the copy engine writes into (and reads from);
:mod:`.manage` deletes its images (listing and showing work on any store, see
:mod:`imageprep.transfer.listing`); :mod:`.server` serves it over the OCI distribution API;
:mod:`.webconfig` prints Apache and nginx configurations for it.
"""

from typing import TYPE_CHECKING

from imageprep._lazy import lazy_attributes
from imageprep.imageserve.root import DEFAULT_ROOT, ROOT_VARIABLE, resolve_root

if TYPE_CHECKING:
    from imageprep.imageserve.manage import DeleteResult, GarbageReport, collect_garbage, delete_image
    from imageprep.imageserve.names import check_digest, check_reference, check_repository, check_tag
    from imageprep.imageserve.reader import TreeReader
    from imageprep.imageserve.tree import ImageServeTree

# Everything but the root's location is loaded on first use: prepare needs only that.
__getattr__ = lazy_attributes(
    globals(),
    {
        "DeleteResult": "imageprep.imageserve.manage",
        "GarbageReport": "imageprep.imageserve.manage",
        "collect_garbage": "imageprep.imageserve.manage",
        "delete_image": "imageprep.imageserve.manage",
        "check_digest": "imageprep.imageserve.names",
        "check_reference": "imageprep.imageserve.names",
        "check_repository": "imageprep.imageserve.names",
        "check_tag": "imageprep.imageserve.names",
        "TreeReader": "imageprep.imageserve.reader",
        "ImageServeTree": "imageprep.imageserve.tree",
    },
)

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
