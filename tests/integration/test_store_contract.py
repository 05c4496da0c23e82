"""The image-store contract, run against every store the copy engine is written for.

A registry over HTTP (a real docker-registry), the image-serve tree, a ``dir:`` layout (how images
move to and from containers storage) and the tests' in-memory store must all answer the same way,
or the one copy engine would copy differently depending on where an image goes. The ``dir:``
layout holds one image; the contract is written for one repository and one tag so that it holds
there too, and what only multi-image stores promise is tested on those alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from imageprep.imageserve.tree import ImageServeTree
from imageprep.model.blobs import BytesBody, StreamBody
from imageprep.model.errors import DigestMismatchError, ImageprepError, NotFoundError
from imageprep.model.manifest import Descriptor, Manifest
from imageprep.modify.dirstore import DirImageStore
from imageprep.registry import RegistrySession
from imageprep.transfer.store import ImageStore
from tests.support.imagegen import GeneratedImage, make_image, random_layer
from tests.support.memory_store import MemoryStore
from tests.support.registry_server import plain_registry_server, registry_available

pytestmark = pytest.mark.integration
REPOSITORY = "tripleomaster/centos-binary-nova-api"
TAG = "current-tripleo"
IMAGE = make_image({"name": "nova-api"}, [random_layer(300_000, "contract", oci=True)], oci=True)
STORES = ["memory", "dir", "tree", "registry"]
MULTI_IMAGE = ["memory", "tree", "registry"]
VERIFYING = ["tree", "registry"]  # stores that refuse bytes not matching their digest


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ImageStore]:
    yield from _store(request.param, tmp_path)


@pytest.fixture(params=MULTI_IMAGE)
def multi(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ImageStore]:
    yield from _store(request.param, tmp_path)


@pytest.fixture(params=VERIFYING)
def verifying(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ImageStore]:
    yield from _store(request.param, tmp_path)


def _store(kind: str, tmp_path: Path) -> Iterator[ImageStore]:
    if kind == "memory":
        yield MemoryStore("memory.example:5000")
    elif kind == "dir":
        yield DirImageStore(tmp_path / "layout", "containers-storage:localhost", TAG)
    elif kind == "tree":
        tree = ImageServeTree(tmp_path / "image-serve")
        tree.ensure_ready()
        yield tree
    else:
        if not registry_available():
            pytest.skip("needs docker-registry")
        with ExitStack() as stack:
            registry = stack.enter_context(plain_registry_server(tmp_path / "registry"))
            session = stack.enter_context(RegistrySession())
            yield session.client(registry.host)


def _descriptor(blob: object) -> Descriptor:
    return Descriptor(blob.media_type, blob.digest, len(blob.data))  # type: ignore[attr-defined]


def _put_image(store: ImageStore, image: GeneratedImage = IMAGE, tag: str = TAG) -> Manifest:
    for blob in image.blobs:
        store.write_blob(REPOSITORY, _descriptor(blob), BytesBody(blob.data))
    manifest = Manifest.parse(image.manifest, image.manifest_media_type, REPOSITORY)
    store.put_manifest(REPOSITORY, tag, manifest)
    return manifest


def _read(store: ImageStore, descriptor: Descriptor, start: int = 0) -> tuple[int, bytes]:
    with store.read_blob(REPOSITORY, descriptor, start) as stream:
        return stream.start, b"".join(stream)


def test_nothing_is_there_before_anything_is_written(store: ImageStore) -> None:
    layer = IMAGE.blobs[-1]
    assert not store.has_blob(REPOSITORY, layer.digest)
    assert store.manifest_digest(REPOSITORY, TAG) is None
    assert store.list_tags(REPOSITORY) == []
    with pytest.raises(NotFoundError):
        store.get_manifest(REPOSITORY, TAG)


def test_an_image_written_reads_back_byte_for_byte(store: ImageStore) -> None:
    manifest = _put_image(store)
    assert store.manifest_digest(REPOSITORY, TAG) == manifest.digest == IMAGE.digest
    assert store.get_manifest(REPOSITORY, TAG).raw == IMAGE.manifest
    assert store.get_manifest(REPOSITORY, manifest.digest).raw == IMAGE.manifest
    assert store.list_tags(REPOSITORY) == [TAG]
    for blob in IMAGE.blobs:
        assert store.has_blob(REPOSITORY, blob.digest)
        assert _read(store, _descriptor(blob)) == (0, blob.data)


def test_a_blob_reads_from_an_offset(store: ImageStore) -> None:
    _put_image(store)
    layer = IMAGE.blobs[-1]
    start, data = _read(store, _descriptor(layer), 123_456)
    # A store that cannot start part-way says so and sends the whole blob.
    assert data == layer.data[start:] and start in (0, 123_456)


def test_a_body_that_breaks_commits_nothing(store: ImageStore) -> None:
    layer = IMAGE.blobs[-1]

    def broken() -> Iterator[bytes]:
        yield layer.data[:1000]
        raise ImageprepError("the source went away (injected)")

    with pytest.raises(ImageprepError, match="injected"):
        store.write_blob(REPOSITORY, _descriptor(layer), StreamBody(broken()))
    assert not store.has_blob(REPOSITORY, layer.digest)


def test_writing_what_is_there_again_changes_nothing(store: ImageStore) -> None:
    first = _put_image(store)
    second = _put_image(store)
    assert first.digest == second.digest == store.manifest_digest(REPOSITORY, TAG)
    assert store.list_tags(REPOSITORY) == [TAG]


def test_bytes_that_do_not_match_their_digest_are_refused(verifying: ImageStore) -> None:
    layer = IMAGE.blobs[-1]
    with pytest.raises(DigestMismatchError):
        verifying.write_blob(REPOSITORY, _descriptor(layer), BytesBody(layer.data[:-1] + b"X"))
    assert not verifying.has_blob(REPOSITORY, layer.digest)


def test_tags_are_kept_apart_and_retagging_moves_a_tag(multi: ImageStore) -> None:
    other = make_image({"name": "other"}, [random_layer(1000, "other", oci=True)], oci=True)
    _put_image(multi, IMAGE, "a")
    _put_image(multi, other, "b")
    assert sorted(multi.list_tags(REPOSITORY)) == ["a", "b"]
    assert multi.manifest_digest(REPOSITORY, "a") == IMAGE.digest
    _put_image(multi, other, "a")
    assert multi.manifest_digest(REPOSITORY, "a") == other.digest
    assert multi.get_manifest(REPOSITORY, IMAGE.digest).raw == IMAGE.manifest  # still there by digest


def test_a_mounted_blob_is_there_and_a_refused_mount_leaves_nothing(multi: ImageStore) -> None:
    _put_image(multi)
    layer = IMAGE.blobs[-1]
    elsewhere = "tripleomaster/centos-binary-nova-compute"
    mounted = multi.mount_blob(elsewhere, layer.digest, REPOSITORY)
    assert multi.has_blob(elsewhere, layer.digest) is mounted
    missing = "sha256:" + "0" * 64
    assert multi.mount_blob(elsewhere, missing, REPOSITORY) is False
    assert not multi.has_blob(elsewhere, missing)
