"""imageprep's version, for the package face and for what imageprep says it is (User-Agent)."""

__version__ = "0.1.0"
