"""The image-serve tree on a real file system: layout, atomic writes, garbage collection, the engine."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from imageprep.imageserve import (
    ImageServeTree,
    collect_garbage,
    delete_image,
)
from imageprep.model import mediatypes
from imageprep.model.blobs import BytesBody, StreamBody
from imageprep.model.errors import DigestMismatchError, ImageServeError, NotFoundError, TransientError
from imageprep.model.manifest import Descriptor, Manifest
from imageprep.registry import RegistrySession
from imageprep.transfer import CopyJob, Outcome, copy_images
from imageprep.transfer.listing import list_images, show_image
from tests.support.imagegen import GeneratedImage, make_image, make_layer
from tests.support.imageserve_check import verify_tree
from tests.support.imageserve_images import GeneratedIndex
from tests.support.memory_store import MemoryStore
from tests.support.registry_server import RunningRegistry
from tests.support.seeding import seed_image, skopeo_raw_manifest

SHARED = make_layer({"usr/share/shared": b"shared layer " * 32})


def _image(name: str, *, oci: bool = False, shared: bool = True, arch: str = "amd64") -> GeneratedImage:
    own = make_layer({f"etc/{name}": name.encode()}, oci=oci)
    layers = [SHARED, own] if shared else [own]
    return make_image({"name": name}, layers, oci=oci, architecture=arch)


def _put(tree: ImageServeTree, repository: str, tag: str | None, image: GeneratedImage) -> Manifest:
    for blob in image.blobs:
        tree.write_blob(
            repository, Descriptor(blob.media_type, blob.digest, len(blob.data)), BytesBody(blob.data)
        )
    manifest = Manifest.parse(image.manifest, image.manifest_media_type, repository)
    tree.put_manifest(repository, tag or manifest.digest, manifest)
    return manifest


def _everything(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def tree(tmp_path: Path) -> ImageServeTree:
    return ImageServeTree(tmp_path / "tree")


def test_vector_57_exported_manifest_catalog_config_and_headers(tree: ImageServeTree) -> None:
    image = _image("nova-api")
    manifest = _put(tree, "t/nova-api", "latest", image)
    v2 = tree.root / "v2"
    assert (v2 / "index.json").read_text() == "{}"
    assert (v2 / "_catalog").read_text() == '{"repositories": ["t/nova-api"]}'
    assert (v2 / "t/nova-api/blobs" / image.config.digest).read_bytes() == image.config.data
    directory = v2 / "t/nova-api/manifests" / manifest.digest
    assert (directory / "index.json").read_bytes() == image.manifest
    assert (directory / ".htaccess").read_text().splitlines() == [
        f'Header set Content-Type "{mediatypes.DOCKER_MANIFEST}"',
        f'Header set Docker-Content-Digest "{manifest.digest}"',
        f'Header set ETag "{manifest.digest}"',
    ]
    assert (directory / "manifest.dockerv2").samefile(directory / "index.json")
    assert (v2 / "t/nova-api/manifests/latest.type-map").read_text() == (
        f"URI: latest\n\nContent-Type: {mediatypes.DOCKER_MANIFEST}\nURI: {manifest.digest}/index.json\n\n"
    )
    assert os.readlink(v2 / "t/nova-api/manifests/latest.ref") == manifest.digest
    assert (v2 / "t/nova-api/tags/list").read_text() == '{"name": "t/nova-api", "tags": ["latest"]}'
    assert verify_tree(tree.root) == []


def test_vector_56_blob_files_are_world_readable_even_under_umask_077(tree: ImageServeTree) -> None:
    previous = os.umask(0o077)
    try:
        _put(tree, "t/nova-api", "latest", _image("nova-api"))
    finally:
        os.umask(previous)
    for path in (tree.root / "v2").rglob("*"):
        if path.is_symlink():
            continue
        expected = 0o755 if path.is_dir() else 0o644
        assert path.stat().st_mode & 0o777 == expected, path


def test_vector_56_wrong_digest_leaves_no_file(tree: ImageServeTree) -> None:
    good = make_layer({"a": b"a"})
    _put(tree, "t/other", "latest", _image("other"))  # the tree exists already
    before = _everything(tree.root)
    wrong = Descriptor(good.media_type, "sha256:" + "0" * 64, len(good.data))
    with pytest.raises(DigestMismatchError):
        tree.write_blob("t/nova-api", wrong, BytesBody(good.data))
    short = Descriptor(good.media_type, good.digest, len(good.data) + 1)
    with pytest.raises(DigestMismatchError):
        tree.write_blob("t/nova-api", short, BytesBody(good.data))

    def broken() -> Iterator[bytes]:
        yield good.data[:5]
        raise TransientError("connection reset (test)")

    with pytest.raises(TransientError):
        tree.write_blob(
            "t/nova-api", Descriptor(good.media_type, good.digest, len(good.data)), StreamBody(broken())
        )
    assert _everything(tree.root) == before
    assert not tree.has_blob("t/nova-api", good.digest)


def test_hostile_names_are_refused_before_anything_is_written(tree: ImageServeTree) -> None:
    image = _image("x")
    manifest = Manifest.parse(image.manifest, image.manifest_media_type, "x")
    blob = image.config
    descriptor = Descriptor(blob.media_type, blob.digest, len(blob.data))
    for repository in ("../evil", "/etc", "t/../../x", "t/.tmp-1-x", "t/nova\x00", "T/x", "t//x", "a" * 300):
        with pytest.raises(ImageServeError, match="repository name"):
            tree.write_blob(repository, descriptor, BytesBody(blob.data))
        with pytest.raises(ImageServeError, match="repository name"):
            tree.put_manifest(repository, "latest", manifest)
        with pytest.raises(ImageServeError, match="repository name"):
            tree.mount_blob(repository, blob.digest, "t/ok")
        with pytest.raises(ImageServeError, match="repository name"):
            tree.has_blob(repository, blob.digest)
    for tag in ("../../x", "a/b", ".hidden", "-x", "x" * 200, "", "sha256:12"):
        with pytest.raises(ImageServeError):
            tree.put_manifest("t/ok", tag, manifest)
    with pytest.raises(ImageServeError, match="invalid digest"):
        tree.write_blob("t/ok", Descriptor(blob.media_type, "sha256:../../etc", 1), BytesBody(b"x"))
    assert not tree.root.exists()


def test_put_manifest_refuses_a_manifest_whose_blobs_are_missing(tree: ImageServeTree) -> None:
    image = _image("lonely")
    manifest = Manifest.parse(image.manifest, image.manifest_media_type, "x")
    with pytest.raises(ImageServeError, match="needs blob"):
        tree.put_manifest("t/lonely", "latest", manifest)
    assert tree.list_tags("t/lonely") == []
    assert verify_tree(tree.root) == []


def test_vector_60_delete_collects_only_what_no_remaining_image_uses(tree: ImageServeTree) -> None:
    latest = _put(tree, "t/nova-api", "latest", _image("nova-api-latest"))
    abc_image = _image("nova-api-abc")
    abc = _put(tree, "t/nova-api", "abc", abc_image)
    _put(tree, "t/keystone", "latest", _image("keystone"))
    unique = abc_image.layers[1].digest
    blobs = tree.root / "v2/t/nova-api/blobs"

    result = delete_image(tree, "t/nova-api", "abc")

    assert result.manifests_removed == (abc.digest,)
    assert set(result.blobs_removed) == {abc_image.config.digest, unique}
    assert not (tree.root / "v2/t/nova-api/manifests" / abc.digest).exists()
    assert (blobs / SHARED.digest).is_file()
    assert not (blobs / unique).exists()
    assert not tree.layout.pool_blob(unique).exists()
    assert tree.list_tags("t/nova-api") == ["latest"]
    assert verify_tree(tree.root) == []

    delete_image(tree, "t/nova-api", "latest")
    assert not (tree.root / "v2/t/nova-api").exists()
    assert latest.digest not in {i.digest for i in list_images(tree)}
    # The shared layer stays for t/keystone, in its repository and in the pool.
    assert tree.layout.pool_blob(SHARED.digest).is_file()
    assert tree.has_blob("t/keystone", SHARED.digest)
    assert json.loads((tree.root / "v2/_catalog").read_text()) == {"repositories": ["t/keystone"]}
    assert verify_tree(tree.root) == []

    delete_image(tree, "t/keystone", "latest")
    assert list(tree.layout.pool.iterdir()) == []
    assert sorted(p.name for p in (tree.root / "v2").iterdir()) == ["_catalog", "index.json"]


def test_delete_refuses_unknown_tags_and_digests(tree: ImageServeTree) -> None:
    manifest = _put(tree, "t/nova-api", "latest", _image("nova-api"))
    with pytest.raises(NotFoundError, match="t/nova-api:nope"):
        delete_image(tree, "t/nova-api", "nope")
    with pytest.raises(ImageServeError, match="by tag"):
        delete_image(tree, "t/nova-api", manifest.digest)
    with pytest.raises(ImageServeError, match="repository name"):
        delete_image(tree, "../x", "latest")
    missing = ImageServeTree(tree.root.parent / "missing")
    with pytest.raises(NotFoundError):
        delete_image(missing, "t/nova-api", "latest")
    assert not missing.root.exists()


def test_vector_61_catalog_lists_nested_repositories(tree: ImageServeTree) -> None:
    names = ["t/nova-api", "t/namespace/nova-compute", "t/yet/another/namespace/nova-compute"]
    for name in names:
        _put(tree, name, "latest", _image(name.replace("/", "-")))
    assert json.loads((tree.root / "v2/_catalog").read_text()) == {"repositories": sorted(names)}
    assert tree.repositories() == sorted(names)


def test_vector_62_mount_links_a_blob_only_when_the_tree_has_it(tree: ImageServeTree) -> None:
    layer = make_layer({"x": b"mounted"})
    assert tree.mount_blob("t/nova-api", layer.digest, "t/nova-compute") is False
    assert not (tree.root / "v2/t/nova-api").exists()
    tree.write_blob(
        "t/nova-compute", Descriptor(layer.media_type, layer.digest, len(layer.data)), BytesBody(layer.data)
    )
    assert tree.mount_blob("t/nova-api", layer.digest, "t/nova-compute") is True
    mounted = tree.root / "v2/t/nova-api/blobs" / layer.digest
    assert mounted.read_bytes() == layer.data
    assert mounted.samefile(tree.root / "v2/t/nova-compute/blobs" / layer.digest)
    assert mounted.stat().st_nlink == 3  # two repositories and the pool: stored once


def test_vector_59_legacy_tag_symlink_becomes_a_type_map(tree: ImageServeTree) -> None:
    manifest = _put(tree, "foo/bar", "old", _image("legacy"))
    manifests = tree.root / "v2/foo/bar/manifests"
    for name in ("old.type-map", "old.ref"):
        (manifests / name).unlink()
    (manifests / "latest").symlink_to(manifests / manifest.digest)
    with tree.lock.held():
        tree.write_tags_list("foo/bar")
    assert not (manifests / "latest").is_symlink()
    assert (manifests / "latest.type-map").read_text() == (
        f"URI: latest\n\nContent-Type: {mediatypes.DOCKER_MANIFEST}\nURI: {manifest.digest}/index.json\n\n"
    )
    assert tree.list_tags("foo/bar") == ["latest"]


def test_garbage_collection_removes_orphans_and_dead_temporaries(tree: ImageServeTree) -> None:
    _put(tree, "t/a", "latest", _image("a"))
    orphan = tree.layout.pool / ("f" * 64)
    orphan.write_bytes(b"left by a killed run")
    dead = tree.layout.downloads / ".tmp-999999999-abc"
    dead.write_bytes(b"partial")
    stray = tree.root / "v2/t/a/manifests/.tmp-999999999-def"
    stray.mkdir()
    report = collect_garbage(tree)
    assert (report.pool_blobs_removed, report.temporaries_removed) == (1, 2)
    assert not orphan.exists() and not dead.exists() and not stray.exists()
    assert verify_tree(tree.root) == []


def test_list_and_show(tree: ImageServeTree) -> None:
    image = _image("nova-api", oci=True)
    manifest = _put(tree, "t/nova-api", "latest", image)
    tree.put_manifest("t/nova-api", "also", manifest)
    (stored,) = [i for i in list_images(tree) if i.tag == "latest"]
    assert stored.digest == manifest.digest
    assert stored.size == len(image.manifest) + sum(len(b.data) for b in image.blobs)
    details = show_image(tree, "t/nova-api", "latest", "amd64")
    assert details.labels == {"name": "nova-api"}
    assert details.tags == ("also", "latest")
    assert details.media_type == mediatypes.OCI_MANIFEST
    assert show_image(tree, "t/nova-api", manifest.digest, "amd64").digest == manifest.digest


def _memory_source_with_index() -> tuple[MemoryStore, GeneratedIndex]:
    source = MemoryStore("memory")
    children = {arch: _image(f"multi-{arch}", oci=True, arch=arch) for arch in ("arm64", "amd64")}
    for image in children.values():
        source.add_image("t/multi", None, image)
    index = GeneratedIndex(children)
    source.add_manifest("t/multi", "latest", Manifest.parse(index.raw, None, "t/multi"))
    return source, index


def test_engine_copies_a_whole_index_and_the_type_map_offers_the_amd64_child(tree: ImageServeTree) -> None:
    source, index = _memory_source_with_index()
    job = CopyJob(source, "t/multi", "latest", tree, "t/multi", "latest", all_architectures=True)
    (result,) = copy_images([job]).images
    assert result.outcome is Outcome.COPIED, result.error
    assert tree.tag_variants("t/multi", "latest") == {
        mediatypes.OCI_INDEX: index.digest,
        mediatypes.OCI_MANIFEST: index.children["amd64"].digest,
    }
    assert tree.manifest_digest("t/multi", "latest") == index.digest
    assert show_image(tree, "t/multi", "latest", "amd64").labels == {"name": "multi-amd64"}
    assert verify_tree(tree.root) == []
    (again,) = copy_images([job]).images
    assert again.outcome is Outcome.SKIPPED


def test_tree_is_a_source_too(tmp_path: Path, tree: ImageServeTree) -> None:
    source, index = _memory_source_with_index()
    copy_images([CopyJob(source, "t/multi", "latest", tree, "t/multi", "latest", all_architectures=True)])
    other = ImageServeTree(tmp_path / "other")
    job = CopyJob(tree, "t/multi", "latest", other, "copy/multi", "v1", all_architectures=True)
    (result,) = copy_images([job]).images
    assert result.outcome is Outcome.COPIED, result.error
    assert other.manifest_digest("copy/multi", "v1") == index.digest
    assert verify_tree(other.root) == []


def _nested_index_source() -> tuple[MemoryStore, Manifest, GeneratedIndex]:
    """An OCI index whose first entry is another index (OCI allows it), and a plain image."""
    source, inner = _memory_source_with_index()
    debug = _image("multi-debug", oci=True)
    source.add_image("t/multi", None, debug)
    entries = [
        {"mediaType": mediatypes.OCI_INDEX, "digest": inner.digest, "size": len(inner.raw)},
        {"mediaType": mediatypes.OCI_MANIFEST, "digest": debug.digest, "size": len(debug.manifest)},
    ]
    raw = json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": entries}).encode()
    outer = Manifest.parse(raw, None, "t/multi")
    source.add_manifest("t/multi", "nested", outer)
    return source, outer, inner


@pytest.mark.integration
def test_an_index_of_indexes_goes_into_the_tree_and_on_to_a_registry(
    plain_registry: RunningRegistry, tree: ImageServeTree
) -> None:
    source, outer, inner = _nested_index_source()
    job = CopyJob(source, "t/multi", "nested", tree, "t/multi", "nested", all_architectures=True)
    (result,) = copy_images([job]).images
    assert result.outcome is Outcome.COPIED, result.error
    assert tree.manifest_digest("t/multi", "nested") == outer.digest
    for child in (inner.digest, *(image.digest for image in inner.children.values())):
        assert tree.manifest_file("t/multi", child) is not None
    assert verify_tree(tree.root) == []

    with RegistrySession() as session:
        registry = session.client(plain_registry.host)
        onward = CopyJob(
            tree, "t/multi", "nested", registry, "imageserve/nested", "v1", all_architectures=True
        )
        (pushed,) = copy_images([onward]).images
    assert pushed.outcome is Outcome.COPIED, pushed.error
    assert skopeo_raw_manifest(plain_registry, "imageserve/nested", "v1") == outer.raw


@pytest.mark.integration
def test_engine_copies_from_a_registry_into_the_tree_storing_shared_blobs_once(
    plain_registry: RunningRegistry, tree: ImageServeTree
) -> None:
    images = {name: _image(name, oci=True) for name in ("tree-nova", "tree-glance")}
    for name, image in images.items():
        seed_image(plain_registry, f"imageserve/{name}", "current", image)
    with RegistrySession() as session:
        client = session.client(plain_registry.host)
        jobs = [
            CopyJob(client, f"imageserve/{name}", "current", tree, f"tripleo/{name}", "current")
            for name in images
        ]
        report = copy_images(jobs)
        assert [r.outcome for r in report.images] == [Outcome.COPIED, Outcome.COPIED], report
        assert [r.outcome for r in copy_images(jobs).images] == [Outcome.SKIPPED, Outcome.SKIPPED]
    for name, image in images.items():
        assert tree.manifest_digest(f"tripleo/{name}", "current") == image.digest
    shared = [tree.root / f"v2/tripleo/{name}/blobs" / SHARED.digest for name in images]
    assert shared[0].samefile(shared[1])
    assert verify_tree(tree.root) == []


def test_indexes_left_behind_by_a_killed_writer_are_brought_up_to_date_by_the_next(
    tree: ImageServeTree,
) -> None:
    _put(tree, "t/nova-api", "latest", _image("nova-api"))
    _put(tree, "t/keystone", "latest", _image("keystone"))
    # What a writer killed between placing a tag and rewriting the indexes leaves behind.
    (tree.root / "v2/_catalog").write_text('{"repositories": ["t/nova-api"]}')
    (tree.root / "v2/t/keystone/tags/list").write_text('{"name": "t/keystone", "tags": []}')
    staging = tree.root / "v2/t/keystone/manifests/.tmp-999999999-x"  # no such process runs
    staging.mkdir()
    assert verify_tree(tree.root) != [] and verify_tree(tree.root, indexes=False) == []

    ImageServeTree(tree.root).ensure_ready()

    assert verify_tree(tree.root) == [] and not staging.exists()
    assert json.loads((tree.root / "v2/_catalog").read_text()) == {
        "repositories": ["t/keystone", "t/nova-api"]
    }
