"""What a command loads: startup is paid on every run, so work nobody asked for stays unloaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.freshpython import run_python

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
    status, _, loaded = run_python(_PROBE).strip().partition(" ")
    assert status == "0"
    assert loaded == ""


def test_every_listed_command_loads() -> None:
    from imageprep.cli.app import COMMANDS, LazyCommand

    for name, target in COMMANDS.items():
        command = LazyCommand(name, target).load()
        assert command.__name__ == target.rpartition(":")[2]


_PREPARE_PROBE = """
import io, sys
from contextlib import redirect_stdout
from imageprep.cli.app import main
with redirect_stdout(io.StringIO()):
    status = main(["prepare", "-e", sys.argv[1], "--dry-run", "--offline"])
heavy = ("imageprep.modify", "imageprep.usecases.modifying", "imageprep.imageserve.tree", "rich")
print(status, ",".join(sorted(n for n in sys.modules if n.startswith(heavy))))
"""


def test_prepare_without_modifications_loads_no_buildah_tree_or_retry_code(tmp_path: Path) -> None:
    environment = tmp_path / "env.yaml"
    environment.write_text("parameter_defaults:\n  ContainerImagePrepare:\n  - push_destination: true\n")
    assert (
        run_python(_PREPARE_PROBE, str(environment), env={**os.environ, "HOME": str(tmp_path)}).strip() == "0"
    )


# The program leaves without the interpreter's teardown: what a teardown would have done for the
# run (flushing a pipe, closing the log file, running exit handlers) must still be done.
_CONSOLE_PROBE = """
import atexit, sys
from pathlib import Path
atexit.register(Path(sys.argv[1]).write_text, "exit handlers ran")
sys.argv = ["imageprep", *sys.argv[2:]]
from imageprep.cli.app import console
console()
"""


def _console(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _CONSOLE_PROBE, str(tmp_path / "handlers"), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )


def test_the_program_flushes_its_output_closes_its_log_and_keeps_its_exit_status(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    done = _console(tmp_path, "--log-file", str(log), "prepare", "default")
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("tag_from_label: rdo_version")  # all of it, through the pipe
    assert (tmp_path / "handlers").read_text() == "exit handlers ran"
    assert log.exists()

    assert _console(tmp_path, "prepar").returncode == 2
    assert _console(tmp_path, "--version").returncode == 0  # argparse's own exit


def test_the_program_keeps_the_status_of_a_command_that_fails(tmp_path: Path) -> None:
    done = _console(tmp_path, "prepare", "-e", str(tmp_path / "missing.yaml"), "--dry-run", "--offline")
    assert done.returncode not in (0, None)
    assert "missing.yaml" in done.stderr
    assert "Traceback" not in done.stderr
