"""Image facts read from the source registry, for tag discovery and the label filter."""

from __future__ import annotations

from imageprep.model.location import Location
from imageprep.model.reference import ImageReference
from imageprep.prepare.inspection import ImageFacts
from imageprep.registry.client import RegistryClient
from imageprep.usecases.session import Session


class RegistryInspector:
    """Reads the template tag's labels and the repository's tags from the image's registry.

    A registry that stays unreachable drains its retry budget within a few images and is then
    known to be down for the run (see :mod:`imageprep.model.retry`), so the other images fail at
    once instead of each waiting through the same retries.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def inspect(self, reference: ImageReference) -> ImageFacts:
        """Labels of ``reference`` (its config's ``config.Labels``) and every tag of its repository."""
        client = self._session.store(Location.registry(reference.registry))
        assert isinstance(client, RegistryClient)  # a registry location is always a registry client
        labels = client.labels(reference.repository, reference.reference)
        tags = client.list_tags(reference.repository)
        return ImageFacts(labels=labels, tags=tuple(tags))
