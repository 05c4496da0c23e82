"""The README's two commands: ``make demo`` sets up only what the demo uses, ``make test`` runs
every part of the suite by name."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.support.freshpython import run_python

ROOT = Path(__file__).resolve().parents[2]
# What only the tests and the bench need; the demo must do without every one of them.
TEST_ONLY = ("pytest", "hypothesis", "trustme", "cryptography", "mypy", "ruff", "ansible", "openstackclient")


def _packages(mode: str) -> tuple[set[str], str]:
    script = (ROOT / "scripts" / "install-deps.sh").read_text()
    block = script.split(f"    {mode})", 1)[1].split(";;", 1)[0]
    packages = set(re.search(r"APT_PACKAGES=\(([^)]*)\)", block, re.S).group(1).split())  # type: ignore[union-attr]
    extras = re.search(r'EXTRAS="([^"]*)"', block).group(1)  # type: ignore[union-attr]
    return packages, extras


def test_the_demo_installs_only_a_registry_skopeo_and_the_package() -> None:
    packages, extras = _packages("demo")
    assert packages == {"skopeo", "docker-registry", "python3-venv"}
    assert extras == ""
    full, test_extras = _packages("test")
    assert packages < full and "test" in test_extras


def test_the_demo_script_loads_nothing_only_the_tests_install() -> None:
    probe = (
        "import runpy, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        f"runpy.run_path({str(ROOT / 'scripts' / 'demo.py')!r}, run_name='not_main')\n"
        f"print(sorted(name for name in sys.modules if name.split('.')[0] in {TEST_ONLY!r}))\n"
    )
    assert run_python(probe).strip() == "[]"


def test_make_test_runs_every_kind_of_test_by_name() -> None:
    runner = (ROOT / "scripts" / "run-tests.sh").read_text()
    parts = re.search(r"PARTS=\(([^)]*)\)", runner).group(1).split()  # type: ignore[union-attr]
    kinds = sorted(
        path.name for path in (ROOT / "tests").iterdir() if path.is_dir() and any(path.glob("test_*.py"))
    )
    assert sorted(parts) == kinds  # a new kind of test cannot be left out of `make test`
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: .*\n\t@scripts/run-tests.sh$", makefile, re.M)
    assert re.search(r"^demo: demo-deps$", makefile, re.M)
    done = subprocess.run(
        ["bash", "-n", str(ROOT / "scripts" / "run-tests.sh")], capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr
