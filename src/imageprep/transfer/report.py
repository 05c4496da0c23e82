"""The outcome of a copy run: per image, and totals, as values the CLI can print or save.

The report is the engine's only output (the engine never prints), so it carries everything an
operator needs afterwards: which images failed and why, and how much work the run really did.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from imageprep.model.errors import TransferError
from imageprep.model.retry import RetryStats

# The exception is a few lines on stderr; a run where everything failed must not print pages.
_MAX_CAUSES = 5
_MAX_NAMED_IMAGES = 3
# Errors read "<doing> <what> on registry <host>: <cause>": the part after the host is the cause
# many images can share (an unreachable registry, a refused login).
_REGISTRY_CAUSE = re.compile(r"\bon registry (\S+): (.*)")
# How patient the retries were differs from image to image; the cause does not.
_ATTEMPTS = re.compile(r" \(gave up after \d+ attempts\)")


class Outcome(StrEnum):
    """What happened to one image."""

    COPIED = "copied"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class BlobCounts:
    """How each blob of an image (or of a run) reached the destination."""

    copied: int = 0
    mounted: int = 0
    present: int = 0
    bytes_transferred: int = 0
    bytes_refetched: int = 0

    def __add__(self, other: BlobCounts) -> BlobCounts:
        return BlobCounts(
            copied=self.copied + other.copied,
            mounted=self.mounted + other.mounted,
            present=self.present + other.present,
            bytes_transferred=self.bytes_transferred + other.bytes_transferred,
            bytes_refetched=self.bytes_refetched + other.bytes_refetched,
        )


@dataclass(frozen=True, slots=True)
class AttachmentCounts:
    """What hung on an image's digests and reached the destination with it.

    ``tags`` are cosign's ``sha256-HEX.sig/.att/.sbom`` manifests, ``referrers`` OCI 1.1 ones,
    ``signatures`` lookaside signature files; ``present`` were there already. ``problems`` say what
    could not be copied: the image itself is still copied (a signature is never worth failing it).
    """

    tags: int = 0
    referrers: int = 0
    signatures: int = 0
    present: int = 0
    problems: tuple[str, ...] = ()

    @property
    def copied(self) -> int:
        """Everything this run added."""
        return self.tags + self.referrers + self.signatures

    def __add__(self, other: AttachmentCounts) -> AttachmentCounts:
        return AttachmentCounts(
            tags=self.tags + other.tags,
            referrers=self.referrers + other.referrers,
            signatures=self.signatures + other.signatures,
            present=self.present + other.present,
            problems=self.problems + other.problems,
        )


@dataclass(frozen=True, slots=True)
class ImageResult:
    """One image's outcome; ``digest`` is what the destination tag points at when copied or skipped."""

    source: str
    destination: str
    outcome: Outcome
    digest: str | None = None
    error: str | None = None
    blobs: BlobCounts = BlobCounts()
    seconds: float = 0.0
    attachments: AttachmentCounts = AttachmentCounts()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        data: dict[str, Any] = {
            "source": self.source,
            "destination": self.destination,
            "outcome": self.outcome.value,
            "digest": self.digest,
            "blobs_copied": self.blobs.copied,
            "blobs_mounted": self.blobs.mounted,
            "blobs_present": self.blobs.present,
            "bytes": self.blobs.bytes_transferred,
            "bytes_refetched": self.blobs.bytes_refetched,
            "seconds": round(self.seconds, 3),
            **_attachment_fields(self.attachments),
        }
        if self.error is not None:
            data["error"] = self.error
        return data


def _attachment_fields(counts: AttachmentCounts) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "signature_tags_copied": counts.tags,
        "referrers_copied": counts.referrers,
        "signatures_copied": counts.signatures,
        "attachments_present": counts.present,
    }
    if counts.problems:
        fields["attachment_problems"] = list(counts.problems)
    return fields


def format_bytes(count: int) -> str:
    """``count`` bytes in binary units (``12.3 MiB``), as every byte count imageprep shows."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class TransferReport:
    """Every image's result, in job order, and run totals (failed images' blobs included).

    ``retries`` is what the run's retrier met: transient failures and the retries they took.
    """

    images: tuple[ImageResult, ...]
    seconds: float
    retries: RetryStats = RetryStats()

    @classmethod
    def from_results(
        cls, results: Iterable[ImageResult], seconds: float, retries: RetryStats = RetryStats()
    ) -> TransferReport:
        """Build a report from results in job order."""
        return cls(images=tuple(results), seconds=seconds, retries=retries)

    def _with(self, outcome: Outcome) -> tuple[ImageResult, ...]:
        return tuple(result for result in self.images if result.outcome is outcome)

    @property
    def copied(self) -> tuple[ImageResult, ...]:
        """Images written to the destination by this run."""
        return self._with(Outcome.COPIED)

    @property
    def skipped(self) -> tuple[ImageResult, ...]:
        """Images whose destination tag already held the same manifest digest."""
        return self._with(Outcome.SKIPPED)

    @property
    def failed(self) -> tuple[ImageResult, ...]:
        """Images that could not be copied; each carries its error message."""
        return self._with(Outcome.FAILED)

    @property
    def blobs(self) -> BlobCounts:
        """Blob totals over every image of the run."""
        total = BlobCounts()
        for result in self.images:
            total = total + result.blobs
        return total

    @property
    def attachments(self) -> AttachmentCounts:
        """Signatures and other attachments over every image of the run."""
        total = AttachmentCounts()
        for result in self.images:
            total = total + result.attachments
        return total

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping: totals first, then per-image results."""
        blobs = self.blobs
        return {
            "copied": len(self.copied),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "blobs_copied": blobs.copied,
            "blobs_mounted": blobs.mounted,
            "blobs_present": blobs.present,
            "bytes": blobs.bytes_transferred,
            "bytes_refetched": blobs.bytes_refetched,
            "seconds": round(self.seconds, 3),
            "transient_failures": self.retries.failures,
            "retries": self.retries.retries,
            "transient_failures_by_cause": dict(self.retries.by_cause),
            **_attachment_fields(self.attachments),
            "failures": [{"source": r.source, "error": r.error} for r in self.failed],
            "images": [result.to_dict() for result in self.images],
        }

    def to_json(self) -> str:
        """The report as indented JSON, for ``--report FILE`` and for machines."""
        return json.dumps(self.to_dict(), indent=2)

    def summary(self) -> str:
        """One line for the operator at the end of a run."""
        blobs = self.blobs
        retried = f"; {self.retries.retries} retries" if self.retries.retries else ""
        attached = self.attachments
        signed = (
            f"; signatures and attachments: {attached.copied} copied, {attached.present} already present"
            if attached.copied or attached.present
            else ""
        )
        return (
            f"{len(self.images)} images: {len(self.copied)} copied, {len(self.skipped)} skipped, "
            f"{len(self.failed)} failed; blobs: {blobs.copied} copied, {blobs.mounted} mounted, "
            f"{blobs.present} already present{signed}; {format_bytes(blobs.bytes_transferred)} "
            f"in {self.seconds:.1f}s{retried}"
        )

    def attachment_warnings(self) -> list[str]:
        """What could not be copied of the images' signatures and attachments, each problem once
        (the images themselves were copied), at most a few lines."""
        problems: dict[str, int] = {}
        for result in self.images:
            for problem in result.attachments.problems:
                problems[problem] = problems.get(problem, 0) + 1
        lines = [
            problem + (f" (and {count - 1} more times)" if count > 1 else "")
            for problem, count in list(problems.items())[:_MAX_CAUSES]
        ]
        if len(problems) > _MAX_CAUSES:
            lines.append(f"and {len(problems) - _MAX_CAUSES} other problems with signatures (see the report)")
        return lines

    def raise_for_failures(self) -> None:
        """Raise one :class:`TransferError` if any image failed: each cause once, with its images."""
        failed = self.failed
        if not failed:
            return
        groups: dict[str, list[str]] = {}
        hints: dict[str, str] = {}
        for result in failed:
            cause, hint = failure_cause(result)
            groups.setdefault(cause, []).append(result.source)
            if hint:
                hints.setdefault(cause, hint)
        ranked = sorted(groups.items(), key=lambda item: -len(item[1]))
        lines = [_told(cause, sources) for cause, sources in ranked[:_MAX_CAUSES]]
        if len(ranked) > _MAX_CAUSES:
            lines.append(f"and {len(ranked) - _MAX_CAUSES} other causes (see the report, or run with -v)")
        first_hint = next((hints[cause] for cause, _ in ranked if cause in hints), None)
        hint = (
            first_hint + "; " if first_hint else ""
        ) + "fix the cause and run again; images already copied are skipped"
        if len(lines) == 1:
            raise TransferError(
                f"{len(failed)} of {len(self.images)} images could not be copied: {lines[0]}", hint=hint
            )
        listed = "".join(f"\n  - {line}" for line in lines)
        raise TransferError(
            f"{len(failed)} of {len(self.images)} images could not be copied:{listed}", hint=hint
        )


def failure_cause(result: ImageResult) -> tuple[str, str | None]:
    """What made an image fail, without the image's own name where the error has a registry part,
    so that images failing for one reason are told together; and the error's hint."""
    message, _, hint = (result.error or "unknown error").partition("\n  hint: ")
    match = _REGISTRY_CAUSE.search(message)
    cause = f"registry {match.group(1)}: {match.group(2)}" if match else message
    return _ATTEMPTS.sub("", cause), hint or None


def _told(cause: str, sources: list[str]) -> str:
    """One cause and the images it stopped (one image: named once, by its error if it names it)."""
    if len(sources) > 1:
        return f"{cause} ({_named(sources)})"
    path = sources[0].split("/", 1)[-1]
    return cause if path in cause else f"{sources[0]}: {cause}"


def _named(sources: list[str]) -> str:
    names = ", ".join(sources[:_MAX_NAMED_IMAGES])
    more = f" and {len(sources) - _MAX_NAMED_IMAGES} more" if len(sources) > _MAX_NAMED_IMAGES else ""
    return f"{len(sources)} image{'s' if len(sources) > 1 else ''}: {names}{more}"
