"""Every example of the operator documentation (docs/*.md) runs, and prints what the docs show.

The convention is in tests/docs/docexamples.py and, for readers, at the top of docs/index.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.docexamples import DocFormatError, Page, RunExample, read_page
from tests.docs.registries import PLACEHOLDER, DocRegistries
from tests.docs.runner import ExampleSkipped, base_environment, check_requirements, run_example, write_files
from tests.support.buildimages import make_rpm, make_storage, rpm_tools_available
from tests.support.registry_server import registry_available

DOCS = Path(__file__).resolve().parents[2] / "docs"

# Blocks that are shown but cannot run here, by (page, id). Each must exist (a stale entry fails).
NOT_RUN = {
    ("serving.md", "serve-foreground"): "imageprep serve runs until it is stopped",
    ("serving.md", "serve-tls-foreground"): "imageprep serve runs until it is stopped",
    ("serving.md", "apache-install"): "changes the system's Apache configuration (needs root)",
    ("signatures.md", "node-registries-d"): "configuration of the overcloud nodes",
}


def _pages() -> tuple[list[Page], list[str]]:
    pages, problems = [], []
    for path in sorted(DOCS.glob("*.md")):
        try:
            pages.append(read_page(path))
        except DocFormatError as exc:
            problems.append(str(exc))
    return pages, problems


PAGES, FORMAT_PROBLEMS = _pages()
EXAMPLES: list[RunExample] = [example for page in PAGES for example in page.examples]


def test_the_docs_exist_and_follow_the_example_convention() -> None:
    assert (DOCS / "index.md").is_file()
    assert FORMAT_PROBLEMS == []
    assert len(EXAMPLES) >= 20


def test_every_code_block_is_an_example_or_on_the_not_run_list() -> None:
    unmarked = [block.where for page in PAGES for block in page.unmarked]
    assert unmarked == [], "code blocks without an <!-- example: ... --> marker"
    shown = {
        (block.page.name, block.marker.attributes["id"])
        for page in PAGES
        for block in page.not_run
        if block.marker
    }
    assert shown == set(NOT_RUN), "not-run blocks must match the allow-list exactly"


def test_every_file_block_is_used_by_a_later_example() -> None:
    unused = []
    for page in PAGES:
        for block in page.blocks:
            if block.marker is None or block.marker.kind != "file":
                continue
            later = [
                e
                for e in page.examples
                if e.block.line > block.line and e.files.get(block.marker.name or "") == block.text
            ]
            if not later:
                unused.append(block.where)
    assert unused == [], "file blocks that no run block after them uses"


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.where for example in EXAMPLES])
def test_example(example: RunExample, doc_registries: DocRegistries, tmp_path: Path) -> None:
    try:
        check_requirements(example)
    except ExampleSkipped as exc:
        pytest.skip(str(exc))
    if PLACEHOLDER.search(example.all_text) and not registry_available():
        pytest.skip("needs docker-registry and skopeo (apt-get install docker-registry skopeo)")
    workdir = tmp_path / "work"
    workdir.mkdir()
    storage = make_storage(tmp_path / "storage")
    for kind, argument in example.setup:
        if kind == "rpms":
            if not rpm_tools_available():
                pytest.skip("needs rpm and rpmbuild")
            make_rpm(workdir / argument, "nova-hotfix")
    with doc_registries.values_for(example.all_text) as values:
        write_files(example, workdir, values)
        run_example(example, workdir, values, base_environment(workdir, storage.conf))
