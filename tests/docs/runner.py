"""Run one documentation example the way an operator would type it, and check what it printed."""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tests.docs.docexamples import Command, RunExample
from tests.docs.outputmatch import output_matches
from tests.docs.registries import substitute

LAUNCHER = Path(__file__).resolve().parent / "loopback_only.py"
PROGRAMS = frozenset({"imageprep", "python3", "cat", "ls", "buildah"})
COMMAND_TIMEOUT = 120
HELP_TIMEOUT = 60


class ExampleSkipped(Exception):
    """The example needs something this machine or this build does not have (the reason says what)."""


@dataclass(frozen=True)
class Finished:
    command: str
    exit_code: int
    output: str


def imageprep_argv(args: list[str]) -> list[str]:
    """``imageprep ARGS`` through the loopback-only launcher, with this interpreter."""
    return [sys.executable, str(LAUNCHER), *args]


@functools.cache
def _help_text(subcommand: str) -> tuple[int, str]:
    done = subprocess.run(
        imageprep_argv([*subcommand.split(), "--help"]),
        capture_output=True,
        text=True,
        timeout=HELP_TIMEOUT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"},
        check=False,
    )
    return done.returncode, done.stdout


def check_requirements(example: RunExample) -> None:
    """Skip (with the reason) when a command or option the example needs does not exist yet."""
    for tool in example.tools:
        if shutil.which(tool) is None:
            raise ExampleSkipped(f"{example.where}: needs {tool}, which is not installed")
    for requirement in example.requires:
        words = requirement.split()
        subcommand = " ".join(word for word in words if not word.startswith("-"))
        code, text = _help_text(subcommand)
        if code != 0:
            raise ExampleSkipped(f"{example.where}: `imageprep {subcommand}` does not exist yet")
        for option in (word for word in words if word.startswith("-")):
            if option not in text:
                raise ExampleSkipped(f"{example.where}: `imageprep {subcommand}` has no {option} option yet")


def write_files(example: RunExample, directory: Path, values: dict[str, str]) -> None:
    for name, text in example.files.items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise AssertionError(f"{example.where}: example file {name!r} must be a relative path")
        path = directory.joinpath(*relative.parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(substitute(text, values), encoding="utf-8")


def split_command(command: str, where: str) -> tuple[dict[str, str], list[str]]:
    """Leading ``NAME=value`` assignments, then the program and its arguments."""
    words = shlex.split(command)
    assignments: dict[str, str] = {}
    while words and "=" in words[0] and words[0].split("=", 1)[0].isidentifier():
        name, _, value = words.pop(0).partition("=")
        assignments[name] = value
    if not words or words[0] not in PROGRAMS:
        raise AssertionError(f"{where}: examples run only {', '.join(sorted(PROGRAMS))}, not {command!r}")
    return assignments, words


def run_command(
    command: Command, where: str, values: dict[str, str], cwd: Path, base_env: dict[str, str]
) -> Finished:
    text = substitute(command.text, values)
    assignments, words = split_command(text, where)
    if words[0] == "imageprep":
        argv = imageprep_argv(words[1:])
    elif words[0] == "python3":  # a library example: this interpreter, the same guard
        argv = imageprep_argv(["--script", *words[1:]])
    else:
        argv = words
    done = subprocess.run(
        argv,
        cwd=cwd,
        env={**base_env, **assignments},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    return Finished(text, done.returncode, done.stdout)


def base_environment(home: Path, storage_conf: Path) -> dict[str, str]:
    """A small, fixed environment: nothing of the caller's auth files, CA settings or image roots."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "PYTHONUNBUFFERED": "1",  # stdout and stderr interleave as on a terminal
        "COLUMNS": "200",
        "CONTAINERS_STORAGE_CONF": str(storage_conf),
    }


def _shorten(output: str, keep: int = 40) -> str:
    lines = output.splitlines()
    if len(lines) <= 2 * keep:
        return output
    return "\n".join([*lines[:keep], f"[... {len(lines) - 2 * keep} lines ...]", *lines[-keep:]])


def describe_failure(
    example: RunExample, command: Command, finished: Finished, problem: str, values: dict[str, str]
) -> str:
    expected = "\n".join(substitute(line, values) for line in command.expected)
    return (
        f"{example.where}: {problem}\n$ {finished.command}\n--- the docs show:\n{expected}\n"
        f"--- it printed (exit {finished.exit_code}):\n{_shorten(finished.output)}"
    )


def run_example(
    example: RunExample, workdir: Path, values: dict[str, str], base_env: dict[str, str]
) -> list[Finished]:
    """Run every command of ``example`` in ``workdir``; raise AssertionError on the first mismatch."""
    results = []
    last = len(example.commands) - 1
    for index, command in enumerate(example.commands):
        finished = run_command(command, example.where, values, workdir, base_env)
        results.append(finished)
        wanted = example.exit_code if index == last else 0
        if finished.exit_code != wanted:
            raise AssertionError(
                describe_failure(
                    example, command, finished, f"exit code {finished.exit_code}, not {wanted}", values
                )
            )
        expected = [substitute(line, values) for line in command.expected]
        if not output_matches(expected, finished.output):
            raise AssertionError(describe_failure(example, command, finished, "output differs", values))
    return results
