"""Writers killed with SIGKILL and writers running at once leave a tree every client can trust."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.imageserve_check import verify_tree

WRITER_TIMEOUT = 60


def _writer(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.imageserve_writer", str(root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )


def _finish(process: subprocess.Popen[str]) -> dict[str, list[str]]:
    stdout, stderr = process.communicate(timeout=WRITER_TIMEOUT)
    assert process.returncode == 0, stderr + stdout
    result: dict[str, list[str]] = json.loads(stdout)
    return result


def test_sigkill_mid_write_then_rerun_leaves_a_sound_tree(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    pool = root / ".imageprep" / "pool" / "sha256"
    process = _writer(root, "--images", "10", "--delay", "0.03")
    try:
        deadline = time.monotonic() + WRITER_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            if pool.is_dir() and len(list(pool.iterdir())) >= 4:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the writer finished before it could be killed; slow it down"
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=WRITER_TIMEOUT)  # also closes the pipes
    assert process.returncode == -signal.SIGKILL
    # Whatever was left is sound already: no client-visible file is partial (the indexes may lag).
    assert verify_tree(root, indexes=False) == []
    tags_before = sorted((root / "v2").glob("writer/*/manifests/*.type-map"))
    assert len(tags_before) < 10

    result = _finish(_writer(root, "--images", "10"))

    assert set(result["outcomes"]) <= {"copied", "skipped"}
    assert len(sorted((root / "v2").glob("writer/*/manifests/current.type-map"))) == 10
    assert verify_tree(root) == []
    leftovers = [p for p in (root / ".imageprep" / "tmp").iterdir()]
    assert leftovers == []  # the rerun removed what the killed writer left


def test_two_writers_at_once_both_succeed(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    # Same images (same repositories and blobs) from both, plus each its own namespace.
    first = _writer(root, "--images", "6", "--delay", "0.005", "--prefix", "shared")
    second = _writer(root, "--images", "6", "--delay", "0.005", "--prefix", "shared")
    third = _writer(root, "--images", "4", "--prefix", "own")
    for process in (first, second, third):
        _finish(process)
    catalog = json.loads((root / "v2" / "_catalog").read_text())["repositories"]
    assert len(catalog) == 10
    assert verify_tree(root) == []
