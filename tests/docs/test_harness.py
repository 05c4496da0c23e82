"""The example harness itself: marker parsing, console parsing, output matching, the network guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.docexamples import DocFormatError, read_page
from tests.docs.loopback_only import is_loopback
from tests.docs.outputmatch import output_matches
from tests.docs.registries import substitute
from tests.docs.runner import LAUNCHER
from tests.support.freshpython import run_python

PAGE = """# Title

<!-- example: file env.yaml -->
```yaml
a: REGISTRY/x
```

<!-- example: run exit=2 requires="list; prepare --image-serve-root" tools=buildah setup=rpms:pkgs -->
```console
$ imageprep prepare -e env.yaml \\
    --dry-run
error: bad
$ cat env.yaml
a: REGISTRY/x
```

<!-- example: not-run id=x reason="long running" -->
```console
$ imageprep serve
```

```text
unmarked
```
"""


def test_a_page_yields_files_runs_not_run_and_unmarked_blocks() -> None:
    page = read_page(Path("page.md"), PAGE)
    [example] = page.examples
    assert example.files == {"env.yaml": "a: REGISTRY/x\n"}
    assert [c.text for c in example.commands] == ["imageprep prepare -e env.yaml --dry-run", "cat env.yaml"]
    assert example.commands[0].expected == ("error: bad",)
    assert example.exit_code == 2
    assert example.requires == ("list", "prepare --image-serve-root")
    assert example.tools == ("buildah",)
    assert example.setup == (("rpms", "pkgs"),)
    assert [b.marker.attributes["id"] for b in page.not_run if b.marker] == ["x"]
    assert [b.where for b in page.unmarked] == ["page.md:22"]


@pytest.mark.parametrize(
    "text",
    [
        "<!-- example: launch -->\n```console\n$ x\n```\n",
        "<!-- example: run colour=red -->\n```console\n$ x\n```\n",
        "<!-- example: run -->\n```yaml\na: 1\n```\n",
        "<!-- example: run -->\n```console\nno dollar\n```\n",
        "<!-- example: file -->\n```yaml\na: 1\n```\n",
        "<!-- example: not-run id=x -->\n```text\nx\n```\n",
        "```console\n$ never closed\n",
    ],
    ids=["kind", "attribute", "not-console", "no-command", "file-name", "not-run-reason", "unclosed"],
)
def test_a_page_breaking_the_convention_is_an_error_naming_the_line(text: str) -> None:
    with pytest.raises(DocFormatError, match=r"page\.md:\d+"):
        read_page(Path("page.md"), text)


def test_output_must_match_whole_lines_in_order_without_ellipsis() -> None:
    assert output_matches(["a", "b"], "a\nb\n")
    assert not output_matches(["a"], "a\nb\n")
    assert not output_matches(["b"], "a\nb\n")
    assert not output_matches(["b", "a"], "a\nb\n")
    assert output_matches([], "")
    assert output_matches(["a  ", ""], "a\n")  # trailing spaces and a final blank line do not count


def test_ellipsis_lines_skip_lines_and_ellipsis_in_a_line_skips_text() -> None:
    output = "head\n# Generated on 2026-01-01\nx: 1\ny: 2\nz: 3\ntail\n"
    assert output_matches(["...", "y: 2", "..."], output)
    assert output_matches(["head", "# Generated on ...", "...", "z: 3", "tail"], output)
    assert output_matches(["...", "x: 1", "...", "z: 3", "..."], output)
    assert not output_matches(["...", "x: 1", "z: 3", "..."], output)  # not consecutive
    assert not output_matches(["...", "z: 3", "...", "x: 1", "..."], output)  # not in order
    assert not output_matches(["...", "tail", "head"], output)
    assert output_matches(["...", "x: ...", "y: 2", "..."], output)
    assert not output_matches(["...", "x: 2...", "..."], output)
    assert output_matches(["...", "a.b*c (d)", "..."], "a.b*c (d)\n")  # no regex characters leak


def test_placeholders_are_whole_words() -> None:
    values = {"REGISTRY": "127.0.0.1:5000", "DEST_REGISTRY": "127.0.0.1:6000"}
    text = "REGISTRY/x DEST_REGISTRY REGISTRY_AUTH_FILE AUTH_REGISTRY"
    assert substitute(text, values) == "127.0.0.1:5000/x 127.0.0.1:6000 REGISTRY_AUTH_FILE AUTH_REGISTRY"


def test_the_guard_knows_loopback_from_everything_else() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.3.4.5", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("192.168.24.1", "docker.io", "10.0.0.1", "::ffff:8.8.8.8", None))


def test_the_launched_imageprep_cannot_reach_beyond_loopback() -> None:
    """Refused inside the process, before any packet leaves (192.0.2.1 is a documentation address)."""
    code = (
        "import socket, sys; sys.argv = ['x']\n"
        f"sys.path.insert(0, {str(LAUNCHER.parent)!r})\n"
        "from loopback_only import install_guard; install_guard()\n"
        "for target in [('192.0.2.1', 80), ('docker.io', 443)]:\n"
        "    try:\n"
        "        socket.create_connection(target, timeout=1)\n"
        "    except OSError as exc:\n"
        "        print('refused', 'loopback only' in str(exc))\n"
    )
    assert run_python(code).split() == ["refused", "True", "refused", "True"]
