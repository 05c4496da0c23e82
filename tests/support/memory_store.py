"""An in-memory :class:`~imageprep.transfer.store.ImageStore`: a test double of the store interface.

It exists to test the copy engine's pure logic (what it reads, writes, skips and mounts, and in
what order) fast and without I/O. It is deliberately simple and trusting: it does not verify
digests itself, so a test can see exactly what the engine let through. Behaviour against real
registries (HTTP, auth, upload sessions) is covered by the integration tests instead.

Every call is counted, and faults can be injected per blob: corrupt bytes, a stream that breaks
with :class:`TransientError` part-way, or a slow stream (so concurrent images overlap).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from imageprep.model.blobs import BlobBody, BlobStream
from imageprep.model.errors import NoSignatureStorageError, NotFoundError, RegistryError, TransientError
from imageprep.model.manifest import Descriptor, Manifest
from tests.support.imagegen import GeneratedImage


@dataclass
class Faults:
    """Injected misbehaviour, keyed by blob digest."""

    corrupt: set[str] = field(default_factory=set)
    # digest -> how many more reads break part-way with TransientError
    break_midway: dict[str, int] = field(default_factory=dict)
    chunk_delay: float = 0.0
    broken_repositories: set[str] = field(default_factory=set)


class MemoryStore:
    """Repositories of tags, manifests and blobs held in dicts; thread-safe; counts every call."""

    def __init__(self, location: str, *, chunk_size: int = 4096, can_mount: bool = True) -> None:
        self._location = location
        self._chunk_size = chunk_size
        self._can_mount = can_mount
        self._lock = threading.Lock()
        self.tags: dict[tuple[str, str], str] = {}
        self.manifests: dict[tuple[str, str], Manifest] = {}
        self.blobs: dict[tuple[str, str], bytes] = {}
        self.calls: Counter[tuple[str, str]] = Counter()
        self.writes: Counter[str] = Counter()
        self.put_log: list[tuple[str, str, str]] = []
        self.read_starts: dict[str, list[int]] = {}
        self.ignores_ranges = False  # serve whole blobs, as a registry without Range support does
        self.faults = Faults()
        self.referrers_api = True  # False: answer as a registry without the referrers API does
        self.signatures: dict[tuple[str, str], list[bytes]] = {}
        self.signature_storage = True  # False: nowhere to write signatures

    # -- seeding helpers -------------------------------------------------------------------

    def add_image(self, repository: str, tag: str | None, image: GeneratedImage) -> Manifest:
        """Store a generated image (blobs, manifest by digest, and ``tag`` if given)."""
        for blob in image.blobs:
            self.blobs[(repository, blob.digest)] = blob.data
        manifest = Manifest.parse(image.manifest, image.manifest_media_type, repository)
        self.add_manifest(repository, tag, manifest)
        return manifest

    def add_manifest(self, repository: str, tag: str | None, manifest: Manifest) -> None:
        """Store a manifest by digest, and under ``tag`` if given."""
        self.manifests[(repository, manifest.digest)] = manifest
        if tag is not None:
            self.tags[(repository, tag)] = manifest.digest

    def blob_digests(self, repository: str) -> set[str]:
        """Digests of the blobs a repository holds."""
        return {digest for repo, digest in self.blobs if repo == repository}

    def count(self, operation: str, digest: str | None = None) -> int:
        """How often ``operation`` was called (for ``digest`` only, when given)."""
        return sum(n for (op, d), n in self.calls.items() if op == operation and digest in (None, d))

    # -- the ImageStore interface ----------------------------------------------------------

    @property
    def location(self) -> str:
        return self._location

    def _record(self, operation: str, key: str, repository: str) -> None:
        with self._lock:
            self.calls[(operation, key)] += 1
        if repository in self.faults.broken_repositories:
            raise RegistryError(f"{self._location}/{repository} is broken (injected)")

    def _resolve(self, repository: str, reference: str) -> str | None:
        if ":" in reference:
            return reference if (repository, reference) in self.manifests else None
        return self.tags.get((repository, reference))

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        self._record("get_manifest", reference, repository)
        digest = self._resolve(repository, reference)
        if digest is None:
            raise NotFoundError(f"{self._location}/{repository}:{reference} not found")
        return self.manifests[(repository, digest)]

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        self._record("manifest_digest", reference, repository)
        return self._resolve(repository, reference)

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        self._record("put_manifest", reference, repository)
        with self._lock:
            self.put_log.append((repository, reference, manifest.digest))
            self.manifests[(repository, manifest.digest)] = manifest
            if ":" not in reference:
                self.tags[(repository, reference)] = manifest.digest

    def has_blob(self, repository: str, digest: str) -> bool:
        self._record("has_blob", digest, repository)
        return (repository, digest) in self.blobs

    def read_blob(
        self, repository: str, descriptor: Descriptor, start: int = 0, end: int | None = None
    ) -> AbstractContextManager[BlobStream]:
        self._record("read_blob", descriptor.digest, repository)
        with self._lock:
            self.read_starts.setdefault(descriptor.digest, []).append(start)
        data = self.blobs.get((repository, descriptor.digest))
        if data is None:
            raise NotFoundError(f"blob {descriptor.digest} not in {self._location}/{repository}")
        if descriptor.digest in self.faults.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        breaks = False
        with self._lock:
            remaining = self.faults.break_midway.get(descriptor.digest, 0)
            if remaining > 0:
                self.faults.break_midway[descriptor.digest] = remaining - 1
                breaks = True
        return self._stream(data, breaks, start, end)

    @contextmanager
    def _stream(self, data: bytes, breaks: bool, start: int, end: int | None) -> Iterator[BlobStream]:
        if self.ignores_ranges:
            yield BlobStream(self._chunks(data, breaks, 0, None))
            return
        yield BlobStream(self._chunks(data, breaks, start, end), start, end)

    def _chunks(self, data: bytes, breaks: bool, start: int, end: int | None) -> Iterator[bytes]:
        stop = len(data) if end is None else end
        for offset in range(start, stop, self._chunk_size):
            if breaks and offset >= len(data) // 2:
                raise TransientError(f"connection reset by {self._location} (injected)")
            if self.faults.chunk_delay:
                time.sleep(self.faults.chunk_delay)
            yield data[offset : min(offset + self._chunk_size, stop)]

    def write_blob(self, repository: str, descriptor: Descriptor, body: BlobBody) -> None:
        self._record("write_blob", descriptor.digest, repository)
        data = b"".join(body.open())  # raises before anything below runs: nothing is committed
        with self._lock:
            self.blobs[(repository, descriptor.digest)] = data
            self.writes[descriptor.digest] += 1

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        self._record("mount_blob", digest, repository)
        with self._lock:
            data = self.blobs.get((from_repository, digest))
            if not self._can_mount or data is None:
                return False
            self.blobs[(repository, digest)] = data
            return True

    def list_tags(self, repository: str) -> list[str]:
        self._record("list_tags", "", repository)
        return sorted(tag for repo, tag in self.tags if repo == repository)

    def referrers(self, repository: str, digest: str) -> list[Descriptor] | None:
        self._record("referrers", digest, repository)
        if not self.referrers_api:
            return None
        with self._lock:
            found = [
                manifest
                for (repo, _), manifest in self.manifests.items()
                if repo == repository and manifest.subject is not None and manifest.subject.digest == digest
            ]
        return [Descriptor.from_json(manifest.referrer_entry(), repository) for manifest in found]

    def read_signatures(self, repository: str, digest: str) -> list[bytes]:
        self._record("read_signatures", digest, repository)
        with self._lock:
            return list(self.signatures.get((repository, digest), []))

    def write_signatures(self, repository: str, digest: str, signatures: Sequence[bytes]) -> int:
        self._record("write_signatures", digest, repository)
        if not self.signature_storage:
            raise NoSignatureStorageError(f"{self._location} has no lookaside staging (injected)")
        with self._lock:
            held = self.signatures.setdefault((repository, digest), [])
            new = [signature for signature in signatures if signature not in held]
            held.extend(new)
            return len(new)


class ListingMemoryStore(MemoryStore):
    """A :class:`MemoryStore` that can name its repositories, like a registry with a catalog."""

    def __init__(self, location: str, *, listing_fails: bool = False) -> None:
        super().__init__(location)
        self._listing_fails = listing_fails

    def repositories(self) -> frozenset[str] | None:
        self._record("repositories", "", "")
        if self._listing_fails:
            raise RegistryError(f"{self.location}: catalog refused (injected)")
        repos = {repo for repo, _ in self.tags} | {repo for repo, _ in self.blobs}
        return frozenset(repos | {repo for repo, _ in self.manifests})
