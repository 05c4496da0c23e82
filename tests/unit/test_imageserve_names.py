"""Names that become paths in the image-serve tree: the grammar is the path-safety rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imageprep.imageserve.api import MAX_PAGE, ApiError, paginate
from imageprep.imageserve.layout import TreeLayout
from imageprep.imageserve.names import check_digest, check_reference, check_repository, check_tag
from imageprep.imageserve.root import DEFAULT_ROOT, resolve_root
from imageprep.imageserve.server import parse_listen
from imageprep.model.errors import ConfigurationError, ImageServeError
from imageprep.model.reference import ImageReference

DIGEST = "sha256:" + "ab" * 32
HOSTILE_REPOSITORIES = [
    "",
    "..",
    "../etc",
    "t/../../etc",
    "/etc/passwd",
    "t//nova",
    "t/nova/",
    "t/.hidden",
    "t/nova\x00api",
    "T/Nova",
    "t/nova api",
    "a" * 256,
    "t/blobs",
    "t/manifests/x",
    "t/tags",
    "%2e%2e/etc",
]
HOSTILE_TAGS = [
    "",
    ".",
    "..",
    "../x",
    "a/b",
    "-x",
    ".hidden",
    "x" * 129,
    "t\x00",
    "tâg",
    "sha256:" + "0" * 64,
]
HOSTILE_DIGESTS = ["sha256:" + "0" * 63, "sha256:" + "G" * 64, "sha512:" + "0" * 128, "../sha256", ""]


@pytest.mark.parametrize("name", HOSTILE_REPOSITORIES)
def test_hostile_repository_names_are_refused_naming_the_value(name: str) -> None:
    with pytest.raises(ImageServeError) as caught:
        check_repository(name)
    assert repr(name[:80])[1:-1][:20] in str(caught.value)


@pytest.mark.parametrize("tag", HOSTILE_TAGS)
def test_hostile_tags_are_refused(tag: str) -> None:
    with pytest.raises(ImageServeError, match="invalid tag"):
        check_tag(tag)


@pytest.mark.parametrize("digest", HOSTILE_DIGESTS)
def test_only_sha256_digests_are_stored(digest: str) -> None:
    with pytest.raises(ImageServeError, match="invalid digest"):
        check_digest(digest)


def test_valid_names_pass_unchanged() -> None:
    assert check_repository("tripleomaster/centos-binary-nova-api") == "tripleomaster/centos-binary-nova-api"
    assert check_repository("a/b__c/d.e-f") == "a/b__c/d.e-f"
    assert check_tag("current-tripleo_1.0") == "current-tripleo_1.0"
    assert check_reference(DIGEST) == DIGEST
    assert check_reference("latest") == "latest"


def test_vector_55_repository_of_a_docker_reference_is_its_api_path() -> None:
    reference = ImageReference.parse("docker://docker.io/t/nova-api:latest")
    layout = TreeLayout(Path("/srv/tree"))
    assert (reference.repository, reference.tag) == ("t/nova-api", "latest")
    assert layout.repository(reference.repository) == Path("/srv/tree/v2/t/nova-api")
    assert ImageReference.parse("docker://docker.io/t/nova-api").tag is None


def test_layout_paths() -> None:
    layout = TreeLayout(Path("/srv/tree"))
    assert layout.blob("t/a", DIGEST) == Path(f"/srv/tree/v2/t/a/blobs/{DIGEST}")
    assert layout.manifest("t/a", DIGEST) == Path(f"/srv/tree/v2/t/a/manifests/{DIGEST}/index.json")
    assert layout.type_map("t/a", "latest") == Path("/srv/tree/v2/t/a/manifests/latest.type-map")
    assert layout.tags_list("t/a") == Path("/srv/tree/v2/t/a/tags/list")
    assert layout.pool_blob(DIGEST) == Path("/srv/tree/.imageprep/pool/sha256/" + "ab" * 32)


@given(st.text(max_size=300))
def test_any_accepted_repository_maps_inside_v2(name: str) -> None:
    layout = TreeLayout(Path("/srv/tree"))
    try:
        path = layout.repository(name)
    except ImageServeError:
        return
    assert path.is_relative_to(layout.v2)
    assert ".." not in path.parts
    assert not any(part.startswith(".") for part in path.relative_to(layout.v2).parts)


@given(st.text(max_size=200))
def test_any_accepted_tag_is_one_plain_file_name(tag: str) -> None:
    layout = TreeLayout(Path("/srv/tree"))
    try:
        path = layout.type_map("t/a", tag)
    except ImageServeError:
        return
    assert path.parent == layout.manifests("t/a")
    assert not path.name.startswith(".")


def test_root_option_wins_over_environment_over_default() -> None:
    environ = {"IMAGEPREP_IMAGE_SERVE_ROOT": "/env/tree"}
    assert resolve_root("/option/tree", environ) == Path("/option/tree")
    assert resolve_root(None, environ) == Path("/env/tree")
    assert resolve_root(None, {}) == DEFAULT_ROOT == Path("/var/lib/image-serve")
    assert resolve_root("relative", {}).is_absolute()
    with pytest.raises(ConfigurationError, match="IMAGEPREP_IMAGE_SERVE_ROOT"):
        resolve_root(None, {"IMAGEPREP_IMAGE_SERVE_ROOT": " "})


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:8787") == ("127.0.0.1", 8787)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for bad in ("8787", "host:", ":80", "::1:80", "host:99999", "host:x"):
        with pytest.raises(ValueError):
            parse_listen(bad)


def test_pagination_with_n_and_last() -> None:
    items = ["a", "b", "c", "d"]
    assert paginate(items, {}) == (items, None)
    assert paginate(items, {"n": ["2"]}) == (["a", "b"], "b")
    assert paginate(items, {"n": ["2"], "last": ["b"]}) == (["c", "d"], None)
    assert paginate(items, {"n": ["10"], "last": ["a"]}) == (["b", "c", "d"], None)
    assert paginate(items, {"n": ["0"]}) == ([], None)


def test_a_page_larger_than_the_server_gives_is_cut_with_a_next_link_and_a_bad_n_is_refused() -> None:
    items = [f"{number:06}" for number in range(MAX_PAGE + 5)]
    page, following = paginate(items, {"n": [str(MAX_PAGE * 3)]})
    assert len(page) == MAX_PAGE and following == page[-1]
    for bad in ("x", "-1", "1.5"):
        with pytest.raises(ApiError) as caught:
            paginate(items, {"n": [bad]})
        assert (caught.value.status, caught.value.code) == (400, "UNSUPPORTED")
