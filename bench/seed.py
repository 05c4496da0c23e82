"""Generate the TripleO-like image set in code and push it into a registry (standard library HTTP).

Every image is three layers: one shared 16 MiB base, one shared 8 MiB layer, and 1 MiB of its own,
all incompressible. Shared blobs are uploaded once and mounted into every other repository, which
keeps seeding to a few seconds.
"""

from __future__ import annotations

import http.client
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

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


def _request(
    host: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str]]:
    """One plain-HTTP request with the standard library (the bench checks imageprep with its own
    client, never with imageprep's); the status and the lower-cased headers."""
    connection = http.client.HTTPConnection(host, timeout=120)
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response.status, {key.lower(): value for key, value in response.getheaders()}
    finally:
        connection.close()


def _upload(host: str, repository: str, blob: Blob) -> None:
    status, headers = _request(host, "POST", f"/v2/{repository}/blobs/uploads/")
    if status != 202:
        raise RuntimeError(f"upload of {blob.digest} into {repository} did not start: HTTP {status}")
    location = urllib.parse.urlsplit(headers["location"])
    query = f"{location.query}&" if location.query else ""
    status, _ = _request(
        host,
        "PUT",
        f"{location.path}?{query}digest={urllib.parse.quote(blob.digest)}",
        blob.data,
        {"Content-Type": "application/octet-stream"},
    )
    if status != 201:
        raise RuntimeError(f"upload of {blob.digest} into {repository} failed: HTTP {status}")


def _mount(host: str, repository: str, blob: Blob, source: str) -> None:
    query = urllib.parse.urlencode({"mount": blob.digest, "from": source})
    status, _ = _request(host, "POST", f"/v2/{repository}/blobs/uploads/?{query}")
    if status != 201:
        raise RuntimeError(f"mount of {blob.digest} into {repository} failed: HTTP {status}")


def _push_manifest(host: str, repository: str, tag: str, image: GeneratedImage) -> None:
    headers = {"Content-Type": image.manifest_media_type}
    status, _ = _request(host, "PUT", f"/v2/{repository}/manifests/{tag}", image.manifest, headers)
    if status != 201:
        raise RuntimeError(f"manifest {repository}:{tag} was refused: HTTP {status}")


def push(host: str, image_set: ImageSet, tag: str) -> None:
    """Push every image of ``image_set`` to the registry at ``host`` (loopback, plain HTTP)."""
    if not host.startswith("127.0.0."):
        raise ValueError(f"the benchmark only talks to loopback registries, not {host}")
    repositories = list(image_set.images)
    first = repositories[0]
    shared = {blob.digest for blob in image_set.shared}
    for blob in image_set.shared:
        _upload(host, first, blob)

    def push_one(repository: str) -> None:
        image = image_set.images[repository]
        for blob in image.blobs:
            if blob.digest not in shared:
                _upload(host, repository, blob)
            elif repository != first:
                _mount(host, repository, blob, first)
        _push_manifest(host, repository, tag, image)

    with ThreadPoolExecutor(SEED_THREADS) as pool:
        list(pool.map(push_one, repositories))


def manifest_digests(host: str, repositories: list[str], tag: str) -> dict[str, str | None]:
    """What ``tag`` points at in each repository (``None`` when missing), by HEAD."""
    accept = ", ".join(sorted(mediatypes.SUPPORTED_MANIFESTS))
    digests: dict[str, str | None] = {}
    for repository in repositories:
        status, headers = _request(
            host, "HEAD", f"/v2/{repository}/manifests/{tag}", headers={"Accept": accept}
        )
        digests[repository] = headers.get("docker-content-digest") if status == 200 else None
    return digests
