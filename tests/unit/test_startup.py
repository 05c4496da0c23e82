"""What a command loads: startup is paid on every run, so work nobody asked for stays unloaded."""

from __future__ import annotations

import os
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
