"""Crash-safe file operations: write to a hidden temporary name, fsync, rename; and the tree lock.

A reader (a web server) only ever sees a final name after rename, so it gets a whole file or none.
Temporary names start with ``.tmp-PID-`` in the directory of the final name (rename needs the same
file system) and are never served; a later writer removes those whose process is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from imageprep.imageserve.layout import TEMP_PREFIX
from imageprep.model.errors import ImageServeError

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


def link_into_place(source: Path, path: Path) -> bool:
    """Hard-link ``source`` as ``path`` unless ``path`` exists; True when this call created it."""
    try:
        os.link(source, path)
    except FileExistsError:
        return False
    return True


def remove_tree(path: Path) -> None:
    """Remove a directory tree or file if present."""
    if path.is_symlink() or path.is_file():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary whose writing process no longer runs."""
    if not name.startswith(TEMP_PREFIX):
        return False
    pid_text = name[len(TEMP_PREFIX) :].split("-", 1)[0]
    return pid_text.isdigit() and int(pid_text) != os.getpid() and not _pid_alive(int(pid_text))


def remove_stale_temporaries(directory: Path) -> int:
    """Remove what killed writers left in ``directory``; returns how many entries went."""
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if is_stale_temporary(entry.name):
            remove_tree(Path(entry.path))
            removed += 1
    return removed


class TreeLock:
    """An exclusive ``flock`` on the tree's lock file, shared by every thread and process writing.

    flock conflicts between separate opens even inside one process, so each holder opens the file
    itself; a thread already holding the lock may take it again (nesting is counted per thread).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the ``with`` block."""
        depth: int = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise ImageServeError(
                f"cannot open the image-serve lock file {self._path}: {exc.strerror}",
                hint="check that the image-serve root exists and is writable by this user",
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # retried on EINTR by Python itself
            self._local.depth = 1
            try:
                yield
            finally:
                self._local.depth = 0
        finally:
            os.close(fd)
