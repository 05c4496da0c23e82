"""Which image store a prepared image is pushed into.

The local registry (``push_destination: true``, or an address equal to it) is the image-serve tree
on this host's disk, written directly rather than through a web server that only serves it
read-only; every other destination is a registry reached over HTTP. Both are image stores, so the
copy engine and the modification step do not care which one they get.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from imageprep.prepare.evaluate import PreparedImage
from imageprep.registry.session import RegistrySession
from imageprep.transfer.store import ImageStore

if TYPE_CHECKING:
    from imageprep.imageserve.tree import ImageServeTree


class DestinationStores:
    """Hands out the store for each image's push destination; one tree object per run."""

    def __init__(self, session: RegistrySession, image_serve_root: Path) -> None:
        self._session = session
        self._root = image_serve_root
        self._lock = threading.Lock()
        self._tree: ImageServeTree | None = None

    def store_for(self, image: PreparedImage) -> ImageStore:
        """The store ``image`` is pushed into (it must have a push destination)."""
        if not image.destination:
            raise ValueError(f"{image.source} has no push destination")
        if image.to_local_registry:
            return self.tree()
        return self._session.client(image.destination)

    def tree(self) -> ImageServeTree:
        """The local image-serve tree (created lazily, on first write)."""
        from imageprep.imageserve.tree import ImageServeTree  # only runs that write the tree load it

        with self._lock:
            if self._tree is None:
                self._tree = ImageServeTree(self._root)
            return self._tree
