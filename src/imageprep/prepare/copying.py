"""From prepared images to copy jobs, and running them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from imageprep.model.errors import ImageServeError, ModificationError
from imageprep.prepare.evaluate import PreparedImage
from imageprep.registry.session import RegistrySession
from imageprep.transfer.engine import TransferEngine
from imageprep.transfer.jobs import CopyJob
from imageprep.transfer.listener import TransferListener
from imageprep.transfer.report import TransferReport


def check_copyable(images: Sequence[PreparedImage]) -> None:
    """Refuse, before anything is copied, what this version cannot do yet."""
    modified = [str(image.source) for image in images if image.modified]
    if modified:
        raise ModificationError(
            f"modifying images (modify_role) is not available yet; {len(modified)} image(s) would be "
            f"modified, first {modified[0]}",
            hint="run with --dry-run to see the parameters, or remove modify_role",
        )
    local = [image for image in images if image.to_local_registry and image.destination]
    if local:
        raise ImageServeError(
            f"copying into the local image-serve registry ({local[0].destination}) is not available yet",
            hint="use push_destination: HOST:PORT of a registry that accepts pushes, or --dry-run",
        )


def copy_jobs(images: Sequence[PreparedImage], session: RegistrySession, multi_arch: bool) -> list[CopyJob]:
    """One job per distinct destination image (two entries may name the same one)."""
    jobs: dict[tuple[str, str, str], CopyJob] = {}
    for image in images:
        if not image.destination:
            continue
        source = image.pull_from
        target = image.target
        key = (image.destination, target.repository, target.reference)
        jobs[key] = CopyJob(
            source=session.client(source.registry),
            source_repository=source.repository,
            source_reference=source.reference,
            destination=session.client(image.destination),
            destination_repository=target.repository,
            destination_tag=target.reference,
            all_architectures=image.entry.multi_arch if image.entry.multi_arch is not None else multi_arch,
        )
    return list(jobs.values())


def wants_all_architectures(additional_architectures: Any) -> bool:
    """``AdditionalArchitectures`` non-empty: copy every architecture unless an entry says otherwise."""
    return bool(additional_architectures)


def copy_prepared(
    images: Sequence[PreparedImage],
    session: RegistrySession,
    *,
    multi_arch: bool,
    concurrency: int,
    listener: TransferListener | None = None,
) -> TransferReport:
    """Copy every image that has a push destination."""
    check_copyable(images)
    engine = TransferEngine(concurrency=concurrency, listener=listener)
    return engine.run(copy_jobs(images, session, multi_arch))
