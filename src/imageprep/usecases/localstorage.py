"""Images between local containers storage and any image store, through the one copy engine.

buildah reads and writes a ``dir:`` layout (:class:`DirImageStore`); the copy engine moves the
image between that directory and the registry (or image-serve tree), with the same credentials,
TLS policy, mirrors and digest checks as every other copy. So buildah itself never talks to a
registry, and no password is ever on a command line.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from imageprep.model.errors import TransferError
from imageprep.model.reference import ImageReference
from imageprep.model.retry import Retrier
from imageprep.modify.buildah import Buildah
from imageprep.modify.dirstore import DirImageStore
from imageprep.modify.imageinfo import image_info
from imageprep.transfer.engine import TransferEngine
from imageprep.transfer.jobs import CopyJob
from imageprep.transfer.report import ImageResult, Outcome
from imageprep.transfer.store import ImageStore

STORAGE_PREFIX = "containers-storage:"
LOCAL_TAG = "latest"
# One image at a time: a few blobs in parallel is plenty for a single local copy.
_CONCURRENCY = 4


def local_name(reference: ImageReference) -> str:
    """The fully qualified name an image gets in local storage (a digest pin becomes a tag)."""
    tag = reference.tag or LOCAL_TAG
    if reference.digest and not reference.tag:
        tag = reference.digest.replace(":", "-")[:128]
    return f"{reference.registry}/{reference.path}:{tag}"


def _single(job: CopyJob, retrier: Retrier | None) -> ImageResult:
    report = TransferEngine(concurrency=_CONCURRENCY, retrier=retrier).run([job])
    return report.images[0]


def fetch_into_storage(
    source: ImageStore,
    repository: str,
    reference: str,
    buildah: Buildah,
    name: str,
    *,
    retrier: Retrier | None = None,
    work_dir: Path | None = None,
) -> None:
    """Copy an image from a store into local storage under ``name`` (this host's architecture).

    ``retrier`` is the run's (its policy, budget and deadline); the default retries on its own.
    """
    with tempfile.TemporaryDirectory(prefix="imageprep-fetch-", dir=work_dir) as scratch:
        layout = DirImageStore(Path(scratch) / "image", STORAGE_PREFIX.rstrip(":"))
        # Only the image: local storage keeps no attachments, and a modification changes the digest.
        job = CopyJob(source, repository, reference, layout, repository, LOCAL_TAG, attachments=False)
        result = _single(job, retrier)
        if result.outcome is Outcome.FAILED:
            raise TransferError(f"cannot fetch {job.source_name} into local storage: {result.error}")
        image_id = buildah.pull_dir(layout.path, subject=name)
        buildah.tag(image_id, name)


def send_from_storage(
    buildah: Buildah,
    name: str,
    destination: ImageStore,
    repository: str,
    tag: str,
    *,
    retrier: Retrier | None = None,
    work_dir: Path | None = None,
) -> ImageResult:
    """Copy local image ``name`` to ``destination`` as ``repository:tag``, keeping its manifest format.

    The result is the engine's (``skipped`` when the tag already holds the same digest).
    """
    reference = ImageReference.parse(name)
    info = image_info(buildah, name)
    with tempfile.TemporaryDirectory(prefix="imageprep-send-", dir=work_dir) as scratch:
        path = Path(scratch) / "image"
        buildah.push_dir(name, path, format_=info.push_format)
        layout = DirImageStore(path, f"{STORAGE_PREFIX}{reference.registry}", reference.reference)
        job = CopyJob(
            layout, reference.path, reference.reference, destination, repository, tag, attachments=False
        )
        return _single(job, retrier)
