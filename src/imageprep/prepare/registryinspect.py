"""Image facts read from the source registry, for tag discovery and the label filter."""

from __future__ import annotations

import threading

from imageprep.model.errors import TransientError
from imageprep.model.reference import ImageReference
from imageprep.prepare.inspection import ImageFacts
from imageprep.registry.session import RegistrySession


class RegistryInspector:
    """Reads the template tag's labels and the repository's tags from the image's registry.

    A registry that stayed unreachable through the transport's retries is remembered: the other
    images of the run fail at once instead of each waiting through the same retries.
    """

    def __init__(self, session: RegistrySession) -> None:
        self._session = session
        self._unreachable: dict[str, TransientError] = {}
        self._lock = threading.Lock()

    def inspect(self, reference: ImageReference) -> ImageFacts:
        """Labels of ``reference`` (its config's ``config.Labels``) and every tag of its repository."""
        with self._lock:
            known = self._unreachable.get(reference.registry)
        if known is not None:
            raise known
        client = self._session.client(reference.registry)
        try:
            labels = client.labels(reference.repository, reference.reference)
            tags = client.list_tags(reference.repository)
        except TransientError as error:
            with self._lock:
                self._unreachable.setdefault(reference.registry, error)
            raise
        return ImageFacts(labels=labels, tags=tuple(tags))
