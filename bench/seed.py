"""Generate the TripleO-like image set in code and push it straight into a registry over HTTP.

Every image is three layers: one shared 16 MiB base, one shared 8 MiB layer, and 1 MiB of its own,
all incompressible. Shared blobs are uploaded once and mounted into every other repository, which
keeps seeding to a few seconds.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from tests.support.imagegen import Blob, GeneratedImage, make_image, random_layer

from imageprep.model import mediatypes

MIB = 1024 * 1024
SEED_THREADS = 8


@dataclass(frozen=True)
class ImageSet:
    """The generated images by repository, and the shared layers."""

    images: dict[str, GeneratedImage]
    shared: tuple[Blob, ...]

    @property
    def unique_blobs(self) -> dict[str, int]:
        """Every distinct blob digest of the set with its size."""
        blobs: dict[str, int] = {}
        for image in self.images.values():
            for blob in image.blobs:
                blobs[blob.digest] = len(blob.data)
        return blobs


def generate(repositories: list[str]) -> ImageSet:
    """Build the images (deterministic: the same names give the same digests)."""
    base = random_layer(16 * MIB, "tripleo-base")
    middle = random_layer(8 * MIB, "tripleo-openstack-base")
    images = {
        repo: make_image({"name": repo.rsplit("/", 1)[-1]}, [base, middle, random_layer(MIB, repo)])
        for repo in repositories
    }
    return ImageSet(images=images, shared=(base, middle))


def _upload(client: httpx.Client, repository: str, blob: Blob) -> None:
    started = client.post(f"/v2/{repository}/blobs/uploads/")
    started.raise_for_status()
    location = started.headers["location"]
    separator = "&" if "?" in location else "?"
    finished = client.put(
        f"{location}{separator}digest={blob.digest}",
        content=blob.data,
        headers={"Content-Type": "application/octet-stream"},
    )
    finished.raise_for_status()


def _mount(client: httpx.Client, repository: str, blob: Blob, source: str) -> None:
    response = client.post(f"/v2/{repository}/blobs/uploads/", params={"mount": blob.digest, "from": source})
    if response.status_code != 201:
        raise RuntimeError(f"mount of {blob.digest} into {repository} failed: HTTP {response.status_code}")


def _push_manifest(client: httpx.Client, repository: str, tag: str, image: GeneratedImage) -> None:
    response = client.put(
        f"/v2/{repository}/manifests/{tag}",
        content=image.manifest,
        headers={"Content-Type": image.manifest_media_type},
    )
    response.raise_for_status()


def push(host: str, image_set: ImageSet, tag: str) -> None:
    """Push every image of ``image_set`` to the registry at ``host`` (loopback, plain HTTP)."""
    if not host.startswith("127.0.0."):
        raise ValueError(f"the benchmark only talks to loopback registries, not {host}")
    repositories = list(image_set.images)
    first = repositories[0]
    shared = {blob.digest for blob in image_set.shared}
    limits = httpx.Limits(max_connections=SEED_THREADS)
    with httpx.Client(base_url=f"http://{host}", timeout=120.0, limits=limits) as client:
        for blob in image_set.shared:
            _upload(client, first, blob)

        def push_one(repository: str) -> None:
            image = image_set.images[repository]
            for blob in image.blobs:
                if blob.digest not in shared:
                    _upload(client, repository, blob)
                elif repository != first:
                    _mount(client, repository, blob, first)
            _push_manifest(client, repository, tag, image)

        with ThreadPoolExecutor(SEED_THREADS) as pool:
            list(pool.map(push_one, repositories))


def manifest_digests(host: str, repositories: list[str], tag: str) -> dict[str, str | None]:
    """What ``tag`` points at in each repository (``None`` when missing), by HEAD."""
    accept = ", ".join(sorted(mediatypes.SUPPORTED_MANIFESTS))
    digests: dict[str, str | None] = {}
    with httpx.Client(base_url=f"http://{host}", timeout=30.0) as client:
        for repository in repositories:
            response = client.head(f"/v2/{repository}/manifests/{tag}", headers={"Accept": accept})
            digests[repository] = (
                response.headers.get("docker-content-digest") if response.status_code == 200 else None
            )
    return digests
