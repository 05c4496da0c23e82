"""A few lines of Python run in a fresh interpreter: for what belongs to a whole process.

Which modules a command loads, or how a signal reaches its threads, cannot be seen from inside
the test process (pytest has loaded everything already, and handles signals its own way).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping


def run_python(code: str, *args: str, env: Mapping[str, str] | None = None) -> str:
    """The standard output of ``python -c CODE ARGS...``; a non-zero exit fails the test (with stderr)."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=None if env is None else dict(env),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
