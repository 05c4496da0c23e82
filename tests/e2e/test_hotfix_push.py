"""``imageprep hotfix`` then ``imageprep push --local``, as the operator documentation shows them.

Real buildah on a private vfs storage (found by the CLI through ``CONTAINERS_STORAGE_CONF``), a
real RPM made with rpmbuild, a real docker-registry on loopback; the pushed image is pulled back
with skopeo and its layers unpacked to check the RPM's file and the rpm database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from imageprep.imageserve import TreeReader
from tests.e2e.conftest import Run
from tests.support.buildimages import (
    ScratchStorage,
    buildah_available,
    make_base_image,
    make_rpm,
    make_storage,
    rpm_query,
    rpm_tools_available,
    skopeo_to_dir,
    unpack_dir_layout,
)
from tests.support.registry_server import RunningRegistry, plain_registry_server, registry_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (buildah_available() and rpm_tools_available() and registry_available()),
        reason="needs buildah, busybox-static, rpm, rpmbuild, docker-registry and skopeo",
    ),
]
IMAGE = "localhost/tripleomaster/centos-binary-nova-compute:current-tripleo"
OTHER = "localhost/tripleomaster/centos-binary-nova-api:current-tripleo"
PACKAGE = "imageprep-hotfix-test"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with plain_registry_server(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture
def storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ScratchStorage]:
    scratch = make_storage(tmp_path / "storage")
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(scratch.conf))
    make_base_image(scratch, IMAGE, labels={"name": "nova-compute"})
    make_base_image(scratch, OTHER)
    yield scratch
    scratch.cleanup()


@pytest.fixture
def rpms(tmp_path: Path) -> Path:
    directory = tmp_path / "nova-hotfix-pkgs"
    make_rpm(directory, PACKAGE)
    return directory


def test_hotfix_then_push_local_gives_an_image_with_the_package(
    imageprep: Run, storage: ScratchStorage, rpms: Path, registry: RunningRegistry, tmp_path: Path
) -> None:
    hotfix = imageprep("hotfix", "--image", IMAGE, "--rpms-path", str(rpms), "--tag", "myhotfix", check=True)

    hotfixed = f"{IMAGE}-myhotfix"
    assert hotfix.stdout.strip() == hotfixed
    assert "hotfixed 1 of 1 images" in hotfix.stderr
    assert hotfixed in storage.images()  # what `buildah images` shows
    assert storage.containers() == []

    push = imageprep("push", "--local", "--registry-url", registry.host, hotfixed, check=True)

    pushed = f"{registry.host}/tripleomaster/centos-binary-nova-compute:current-tripleo-myhotfix"
    assert push.stdout.startswith(f"{pushed} sha256:")
    layout = tmp_path / "pulled"
    skopeo_to_dir(pushed, layout)
    rootfs = tmp_path / "rootfs"
    config = unpack_dir_layout(layout, rootfs)
    assert (rootfs / "usr/share" / PACKAGE / "marker").read_text() == "hotfixed\n"
    query = rpm_query(rootfs, PACKAGE)
    assert query.returncode == 0, query.stderr
    assert query.stdout.startswith(f"{PACKAGE}-1.0-1")
    assert config["config"]["User"] == "nova"  # type: ignore[index]
    assert config["config"]["Labels"]["modified_append_tag"] == "-myhotfix"  # type: ignore[index]

    again = imageprep("push", "--local", "--registry-url", registry.host, hotfixed, check=True)
    assert "(already there)" in again.stdout


def test_push_with_containers_storage_prefix_and_append_tag(
    imageprep: Run, storage: ScratchStorage, registry: RunningRegistry, tmp_path: Path
) -> None:
    push = imageprep(
        "push",
        "--registry-url",
        f"docker://{registry.host}",
        "--append-tag=-v2",
        f"containers-storage:{OTHER}",
    )

    assert push.returncode == 0, push.stderr
    pushed = f"{registry.host}/tripleomaster/centos-binary-nova-api:current-tripleo-v2"
    assert push.stdout.startswith(pushed + " ")
    skopeo_to_dir(pushed, tmp_path / "pulled")


def test_hotfix_of_several_images_goes_on_after_a_failure(
    imageprep: Run, storage: ScratchStorage, rpms: Path, registry: RunningRegistry
) -> None:
    missing = f"{registry.host}/tripleomaster/not-there:1"  # neither local nor in its registry
    result = imageprep(
        "hotfix", "--image", IMAGE, "--image", missing, "--image", OTHER, "--rpms-path", str(rpms)
    )

    assert result.returncode == 7
    assert result.stdout.split() == [f"{IMAGE}-latest", f"{OTHER}-latest"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and missing in errors[0]
    assert "hotfixed 2 of 3 images" in result.stderr
    assert storage.containers() == []


@pytest.mark.parametrize(
    ("setup", "cause"),
    [
        (lambda d: d / "nowhere", "does not exist"),
        (lambda d: d, "holds no *.rpm files"),
        (lambda d: (d / "broken.rpm").write_bytes(b"<html>not found</html>") and d, "is not an RPM package"),
    ],
    ids=["missing", "empty", "not-an-rpm"],
)
def test_hotfix_with_a_bad_rpm_directory_is_one_error(  # type: ignore[no-untyped-def]
    imageprep: Run, storage: ScratchStorage, tmp_path: Path, setup, cause
) -> None:
    directory = tmp_path / "pkgs"
    directory.mkdir()
    result = imageprep("hotfix", "--image", IMAGE, "--rpms-path", str(setup(directory)))

    assert result.returncode == 7
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert lines[0].startswith(f"error: cannot hotfix {IMAGE}: ") and cause in lines[0]
    assert "Traceback" not in result.stderr
    assert storage.images() == sorted([IMAGE, OTHER]) or set(storage.images()) == {IMAGE, OTHER}


def test_hotfix_needs_image_and_rpms_path(imageprep: Run) -> None:
    result = imageprep("hotfix", "--image", IMAGE)
    assert result.returncode == 2
    assert "--rpms-path" in result.stderr


def test_push_of_a_local_image_that_is_not_there(
    imageprep: Run, storage: ScratchStorage, registry: RunningRegistry
) -> None:
    result = imageprep("push", "--local", "--registry-url", registry.host, "localhost/nothing/here:1")
    assert result.returncode == 7
    assert "error: localhost/nothing/here:1 is not in local container storage" in result.stderr


def test_push_local_without_registry_url_writes_the_local_image_serve_tree(
    imageprep: Run, storage: ScratchStorage, rpms: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "image-serve"
    monkeypatch.setenv("IMAGEPREP_IMAGE_SERVE_ROOT", str(root))
    imageprep("hotfix", "--image", IMAGE, "--rpms-path", str(rpms), check=True)

    dry = imageprep("push", "--local", "--dry-run", f"{IMAGE}-latest", check=True)
    assert f"(image-serve tree {root})" in dry.stdout
    assert not root.exists()
    result = imageprep("push", "--local", f"{IMAGE}-latest", check=True)

    reference, digest, _ = result.stdout.split(" ", 2)
    assert reference.endswith("/tripleomaster/centos-binary-nova-compute:current-tripleo-latest")
    tree = TreeReader(root)
    repository = "tripleomaster/centos-binary-nova-compute"
    assert tree.list_tags(repository) == ["current-tripleo-latest"]
    assert tree.manifest_digest(repository, "current-tripleo-latest") == digest
