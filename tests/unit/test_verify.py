"""The streaming digest check refuses bad blobs before a writer could commit them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from imageprep.model.errors import DigestMismatchError, NotFoundError, RegistryError
from imageprep.model.manifest import Descriptor, Platform, sha256_digest
from imageprep.model.platforms import host_architecture, select_child
from imageprep.model.verify import verified_chunks

DATA = bytes(range(256)) * 40


def descriptor(data: bytes = DATA, size: int | None = None) -> Descriptor:
    return Descriptor("application/octet-stream", sha256_digest(data), len(data) if size is None else size)


def chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def test_good_blob_passes_through_unchanged() -> None:
    seen: list[int] = []
    assert b"".join(verified_chunks(chunks(DATA), descriptor(), "img", seen.append)) == DATA
    assert sum(seen) == len(DATA)


def test_bad_digest_raises_before_the_last_chunk_is_handed_on() -> None:
    bad = DATA[:-1] + b"\x00"
    received = []
    with pytest.raises(DigestMismatchError, match="of img has digest"):
        for chunk in verified_chunks(chunks(bad), descriptor(), "img"):
            received.append(chunk)
    assert len(b"".join(received)) < len(DATA)


def test_stream_longer_than_the_descriptor_is_cut_off() -> None:
    with pytest.raises(DigestMismatchError, match="longer than"):
        list(verified_chunks(chunks(DATA + b"extra"), descriptor(), "img"))


def test_truncated_stream_is_refused() -> None:
    with pytest.raises(DigestMismatchError, match="ended after"):
        list(verified_chunks(chunks(DATA[:500]), descriptor(), "img"))


def test_empty_blob_is_verified() -> None:
    assert list(verified_chunks(iter([]), descriptor(b""), "img")) == []
    with pytest.raises(DigestMismatchError):
        list(verified_chunks(iter([]), descriptor(DATA, size=0), "img"))


def test_unknown_digest_algorithm_is_an_error() -> None:
    with pytest.raises(RegistryError, match="unsupported digest algorithm"):
        list(verified_chunks(chunks(DATA), Descriptor("x", "md5:abcd", len(DATA)), "img"))


@pytest.mark.parametrize(
    ("machine", "goarch"),
    [("x86_64", "amd64"), ("aarch64", "arm64"), ("ppc64le", "ppc64le"), ("s390x", "s390x")],
)
def test_host_machine_names_map_to_go_architectures(machine: str, goarch: str) -> None:
    assert host_architecture(machine) == goarch


def test_select_child_picks_the_linux_entry_for_the_architecture() -> None:
    children = (
        Descriptor("m", "sha256:" + "a" * 64, 1, Platform("windows", "amd64")),
        Descriptor("m", "sha256:" + "b" * 64, 1, Platform("linux", "amd64")),
    )
    assert select_child(children, "amd64", "img").digest == "sha256:" + "b" * 64
    with pytest.raises(NotFoundError, match="linux/arm64"):
        select_child(children, "arm64", "img")
