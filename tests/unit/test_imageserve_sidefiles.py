"""Type maps, .htaccess, Accept negotiation and Range parsing of the image-serve tree and server."""

from __future__ import annotations

from pathlib import Path

import pytest

from imageprep.imageserve.negotiation import choose_variant, parse_accept
from imageprep.imageserve.ranges import UNSATISFIABLE, ByteRange, parse_range
from imageprep.imageserve.sidefiles import (
    htaccess_media_type,
    parse_type_map,
    render_htaccess,
    render_type_map,
)
from imageprep.imageserve.webconfig import render_config
from imageprep.model import mediatypes
from imageprep.model.errors import ConfigurationError

V2 = mediatypes.DOCKER_MANIFEST
LIST = mediatypes.DOCKER_MANIFEST_LIST


def test_vector_58_type_map_text_and_parse() -> None:
    text = render_type_map("latest", [(V2, "sha256:1234abcd/index.json")])
    assert text == f"URI: latest\n\nContent-Type: {V2}\nURI: sha256:1234abcd/index.json\n\n"
    assert parse_type_map(text) == {V2: "sha256:1234abcd/index.json"}


def test_vector_58_two_variant_type_map_parses_to_both_tagged_first() -> None:
    text = render_type_map("latest", [(LIST, "sha256:11/index.json"), (V2, "sha256:22/index.json")])
    assert list(parse_type_map(text).items()) == [
        (LIST, "sha256:11/index.json"),
        (V2, "sha256:22/index.json"),
    ]
    # The child variant ranks below the list for clients that accept both (Apache's qs).
    assert f"Content-Type: {V2}; qs=0.5" in text


def test_type_map_parsing_tolerates_upstream_spacing_and_skips_incomplete_records() -> None:
    text = f"URI: latest\n\nContent-Type:  {V2}\nURI:sha256:9/index.json\n\nURI: dangling\n"
    assert parse_type_map(text) == {V2: "sha256:9/index.json"}


def test_vector_57_htaccess_lines() -> None:
    text = render_htaccess(V2, "sha256:1234")
    assert text.splitlines() == [
        f'Header set Content-Type "{V2}"',
        'Header set Docker-Content-Digest "sha256:1234"',
        'Header set ETag "sha256:1234"',
    ]
    assert htaccess_media_type(text) == V2


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ([], LIST),
        ([f"{LIST}, {V2}"], LIST),
        ([V2], V2),
        ([V2, LIST], LIST),  # several Accept header lines
        ([f"{LIST};q=0.1, {V2}"], V2),
        (["application/*"], LIST),
        (["*/*"], LIST),
        (["text/plain"], LIST),  # nothing acceptable: the tagged manifest, as registries answer
        ([f"{LIST};q=abc, {V2};q=0.4"], LIST),
    ],
)
def test_negotiation_prefers_the_tagged_manifest(accept: list[str], expected: str) -> None:
    assert choose_variant([LIST, V2], accept) == expected


def test_accept_parsing() -> None:
    assert parse_accept([f"{V2}; q=0.5 , */*;q=0"]) == {V2: 0.5, "*/*": 0.0}
    assert choose_variant([], [V2]) is None


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-4", 10, ByteRange(0, 4)),
        ("bytes=5-", 10, ByteRange(5, 9)),
        ("bytes=-3", 10, ByteRange(7, 9)),
        ("bytes=-30", 10, ByteRange(0, 9)),
        ("bytes=8-100", 10, ByteRange(8, 9)),
        ("bytes=10-", 10, UNSATISFIABLE),
        ("bytes=-0", 10, UNSATISFIABLE),
        ("bytes=0-", 0, UNSATISFIABLE),
        ("bytes=5-2", 10, None),
        ("bytes=0-1,3-4", 10, None),
        ("items=0-1", 10, None),
        ("bytes=-", 10, None),
    ],
)
def test_single_ranges(header: str | None, size: int, expected: object) -> None:
    assert parse_range(header, size) == expected


def test_content_range() -> None:
    assert ByteRange(2, 5).content_range(10) == "bytes 2-5/10"
    assert ByteRange(2, 5).length == 4


@pytest.mark.parametrize("kind", ["apache", "nginx"])
def test_printed_configs_name_root_and_address_and_refuse_writes(kind: str) -> None:
    text = render_config(kind, Path("/srv/image serve"), "::1", 8787, "imageprep serve")
    assert "/srv/image serve" in text
    assert "[::1]:8787" in text
    assert "GET|HEAD" in text
    for bad in ('/srv/"quoted', "/srv/$variable", "/srv/it's"):
        with pytest.raises(ConfigurationError, match="cannot be written into a web server configuration"):
            render_config(kind, Path(bad), "127.0.0.1", 8787, "x")
