"""What happens to the images a modification leaves in local containers storage (``--cleanup``)."""

from __future__ import annotations

from enum import StrEnum


class Cleanup(StrEnum):
    """Upstream's modes: ``full`` removes the pulled and the modified image once pushed, ``partial``
    only the pulled one (the modified image stays for inspection), ``none`` neither.

    An image that was in local storage before the run is never removed.
    """

    FULL = "full"
    PARTIAL = "partial"
    NONE = "none"

    def removes(self, *, modified: bool) -> bool:
        """Whether an image this run put in local storage is removed after the push."""
        return self is Cleanup.FULL or (self is Cleanup.PARTIAL and not modified)
