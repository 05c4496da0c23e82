"""``imageprep list``, ``show`` and ``delete`` on a real image-serve tree and a real registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from imageprep.imageserve import ImageServeTree
from imageprep.transfer import CopyJob, copy_images
from tests.e2e.conftest import Run
from tests.support.imagegen import make_image, make_layer
from tests.support.imageserve_check import verify_tree
from tests.support.memory_store import MemoryStore
from tests.support.registry_server import RunningRegistry, plain_registry_server, registry_available
from tests.support.seeding import seed_image

BASE = make_layer({"usr/share/base": b"shared base layer " * 64}, oci=True)
IMAGES = {
    "tripleomaster/centos-binary-nova-api": make_image(
        {"rdo_version": "abc123", "name": "nova-api"},
        [BASE, make_layer({"etc/nova": b"nova"}, oci=True)],
        oci=True,
    ),
    "tripleomaster/centos-binary-keystone": make_image(
        {"rdo_version": "abc123", "name": "keystone"},
        [BASE, make_layer({"etc/keystone": b"keystone"}, oci=True)],
        oci=True,
    ),
}
TAG = "current-tripleo"


@pytest.fixture
def tree_root(tmp_path: Path) -> Path:
    """An image-serve tree holding both images, written by the copy engine."""
    source = MemoryStore("src.example:5000")
    for repository, image in IMAGES.items():
        source.add_image(repository, TAG, image)
    root = tmp_path / "image-serve"
    tree = ImageServeTree(root)
    report = copy_images([CopyJob(source, repo, TAG, tree, repo, TAG) for repo in IMAGES])
    report.raise_for_failures()
    return root


def test_list_shows_every_tag_of_the_tree(imageprep: Run, tree_root: Path) -> None:
    done = imageprep("list", "--image-serve-root", str(tree_root), "-f", "json", check=True)
    rows = json.loads(done.stdout)
    names = sorted(row["Image Name"].split("/", 1)[1] for row in rows)
    assert names == sorted(f"{repo}:{TAG}" for repo in IMAGES)
    by_name = {row["Image Name"].split("/", 1)[1]: row for row in rows}
    nova = IMAGES["tripleomaster/centos-binary-nova-api"]
    assert by_name[f"tripleomaster/centos-binary-nova-api:{TAG}"]["Digest"] == nova.digest


def test_list_value_format_prints_one_name_per_line(imageprep: Run, tree_root: Path) -> None:
    done = imageprep(
        "list", "--image-serve-root", str(tree_root), "-f", "value", "-c", "Image Name", check=True
    )
    assert len(done.stdout.splitlines()) == 2


def test_show_gives_digest_tags_size_and_labels(imageprep: Run, tree_root: Path) -> None:
    image = IMAGES["tripleomaster/centos-binary-nova-api"]
    done = imageprep(
        "show", f"tripleomaster/centos-binary-nova-api:{TAG}", "--image-serve-root", str(tree_root),
        "-f", "json", check=True,
    )  # fmt: skip
    shown = json.loads(done.stdout)
    assert shown["Digest"] == image.digest
    assert shown["Tags"] == TAG
    assert shown["Labels"] == {"rdo_version": "abc123", "name": "nova-api"}
    assert shown["Size"] == len(image.manifest) + sum(len(blob.data) for blob in image.blobs)
    table = imageprep(
        "show", f"tripleomaster/centos-binary-nova-api:{TAG}", "--image-serve-root", str(tree_root)
    )
    assert "rdo_version='abc123'" in table.stdout


def test_show_of_a_missing_image_is_one_error_line(imageprep: Run, tree_root: Path) -> None:
    done = imageprep("show", "tripleomaster/nothing:here", "--image-serve-root", str(tree_root))
    assert done.returncode == 6  # the local registry's error, like every other one about the tree
    first = done.stderr.splitlines()[0]
    assert first.startswith("error: ") and "Traceback" not in done.stderr
    assert first.endswith(
        f"/tripleomaster/nothing:here is not in the local registry (image-serve tree {tree_root})"
    )


def test_delete_removes_the_tag_and_only_blobs_no_other_image_uses(imageprep: Run, tree_root: Path) -> None:
    done = imageprep(
        "delete", f"tripleomaster/centos-binary-nova-api:{TAG}", "-y", "--image-serve-root", str(tree_root)
    )
    assert done.returncode == 0, done.stderr
    assert "deleted" in done.stdout and "repository removed" in done.stdout
    # config, own layer and the base layer keystone shares: two freed, the base kept
    assert "1 manifest(s), 2 blob(s) and" in done.stdout and "1 blob(s) kept for other images" in done.stdout
    left = json.loads(
        imageprep("list", "--image-serve-root", str(tree_root), "-f", "json", check=True).stdout
    )
    assert [row["Image Name"].split("/", 1)[1] for row in left] == [
        f"tripleomaster/centos-binary-keystone:{TAG}"
    ]
    assert verify_tree(tree_root) == []  # the shared base layer is still there for keystone
    keystone = imageprep(
        "show",
        f"tripleomaster/centos-binary-keystone:{TAG}",
        "--image-serve-root",
        str(tree_root),
        "-f",
        "json",
    )
    assert keystone.returncode == 0, keystone.stderr


def test_delete_without_yes_off_a_terminal_refuses(imageprep: Run, tree_root: Path) -> None:
    done = imageprep(
        "delete", f"tripleomaster/centos-binary-nova-api:{TAG}", "--image-serve-root", str(tree_root)
    )
    assert done.returncode == 2 and "--yes" in done.stderr
    assert len(json.loads(imageprep("list", "--image-serve-root", str(tree_root), "-f", "json").stdout)) == 2


def test_commands_without_a_tree_say_so(imageprep: Run, tmp_path: Path) -> None:
    done = imageprep("list", "--image-serve-root", str(tmp_path / "missing"))
    assert done.returncode == 6 and "no image-serve tree" in done.stderr


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    if not registry_available():
        pytest.skip("needs docker-registry and skopeo")
    with plain_registry_server(tmp_path / "registry") as running:
        for repository, image in IMAGES.items():
            seed_image(running, repository, TAG, image)
        yield running


def test_list_and_show_read_a_registry_given_by_url(imageprep: Run, registry: RunningRegistry) -> None:
    rows = json.loads(imageprep("list", "--registry-url", registry.host, "-f", "json", check=True).stdout)
    assert sorted(row["Image Name"] for row in rows) == sorted(f"{registry.host}/{r}:{TAG}" for r in IMAGES)
    shown = imageprep(
        "show", f"{registry.host}/tripleomaster/centos-binary-keystone:{TAG}", "-f", "json", check=True
    )
    assert json.loads(shown.stdout)["Digest"] == IMAGES["tripleomaster/centos-binary-keystone"].digest


def test_delete_with_a_registry_url_deletes_through_the_distribution_api(
    imageprep: Run, registry: RunningRegistry
) -> None:
    name = f"{registry.host}/tripleomaster/centos-binary-keystone:{TAG}"
    done = imageprep(
        "delete", "tripleomaster/centos-binary-keystone:" + TAG, "--registry-url", registry.host, "-y"
    )
    assert done.returncode == 0, done.stderr
    assert f"deleted {name}: manifest {IMAGES['tripleomaster/centos-binary-keystone'].digest}" in done.stdout
    gone = imageprep("show", name)
    assert gone.returncode == 4 and "not found" in gone.stderr
    kept = imageprep("show", f"{registry.host}/tripleomaster/centos-binary-nova-api:{TAG}")
    assert kept.returncode == 0, kept.stderr


def test_delete_from_a_registry_that_refuses_deleting_says_so(imageprep: Run, tmp_path: Path) -> None:
    if not registry_available():
        pytest.skip("needs docker-registry and skopeo")
    with plain_registry_server(tmp_path / "read-only", deletable=False) as running:
        seed_image(
            running,
            "tripleomaster/centos-binary-keystone",
            TAG,
            IMAGES["tripleomaster/centos-binary-keystone"],
        )
        done = imageprep("delete", f"{running.host}/tripleomaster/centos-binary-keystone:{TAG}", "-y")
        assert done.returncode == 4
        assert f"registry {running.host} does not allow deleting images" in done.stderr
        assert "storage.delete.enabled" in done.stderr
        still = imageprep("show", f"{running.host}/tripleomaster/centos-binary-keystone:{TAG}")
        assert still.returncode == 0, still.stderr


def test_delete_of_a_missing_tag_on_a_registry_is_not_found(
    imageprep: Run, registry: RunningRegistry
) -> None:
    done = imageprep("delete", f"{registry.host}/tripleomaster/centos-binary-keystone:nope", "-y")
    assert done.returncode == 4 and "does not exist" in done.stderr
