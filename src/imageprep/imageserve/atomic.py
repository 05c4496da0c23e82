"""The tree's crash-safety: its lock, hard links, and clearing what killed writers left behind.

Files themselves are written by :mod:`imageprep.model.atomicfile` (a hidden ``.tmp-PID-`` name,
fsync, rename); a later writer of the tree removes the temporaries whose process is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

from imageprep.model.atomicfile import TEMP_PREFIX
from imageprep.model.errors import ImageServeError


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
