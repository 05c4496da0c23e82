"""What a command loads: startup is paid on every run, so work nobody asked for stays unloaded."""

from __future__ import annotations

import subprocess
import sys

# Run in a fresh interpreter: which modules a command imports is a property of the process.
_PROBE = """
import io, sys
from contextlib import redirect_stdout
from imageprep.cli.app import main
with redirect_stdout(io.StringIO()):
    status = main(["prepare", "default"])
loaded = sorted(
    name for name in sys.modules
    if name.split(".")[0] == "rich" or name.startswith(("imageprep.cli.serve", "imageprep.imageserve.server"))
)
print(status, ",".join(loaded))
"""


def test_prepare_off_a_terminal_loads_no_progress_display_modification_or_server_code() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    status, _, loaded = done.stdout.strip().partition(" ")
    assert status == "0"
    assert loaded == ""


def test_every_listed_command_loads() -> None:
    from imageprep.cli.app import COMMANDS, LazyCommand

    for name, target in COMMANDS.items():
        command = LazyCommand(name, target).load()
        assert command.__name__ == target.rpartition(":")[2]
