"""``push``: one image, from local containers storage or a registry, into a registry.

The pushed name keeps the repository path and replaces the host; the tag gets the append tag
(verbatim, no separator). Registry to registry is a plain copy-engine job; a local image goes
through :mod:`.localstorage`.
"""

from __future__ import annotations

from dataclasses import dataclass

from imageprep.model.errors import ModificationError
from imageprep.model.reference import TRANSPORT_PREFIX, ImageReference
from imageprep.modify.buildah import Buildah
from imageprep.prepare.localstorage import STORAGE_PREFIX, send_from_storage
from imageprep.registry.session import RegistrySession
from imageprep.transfer.engine import TransferEngine
from imageprep.transfer.jobs import CopyJob
from imageprep.transfer.report import ImageResult
from imageprep.transfer.store import ImageStore


@dataclass(frozen=True, slots=True)
class PushRequest:
    """What to push where; ``local`` means the source is in local containers storage."""

    source: ImageReference
    local: bool
    registry: str
    append_tag: str = ""
    all_architectures: bool = False

    @classmethod
    def parse(
        cls, image: str, *, local: bool, registry: str, append_tag: str = "", all_architectures: bool = False
    ) -> PushRequest:
        """From the command line: a ``containers-storage:`` prefix means local, ``docker://`` is dropped."""
        text = image.strip()
        if text.startswith(STORAGE_PREFIX):
            text, local = text[len(STORAGE_PREFIX) :], True
        if text.startswith(TRANSPORT_PREFIX):
            text = text[len(TRANSPORT_PREFIX) :]
        registry = registry.strip()
        if registry.startswith(TRANSPORT_PREFIX):
            registry = registry[len(TRANSPORT_PREFIX) :]
        return cls(ImageReference.parse(text), local, registry.rstrip("/"), append_tag, all_architectures)

    @property
    def local_name(self) -> str:
        """The source's name in local storage (tag written out)."""
        return f"{self.source.name}:{self.source.tag or 'latest'}"

    @property
    def target(self) -> ImageReference:
        """Where the image goes: same path on the destination registry, tag + append tag."""
        tag = (self.source.tag or "latest") + self.append_tag
        return ImageReference(domain=self.registry, path=self.source.path, tag=tag)


def check_access(
    request: PushRequest, session: RegistrySession, buildah: Buildah, *, destination_is_registry: bool = True
) -> None:
    """What ``--dry-run`` does: find the source and log in to both registries, copy nothing."""
    if request.local:
        if not buildah.image_exists(request.local_name):
            raise ModificationError(f"{request.local_name} is not in local container storage")
    else:
        session.client(request.source.registry).ping()
    if destination_is_registry:
        session.client(request.registry).ping()


def push_image(
    request: PushRequest, session: RegistrySession, buildah: Buildah, destination: ImageStore | None = None
) -> ImageResult:
    """Push the image; the copy engine's result (skipped when the tag already has that digest).

    ``destination`` defaults to the registry ``request.registry`` over HTTP; the caller passes
    the image-serve tree when that registry is this host's local one.
    """
    target = request.target
    store = destination if destination is not None else session.client(request.registry)
    if request.local:
        if not buildah.image_exists(request.local_name):
            raise ModificationError(
                f"{request.local_name} is not in local container storage",
                hint="`buildah images` lists what is there",
            )
        return send_from_storage(buildah, request.local_name, store, target.repository, target.reference)
    job = CopyJob(
        source=session.client(request.source.registry),
        source_repository=request.source.repository,
        source_reference=request.source.reference,
        destination=store,
        destination_repository=target.repository,
        destination_tag=target.reference,
        all_architectures=request.all_architectures,
    )
    return TransferEngine(concurrency=4).run([job]).images[0]
