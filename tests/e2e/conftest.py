"""Running the installed ``imageprep`` program as an operator would."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def imageprep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run ``imageprep ARGS`` in ``tmp_path`` with an empty HOME; returns the completed process."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))

    def run(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        process = subprocess.run(
            [sys.executable, "-m", "imageprep.cli.app", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and process.returncode != 0:
            raise AssertionError(f"imageprep {' '.join(args)} failed:\n{process.stderr}")
        return process

    return run
