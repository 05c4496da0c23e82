"""The ``dir:`` layout store moves images through the copy engine both ways, digests unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from imageprep.model.blobs import StreamBody
from imageprep.model.errors import ModificationError, NotFoundError, TransientError
from imageprep.model.manifest import Descriptor
from imageprep.modify.dirstore import VERSION_TEXT, DirImageStore
from imageprep.transfer.engine import copy_images
from imageprep.transfer.jobs import CopyJob
from imageprep.transfer.report import Outcome
from imageprep.transfer.store import ImageStore
from tests.support.imagegen import make_image
from tests.support.memory_store import MemoryStore


def test_an_image_goes_into_a_dir_layout_and_back_byte_for_byte(tmp_path: Path) -> None:
    image = make_image({"name": "nova"})
    registry = MemoryStore("registry.example:5000")
    registry.add_image("t/nova-api", "latest", image)
    layout: ImageStore = DirImageStore(tmp_path / "image", "containers-storage:registry.example:5000")

    into = copy_images([CopyJob(registry, "t/nova-api", "latest", layout, "t/nova-api", "latest")])

    assert into.images[0].outcome is Outcome.COPIED
    directory = tmp_path / "image"
    assert (directory / "version").read_text() == VERSION_TEXT
    assert (directory / "manifest.json").read_bytes() == image.manifest
    for blob in image.blobs:
        assert (directory / blob.digest.split(":", 1)[1]).read_bytes() == blob.data
    assert not list(directory.glob(".partial-*"))

    back = MemoryStore("other:5000")
    out = copy_images([CopyJob(layout, "t/nova-api", "latest", back, "t/nova-api", "latest-hotfix")])

    assert out.images[0].outcome is Outcome.COPIED
    assert out.images[0].source == "containers-storage:registry.example:5000/t/nova-api:latest"
    assert back.get_manifest("t/nova-api", "latest-hotfix").raw == image.manifest


def test_an_empty_layout_has_nothing(tmp_path: Path) -> None:
    layout = DirImageStore(tmp_path / "none", "containers-storage:x")
    assert layout.manifest_digest("r", "latest") is None
    assert layout.list_tags("r") == []
    with pytest.raises(NotFoundError):
        layout.get_manifest("r", "latest")
    with pytest.raises(ModificationError, match="only sha256"):
        layout.has_blob("r", "sha512:" + "a" * 128)


def test_a_broken_stream_leaves_no_blob(tmp_path: Path) -> None:
    layout = DirImageStore(tmp_path / "image", "x")
    image = make_image()
    blob = image.layers[0]

    def chunks():  # type: ignore[no-untyped-def]
        yield blob.data[:10]
        raise TransientError("connection reset")

    with pytest.raises(TransientError, match="connection reset"):
        layout.write_blob("r", Descriptor(blob.media_type, blob.digest, len(blob.data)), StreamBody(chunks()))
    assert not layout.has_blob("r", blob.digest)
    assert [path.name for path in (tmp_path / "image").iterdir()] == ["version"]
