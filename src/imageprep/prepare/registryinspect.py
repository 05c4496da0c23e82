"""Image facts read from the source registry, for tag discovery and the label filter."""

from __future__ import annotations

from imageprep.model.reference import ImageReference
from imageprep.prepare.inspection import ImageFacts
from imageprep.registry.session import RegistrySession


class RegistryInspector:
    """Reads the template tag's labels and the repository's tags from the image's registry."""

    def __init__(self, session: RegistrySession) -> None:
        self._session = session

    def inspect(self, reference: ImageReference) -> ImageFacts:
        """Labels of ``reference`` (its config's ``config.Labels``) and every tag of its repository."""
        client = self._session.client(reference.registry)
        labels = client.labels(reference.repository, reference.reference)
        tags = client.list_tags(reference.repository)
        return ImageFacts(labels=labels, tags=tuple(tags))
