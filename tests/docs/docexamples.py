"""Find the executable examples of the operator documentation (docs/*.md).

The convention (explained to readers at the top of docs/index.md): every fenced code block is
preceded, on its last non-blank line before the fence, by a marker comment that says what the
harness does with it:

- ``<!-- example: file NAME -->``: the block's text is a file; every later ``run`` block of the same
  page finds it as NAME in its working directory (a later ``file`` block of the same NAME replaces
  it for the blocks after it).
- ``<!-- example: run [exit=N] [requires="CMD [--OPTION]; ..."] [tools=a,b] [setup=rpms:DIR] -->``:
  a ``console`` block of ``$ command`` lines, each followed by the output it must print.
- ``<!-- example: not-run id=NAME reason="..." -->``: shown but not executed; only the ids on the
  allow-list of tests/docs/test_examples.py may use it.

Parsing is pure (no I/O besides reading the page) so that it can be tested on strings.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

MARKER = re.compile(r"^\s*<!--\s*example:\s*(?P<body>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)[^`]*$")
KINDS = {
    "file": frozenset(),
    "run": frozenset({"exit", "requires", "tools", "setup"}),
    "not-run": frozenset({"id", "reason"}),
}
SETUPS = ("rpms",)


class DocFormatError(ValueError):
    """A page breaks the example convention; the message names the page and line."""


@dataclass(frozen=True)
class Marker:
    kind: str
    name: str | None
    attributes: dict[str, str]


@dataclass(frozen=True)
class Block:
    """One fenced code block with the marker before it (if any)."""

    page: Path
    line: int  # 1-based line of the opening fence
    info: str
    text: str
    marker: Marker | None

    @property
    def where(self) -> str:
        return f"{self.page.name}:{self.line}"


@dataclass(frozen=True)
class Command:
    """One ``$ ...`` line (continuations joined) and the output lines shown after it."""

    text: str
    expected: tuple[str, ...]


@dataclass(frozen=True)
class RunExample:
    """A ``run`` block with everything it needs: the page's files declared before it."""

    block: Block
    commands: tuple[Command, ...]
    files: dict[str, str] = field(default_factory=dict)
    exit_code: int = 0
    requires: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    setup: tuple[tuple[str, str], ...] = ()

    @property
    def where(self) -> str:
        return self.block.where

    @property
    def all_text(self) -> str:
        """Everything the example runs or reads (to see which placeholders it uses)."""
        return "\n".join([*(c.text for c in self.commands), *self.files.values()])


def parse_marker(body: str, where: str) -> Marker:
    try:
        words = shlex.split(body)
    except ValueError as exc:
        raise DocFormatError(f"{where}: cannot read the example marker: {exc}") from None
    if not words or words[0] not in KINDS:
        raise DocFormatError(f"{where}: example marker kind must be one of {', '.join(KINDS)}: {body!r}")
    kind, rest = words[0], words[1:]
    name = None
    attributes: dict[str, str] = {}
    for word in rest:
        key, equals, value = word.partition("=")
        if not equals:
            if kind != "file" or name is not None:
                raise DocFormatError(f"{where}: unexpected word {word!r} in the example marker")
            name = word
            continue
        if key not in KINDS[kind]:
            raise DocFormatError(f"{where}: `{kind}` markers take no {key!r} attribute")
        attributes[key] = value
    if kind == "file" and not name:
        raise DocFormatError(f"{where}: a `file` marker needs the file name")
    if kind == "not-run" and not (attributes.get("id") and attributes.get("reason")):
        raise DocFormatError(f"{where}: a `not-run` marker needs id=... and reason=...")
    return Marker(kind, name, attributes)


def read_blocks(page: Path, text: str) -> list[Block]:
    """Every fenced block of ``text`` with its marker."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence = opening["fence"]
        end = index + 1
        while end < len(lines) and not re.match(rf"^ {{0,3}}{fence[0]}{{{len(fence)},}}\s*$", lines[end]):
            end += 1
        if end == len(lines):
            raise DocFormatError(f"{page.name}:{index + 1}: code block is never closed")
        before = index - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        found = MARKER.match(lines[before]) if before >= 0 else None
        where = f"{page.name}:{index + 1}"
        marker = parse_marker(found["body"], where) if found else None
        body = "\n".join(lines[index + 1 : end])
        blocks.append(Block(page, index + 1, opening["info"], body + "\n" if body else "", marker))
        index = end + 1
    return blocks


def parse_console(block: Block) -> tuple[Command, ...]:
    """``$ command`` lines (a trailing `` \\`` continues on the next line) and their output."""
    commands: list[Command] = []
    lines = block.text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.startswith("$ "):
            raise DocFormatError(f"{block.where}: console blocks start with `$ command`, not {line!r}")
        parts = [line[2:]]
        while parts[-1].endswith("\\") and index + 1 < len(lines):
            parts[-1] = parts[-1][:-1].rstrip()
            index += 1
            parts.append(lines[index].strip())
        index += 1
        expected: list[str] = []
        while index < len(lines) and not lines[index].startswith("$ "):
            expected.append(lines[index])
            index += 1
        commands.append(Command(" ".join(parts).strip(), tuple(expected)))
    if not commands:
        raise DocFormatError(f"{block.where}: a run block needs at least one `$ command`")
    return tuple(commands)


def _split(value: str | None, separator: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in (value or "").split(separator) if item.strip())


def run_example(block: Block, files: dict[str, str]) -> RunExample:
    marker = block.marker
    assert marker is not None and marker.kind == "run"
    if block.info != "console":
        raise DocFormatError(f"{block.where}: run blocks are ```console blocks, not {block.info!r}")
    setup = []
    for item in _split(marker.attributes.get("setup"), ","):
        what, _, argument = item.partition(":")
        if what not in SETUPS or not argument:
            raise DocFormatError(f"{block.where}: unknown setup {item!r} (known: rpms:DIR)")
        setup.append((what, argument))
    exit_text = marker.attributes.get("exit", "0")
    if not exit_text.isdigit():
        raise DocFormatError(f"{block.where}: exit= needs a number, not {exit_text!r}")
    return RunExample(
        block=block,
        commands=parse_console(block),
        files=dict(files),
        exit_code=int(exit_text),
        requires=_split(marker.attributes.get("requires"), ";"),
        tools=_split(marker.attributes.get("tools"), ","),
        setup=tuple(setup),
    )


@dataclass
class Page:
    """A documentation page: its blocks, its run examples and its blocks that run nothing."""

    path: Path
    blocks: list[Block]
    examples: list[RunExample]
    not_run: list[Block]
    unmarked: list[Block]


def read_page(path: Path, text: str | None = None) -> Page:
    blocks = read_blocks(path, path.read_text(encoding="utf-8") if text is None else text)
    files: dict[str, str] = {}
    examples: list[RunExample] = []
    not_run: list[Block] = []
    unmarked: list[Block] = []
    for block in blocks:
        if block.marker is None:
            unmarked.append(block)
        elif block.marker.kind == "file":
            assert block.marker.name is not None
            files[block.marker.name] = block.text
        elif block.marker.kind == "run":
            examples.append(run_example(block, files))
        else:
            not_run.append(block)
    return Page(path, blocks, examples, not_run, unmarked)
