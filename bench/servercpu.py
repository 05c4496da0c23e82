"""CPU time a server spends, found through the listening socket its processes share.

Every process of a server (Apache's children, nginx's workers, ``imageprep serve``'s workers)
holds the listening socket, so the processes are found by that socket's inode in ``/proc``
whatever their names or parents. CPU is user plus system time, including the time of children
already reaped (``cutime``/``cstime``), read before and after a measurement. Linux only.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_LISTEN = "0A"


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                if fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def server_pids(port: int) -> set[int]:
    """Every process holding the socket that listens on ``port``."""
    targets = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for descriptor in (entry / "fd").iterdir():
                if os.readlink(descriptor) in targets:
                    found.add(int(entry.name))
                    break
    return found


def cpu_seconds(pids: set[int]) -> float:
    """User + system seconds of ``pids`` and of their children already waited for."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(value) for value in fields[11:15])
    return total / _TICKS


class CpuMeter:
    """CPU seconds a server's processes spent between :meth:`start` and :meth:`stop`."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._pids: set[int] = set()
        self._before = 0.0

    def start(self) -> None:
        self._pids = server_pids(self.port)
        self._before = cpu_seconds(self._pids)

    def stop(self) -> float:
        # Processes started during the measurement had no time before it.
        pids = self._pids | server_pids(self.port)
        return cpu_seconds(pids) - self._before
