"""imageprep: prepare container images for a TripleO-style OpenStack deployment."""

from imageprep.model.errors import ImageprepError
from imageprep.model.reference import ImageReference

__version__ = "0.1.0"

__all__ = ["ImageReference", "ImageprepError", "__version__"]
