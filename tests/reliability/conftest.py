"""Fixtures of the reliability suite: a seeded catalogue source, fresh destinations, and two drivers.

``run_mirror`` runs a prepare in this process through the library, with settings whose
timeouts and retry delays are small (a test must not wait a minute for a stalled read). ``cli``
starts the real ``imageprep`` program as a subprocess (HOME and TMPDIR inside the test's directory)
and hands back the process, so tests can signal or kill it at a moment of their choosing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from imageprep.model.retry import RetryPolicy
from imageprep.registry import Timeouts
from imageprep.settings import Settings
from imageprep.transfer.report import TransferReport
from imageprep.usecases.prepare import PrepareRequest, prepare_images
from tests.reliability.catalogue import Published, seed_catalogue
from tests.support.registry_server import RunningRegistry, plain_registry_server, registry_available

# Small on purpose: the proxy stalls for longer than READ_TIMEOUT and answers 429 with a 1 s
# Retry-After, which the policy honours (its cap is above it).
READ_TIMEOUT = 1.5
FAST_RETRY = RetryPolicy(attempts=4, backoff=0.05, max_backoff=0.2, max_retry_after=2.0)
FAST_TIMEOUTS = Timeouts(connect=2.0, read=READ_TIMEOUT, write=5.0, pool=10.0)
CLI_TIMEOUT = 120


def _require_registry() -> None:
    if not registry_available():
        pytest.skip("docker-registry and skopeo are needed (apt-get install docker-registry skopeo)")


@dataclass
class Catalogue:
    registry: RunningRegistry
    published: dict[str, Published]


@pytest.fixture(scope="session")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalogue]:
    """A source docker-registry holding the reduced catalogue (started once for the suite)."""
    _require_registry()
    with plain_registry_server(tmp_path_factory.mktemp("catalogue-source")) as registry:
        yield Catalogue(registry, seed_catalogue(registry))


@pytest.fixture
def destination(tmp_path: Path) -> Iterator[RunningRegistry]:
    """An empty docker-registry for one test."""
    _require_registry()
    with plain_registry_server(tmp_path / "destination") as registry:
        yield registry


def run_mirror(
    environment_file: Path, concurrency: int = 4, retry: RetryPolicy = FAST_RETRY
) -> TransferReport:
    """What ``imageprep prepare -e FILE`` does, through the library, with small timeouts and waits.

    Raises the run's ``TransferError`` (naming every failed image) when any image failed.
    """
    settings = Settings(
        retry=retry,
        timeouts=FAST_TIMEOUTS,
        # These mirrors push to registries only; the image-serve root is never written.
        image_serve_root=environment_file.parent / "image-serve",
        cache_directory=environment_file.parent / "cache",
    )
    outcome = prepare_images(
        PrepareRequest(environment_files=(environment_file,), concurrency=concurrency), settings
    )
    assert outcome.report is not None
    return outcome.report


Cli = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    """Start ``imageprep ARGS`` in ``tmp_path``; every process started is killed at the end."""
    home = tmp_path / "home"
    home.mkdir()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    started: list[subprocess.Popen[str]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "TMPDIR": str(scratch),
            "LANG": "C.UTF-8",
            **(env or {}),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "imageprep.cli.app", *args],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=environment,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=CLI_TIMEOUT)


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Wait (bounded) for a started CLI; its exit code, stdout and stderr."""
    stdout, stderr = process.communicate(timeout=CLI_TIMEOUT)
    return process.returncode, stdout, stderr


def temporary_leftovers(directory: Path) -> list[Path]:
    """Files a run may have left behind: anything in its TMPDIR, and atomic-write temporaries."""
    found = list((directory / "tmp").rglob("*")) if (directory / "tmp").is_dir() else []
    found += [path for path in directory.glob(".*.tmp")]
    return found
