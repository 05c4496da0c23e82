"""imageprep: prepare container images for a TripleO-style OpenStack deployment.

The library's way in is :func:`container_images_prepare_multi` (the original's function of that
name: merged environment and roles data in, the heat parameters out) or, with every option of
``imageprep prepare``, :func:`prepare_images` with a :class:`PrepareRequest` and :class:`Settings`.
"""

from typing import TYPE_CHECKING

from imageprep._lazy import lazy_attributes
from imageprep._version import __version__
from imageprep.model.errors import ImageprepError
from imageprep.model.reference import ImageReference

if TYPE_CHECKING:
    from imageprep.settings import Settings
    from imageprep.usecases.prepare import (
        PrepareOutcome,
        PrepareRequest,
        container_images_prepare_multi,
        prepare_images,
    )

# Loaded on first use: the command line imports this package on every run.
__getattr__ = lazy_attributes(
    globals(),
    {
        "Settings": "imageprep.settings",
        "PrepareOutcome": "imageprep.usecases.prepare",
        "PrepareRequest": "imageprep.usecases.prepare",
        "container_images_prepare_multi": "imageprep.usecases.prepare",
        "prepare_images": "imageprep.usecases.prepare",
    },
)

__all__ = [
    "ImageReference",
    "ImageprepError",
    "PrepareOutcome",
    "PrepareRequest",
    "Settings",
    "__version__",
    "container_images_prepare_multi",
    "prepare_images",
]
