"""From prepared images to copy jobs, and running them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imageprep.prepare.destinations import DestinationStores
from imageprep.prepare.evaluate import PreparedImage
from imageprep.registry.session import RegistrySession
from imageprep.transfer.engine import TransferEngine
from imageprep.transfer.jobs import CopyJob
from imageprep.transfer.listener import TransferListener
from imageprep.transfer.report import TransferReport


def copy_jobs(
    images: Sequence[PreparedImage],
    session: RegistrySession,
    destinations: DestinationStores,
    multi_arch: bool,
) -> list[CopyJob]:
    """One job per distinct destination image (two entries may name the same one)."""
    jobs: dict[tuple[str, str, str], CopyJob] = {}
    for image in images:
        if not image.destination or image.modified:  # modified images are built, not copied
            continue
        source = image.pull_from
        target = image.target
        key = (image.destination, target.repository, target.reference)
        jobs[key] = CopyJob(
            source=session.client(source.registry),
            source_repository=source.repository,
            source_reference=source.reference,
            destination=destinations.store_for(image),
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
    destinations: DestinationStores,
    *,
    multi_arch: bool,
    concurrency: int,
    listener: TransferListener | None = None,
    roles_path: tuple[Path, ...] = (),
) -> TransferReport:
    """Copy every image that has a push destination; build and push the modified ones.

    ``roles_path`` is where Ansible roles named by ``modify_role`` are looked for first.
    """
    modifying = any(image.modified and image.destination for image in images)
    if modifying:
        # Loaded only here: a prepare without modify_role never needs buildah's driver.
        from imageprep.prepare.modifying import ModifySettings, check_modifiable, modify_prepared

        check_modifiable(images)  # bad modification inputs fail before anything is copied
    if any(image.to_local_registry and image.destination for image in images):
        destinations.tree().ensure_ready()  # an unwritable root is one error, not one per image
    jobs = copy_jobs(images, session, destinations, multi_arch)
    if not modifying:
        return TransferEngine(concurrency=concurrency, listener=listener).run(jobs)
    started = time.monotonic()
    report = TransferReport.from_results((), 0.0)
    if jobs:
        report = TransferEngine(concurrency=concurrency, listener=listener).run(jobs)
    settings = ModifySettings(roles_path=roles_path)
    modified = modify_prepared(images, session, settings, store_for=destinations.store_for)
    return TransferReport.from_results((*report.images, *modified), time.monotonic() - started)
