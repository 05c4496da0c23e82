"""``push``: one image, from local containers storage or a registry, into a registry or the tree.

The pushed name keeps the repository path and replaces the host; the tag gets the append tag
(verbatim, no separator). Registry to registry is a plain copy-engine job; a local image goes
through :mod:`.localstorage`. The destination is the local registry (the image-serve tree) unless
``--registry-url`` names another.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from imageprep.model.errors import ModificationError, TransferError
from imageprep.model.location import Location
from imageprep.model.reference import TRANSPORT_PREFIX, ImageReference
from imageprep.modify.buildah import Buildah
from imageprep.registry.client import RegistryClient
from imageprep.registry.credentials import Credential, normalise_host
from imageprep.settings import Settings
from imageprep.transfer.engine import TransferEngine
from imageprep.transfer.jobs import CopyJob
from imageprep.transfer.report import ImageResult, Outcome
from imageprep.usecases.localstorage import STORAGE_PREFIX, send_from_storage
from imageprep.usecases.session import Session

LOG = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PushRequest:
    """What to push where; ``local`` means the source is in local containers storage."""

    source: ImageReference
    local: bool
    destination: Location
    append_tag: str = ""
    all_architectures: bool = False
    cleanup: bool = False
    dry_run: bool = False
    signatures: bool = True  # what is attached to the image goes along (--remove-signatures)

    @classmethod
    def parse(
        cls,
        image: str,
        *,
        local: bool,
        destination: Location,
        append_tag: str = "",
        all_architectures: bool = False,
        cleanup: bool = False,
        dry_run: bool = False,
        signatures: bool = True,
    ) -> PushRequest:
        """From the command line: a ``containers-storage:`` prefix means local, ``docker://`` is dropped.

        ``destination`` is where it goes (see :func:`~.locations.locate`).
        """
        text = image.strip()
        if text.startswith(STORAGE_PREFIX):
            text, local = text[len(STORAGE_PREFIX) :], True
        text = text.removeprefix(TRANSPORT_PREFIX)
        return cls(
            ImageReference.parse(text),
            local,
            destination,
            append_tag,
            all_architectures,
            cleanup,
            dry_run,
            signatures,
        )

    @property
    def local_name(self) -> str:
        """The source's name in local storage (tag written out)."""
        return f"{self.source.name}:{self.source.tag or 'latest'}"

    @property
    def target(self) -> ImageReference:
        """Where the image goes: same path on the destination, tag + append tag."""
        tag = (self.source.tag or "latest") + self.append_tag
        return ImageReference(domain=self.destination.host, path=self.source.path, tag=tag)


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What a push did: ``result`` is ``None`` for a dry run; ``tree`` names the image-serve tree
    written (or that would be) when the destination is the local registry."""

    target: ImageReference
    result: ImageResult | None
    tree: str | None = None


def _credentials(request: PushRequest, settings: Settings) -> dict[str, Credential]:
    explicit: dict[str, Credential] = {}
    if settings.source_login is not None:
        if request.local:
            LOG.warning("--source-username/--source-password are ignored for a local image")
        else:
            explicit[normalise_host(request.source.registry)] = settings.source_login
    if settings.login is not None:
        explicit[normalise_host(request.destination.host)] = settings.login
    return explicit


def push(request: PushRequest, settings: Settings) -> PushOutcome:
    """Push the image (or, for a dry run, check that the source is there and the logins work)."""
    if request.cleanup:
        # Upstream's push takes --cleanup too and removes nothing: neither is anything here.
        LOG.warning("--cleanup: push removes no image; %s stays where it is", request.source)
    buildah = Buildah()
    tree = str(settings.image_serve_root) if request.destination.local else None
    with Session(settings, credentials=_credentials(request, settings)) as session:
        if request.dry_run:
            _check_access(request, session, buildah)
            return PushOutcome(request.target, None, tree)
        result = _push(request, session, buildah)
    if result.outcome is Outcome.FAILED:
        raise TransferError(f"cannot push {result.source} to {request.target}: {result.error}")
    return PushOutcome(request.target, result, tree)


def _check_access(request: PushRequest, session: Session, buildah: Buildah) -> None:
    """Find the source and log in to both registries; copy nothing."""
    if request.local:
        if not buildah.image_exists(request.local_name):
            raise ModificationError(f"{request.local_name} is not in local container storage")
    else:
        _registry(session, request.source.registry).ping()
    if not request.destination.local:  # a dry run creates no tree
        _registry(session, request.destination.host).ping()


def _registry(session: Session, host: str) -> RegistryClient:
    client = session.store(Location.registry(host))
    assert isinstance(client, RegistryClient)  # a registry location is always a registry client
    return client


def _push(request: PushRequest, session: Session, buildah: Buildah) -> ImageResult:
    """The copy engine's result (skipped when the tag already has that digest)."""
    target = request.target
    store = session.store(request.destination)
    if request.destination.local:
        session.tree().record_registry_name(request.destination.host)
    if request.local:
        if not buildah.image_exists(request.local_name):
            raise ModificationError(
                f"{request.local_name} is not in local container storage",
                hint="`buildah images` lists what is there",
            )
        return send_from_storage(
            buildah, request.local_name, store, target.repository, target.reference, retrier=session.retrier
        )
    job = CopyJob(
        source=session.store(Location.registry(request.source.registry)),
        source_repository=request.source.repository,
        source_reference=request.source.reference,
        destination=store,
        destination_repository=target.repository,
        destination_tag=target.reference,
        all_architectures=request.all_architectures,
    )
    engine = TransferEngine(concurrency=4, retrier=session.retrier, attachments=request.signatures)
    report = engine.run([job])
    for line in report.attachment_warnings():  # the image was pushed; its signatures may not be
        LOG.warning("%s", line)
    return report.images[0]
