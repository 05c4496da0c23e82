"""The copy engine and the image-store interface it is written against.

``copy_images(jobs)`` (or :class:`TransferEngine`) copies :class:`CopyJob` values between
:class:`ImageStore` implementations and returns a :class:`TransferReport`.
"""

from imageprep.model.platforms import host_architecture
from imageprep.transfer.blobs import BlobPolicy
from imageprep.transfer.engine import DEFAULT_CONCURRENCY, TransferEngine, copy_images
from imageprep.transfer.jobs import CopyJob
from imageprep.transfer.listener import BlobAction, NullListener, TransferListener
from imageprep.transfer.report import BlobCounts, ImageResult, Outcome, TransferReport
from imageprep.transfer.store import ImageStore

__all__ = [
    "DEFAULT_CONCURRENCY",
    "BlobAction",
    "BlobCounts",
    "BlobPolicy",
    "CopyJob",
    "ImageResult",
    "ImageStore",
    "NullListener",
    "Outcome",
    "TransferEngine",
    "TransferListener",
    "TransferReport",
    "copy_images",
    "host_architecture",
]
