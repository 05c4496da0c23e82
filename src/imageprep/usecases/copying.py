"""From prepared images to copy jobs, and running them (modified images are built, then pushed)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imageprep.model.location import Location
from imageprep.prepare.evaluate import PreparedImage
from imageprep.transfer.engine import TransferEngine
from imageprep.transfer.jobs import CopyJob
from imageprep.transfer.listener import TransferListener
from imageprep.transfer.report import TransferReport
from imageprep.usecases.cleanup import Cleanup
from imageprep.usecases.session import Session

LOG = logging.getLogger(__name__)


def copy_jobs(images: Sequence[PreparedImage], session: Session, multi_arch: bool) -> list[CopyJob]:
    """One job per distinct destination image (two entries may name the same one)."""
    jobs: dict[tuple[Location, str, str], CopyJob] = {}
    for image in images:
        if image.destination is None or image.modified:  # modified images are built, not copied
            continue
        source = image.pull_from
        target = image.target
        jobs[(image.destination, target.repository, target.reference)] = CopyJob(
            source=session.store(Location.registry(source.registry)),
            source_repository=source.repository,
            source_reference=source.reference,
            destination=session.store(image.destination),
            destination_repository=target.repository,
            destination_tag=target.reference,
            all_architectures=image.entry.multi_arch if image.entry.multi_arch is not None else multi_arch,
        )
    return list(jobs.values())


def wants_all_architectures(additional_architectures: Any) -> bool:
    """``AdditionalArchitectures`` non-empty: copy every architecture unless an entry says otherwise."""
    return bool(additional_architectures)


def check_copyable(images: Sequence[PreparedImage], session: Session) -> None:
    """Fail before anything is copied when a copy cannot work: modification inputs, an unusable tree."""
    if any(image.modified and image.destination for image in images):
        # Loaded only here: a prepare without modify_role never needs buildah's driver.
        from imageprep.usecases.modifying import check_modifiable

        check_modifiable(images)
    local = {
        image.destination.host
        for image in images
        if image.destination is not None and image.destination.local
    }
    for address in local:  # one address: the local registry's; an unwritable root is one error here
        session.tree().record_registry_name(address)


def copy_prepared(
    images: Sequence[PreparedImage],
    session: Session,
    *,
    multi_arch: bool,
    concurrency: int,
    listener: TransferListener | None = None,
    roles_path: tuple[Path, ...] = (),
    cleanup: Cleanup = Cleanup.FULL,
    attachments: bool = True,
) -> TransferReport:
    """Copy every image that has a push destination; build and push the modified ones.

    ``roles_path`` is where Ansible roles named by ``modify_role`` are looked for first;
    ``cleanup`` says which images a modification leaves in local storage; ``attachments`` whether
    signatures and other attachments go along with the copied images (modified ones have none).
    """
    check_copyable(images, session)
    engine = TransferEngine(
        concurrency=concurrency, listener=listener, retrier=session.retrier, attachments=attachments
    )
    jobs = copy_jobs(images, session, multi_arch)
    if not any(image.modified and image.destination for image in images):
        return warn_about_attachments(engine.run(jobs))
    from imageprep.usecases.modifying import ModifySettings, modify_prepared

    started = time.monotonic()
    report = engine.run(jobs) if jobs else TransferReport.from_results((), 0.0)
    warn_about_attachments(report)
    modified = modify_prepared(images, session, ModifySettings(roles_path=roles_path, cleanup=cleanup))
    elapsed = time.monotonic() - started
    return TransferReport.from_results((*report.images, *modified), elapsed, session.retrier.stats())


def warn_about_attachments(report: TransferReport) -> TransferReport:
    """Say what of the images' signatures could not be copied (the images were); the report back."""
    for line in report.attachment_warnings():
        LOG.warning("%s", line)
    return report
