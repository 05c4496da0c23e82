"""Crash-safe files: written under a hidden temporary name, fsync'd, then renamed into place.

A reader (a web server, a containers tool reading a lookaside) only ever sees a final name after
the rename, so it gets a whole file or none. Temporary names start with ``.tmp-PID-`` in the
directory of the final name (a rename needs the same file system), say which process made them,
and are never served; whoever owns the directory removes those whose process is gone. The one
way imageprep writes a file others read while it runs.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

TEMP_PREFIX = ".tmp-"
FILE_MODE = 0o644
DIRECTORY_MODE = 0o755


def temporary_path(directory: Path) -> Path:
    """A fresh hidden name in ``directory`` that says which process made it."""
    return directory / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"


def fsync_directory(directory: Path) -> None:
    """Make a rename or link in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_directories(path: Path) -> None:
    """``mkdir -p`` with mode 0755 whatever the umask, so a web server's user can read the tree."""
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, DIRECTORY_MODE)
            os.chmod(directory, DIRECTORY_MODE)


def write_stream(path: Path, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to ``path`` (a new name), fsync'd, mode 0644; removed again if anything fails."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb", closefd=True) as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fchmod(handle.fileno(), FILE_MODE)
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise


def write_file(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (readers see the old or the new file, never a part)."""
    temporary = temporary_path(path.parent)
    write_stream(temporary, (data,))
    _replace_or_discard(temporary, path)
    fsync_directory(path.parent)


def replace_symlink(path: Path, target: str) -> None:
    """Point the symlink ``path`` at ``target`` atomically."""
    temporary = temporary_path(path.parent)
    os.symlink(target, temporary)
    _replace_or_discard(temporary, path)


def _replace_or_discard(temporary: Path, path: Path) -> None:
    """Rename ``temporary`` over ``path``; if that fails, remove ``temporary`` and re-raise."""
    try:
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
