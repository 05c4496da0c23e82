"""Local containers storage driven through the ``buildah`` program, one bounded call at a time.

Every call has a timeout and keeps its stderr, so a failure becomes one
:class:`ModificationError` that names the image and quotes buildah's last words. The storage
driver is whatever the containers configuration says (``CONTAINERS_STORAGE_CONF``,
``storage.conf``), unless that cannot work on this host: then ``vfs``, which works everywhere,
slowly. Working containers made here are removed even when a step fails.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imageprep.model.errors import ModificationError

LOG = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 120.0
DEFAULT_BUILD_TIMEOUT = 1800.0
FALLBACK_DRIVER = "vfs"
_STDERR_LINES = 4
# Words containers/storage uses when a driver cannot be set up on this kernel / filesystem.
_DRIVER_TROUBLE = ("overlay", "driver not supported", "not supported over", "mount_program")


def stderr_tail(text: str, lines: int = _STDERR_LINES) -> str:
    """The last non-empty lines of a tool's stderr, on one line: the part that says what went wrong."""
    kept: list[str] = []
    for line in (raw.strip() for raw in text.splitlines()):
        if line and (not kept or kept[-1] != line):  # tools often repeat the final error
            kept.append(line)
    return " | ".join(kept[-lines:]) if kept else "no error output"


@dataclass(frozen=True, slots=True)
class BuildahSettings:
    """How buildah is run. ``None`` leaves a choice to the containers configuration files.

    ``root`` / ``runroot`` select a storage location (tests use a temporary one); ``driver`` a
    storage driver (``None``: the configured one, or ``vfs`` when that does not work here);
    ``isolation`` is for ``run`` and ``bud`` (``chroot`` needs no user namespaces or runtime).
    """

    executable: str = "buildah"
    root: Path | None = None
    runroot: Path | None = None
    driver: str | None = None
    isolation: str = "chroot"
    timeout: float = DEFAULT_TIMEOUT
    build_timeout: float = DEFAULT_BUILD_TIMEOUT


class Buildah:
    """One buildah installation and storage; safe to share between threads."""

    def __init__(self, settings: BuildahSettings | None = None) -> None:
        self.settings = settings or BuildahSettings()
        self._driver: str | None = self.settings.driver
        self._checked = False
        self._lock = threading.Lock()

    # --- running ---------------------------------------------------------------------------------

    def storage_options(self) -> list[str]:
        """The global options that select the storage every call (and every helper) must use."""
        self._check_storage()
        return self._storage_flags(self._driver)

    def storage_conf(self) -> str:
        """A ``storage.conf`` describing the same storage, for programs that only read that file."""
        self._check_storage()
        lines = ["[storage]", f'driver = "{self._driver or ""}"']
        if self.settings.root is not None:
            lines.append(f'graphroot = "{self.settings.root}"')
        if self.settings.runroot is not None:
            lines.append(f'runroot = "{self.settings.runroot}"')
        return "\n".join(lines) + "\n"

    def _storage_flags(self, driver: str | None) -> list[str]:
        flags: list[str] = []
        if self.settings.root is not None:
            flags += ["--root", str(self.settings.root)]
        if self.settings.runroot is not None:
            flags += ["--runroot", str(self.settings.runroot)]
        if driver:
            flags += ["--storage-driver", driver]
        return flags

    def _check_storage(self) -> None:
        """Find out once whether the configured driver works; fall back to vfs when it does not."""
        with self._lock:
            if self._checked:
                return
            if shutil.which(self.settings.executable) is None:
                raise ModificationError(
                    f"{self.settings.executable} is not installed; it is needed to modify images",
                    hint="install buildah (apt-get install buildah / dnf install buildah)",
                )
            if self._driver is None:
                first = self._call(["info"], self._storage_flags(None), self.settings.timeout)
                if first.returncode != 0:
                    if not any(word in first.stderr.lower() for word in _DRIVER_TROUBLE):
                        raise ModificationError(
                            f"buildah cannot open its container storage: {stderr_tail(first.stderr)}"
                        )
                    LOG.info(
                        "the configured storage driver does not work here (%s); using %s",
                        stderr_tail(first.stderr, 1),
                        FALLBACK_DRIVER,
                    )
                    self._driver = FALLBACK_DRIVER
            self._checked = True

    def _call(
        self, args: Sequence[str], flags: Sequence[str], timeout: float, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = [self.settings.executable, *flags, *args]
        LOG.debug("running %s", " ".join(command))
        try:
            return subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ModificationError(
                f"buildah {args[0]} did not finish within {timeout:g}s",
                hint="the host may be overloaded; raise the timeout or try again",
            ) from exc
        except OSError as exc:
            raise ModificationError(f"cannot run {self.settings.executable}: {exc.strerror}") from exc

    def run(self, args: Sequence[str], *, subject: str, timeout: float | None = None) -> str:
        """Run ``buildah ARGS`` for ``subject`` (an image or container); its stdout, stripped."""
        self._check_storage()
        result = self._call(args, self._storage_flags(self._driver), timeout or self.settings.timeout)
        if result.returncode != 0:
            raise ModificationError(f"{subject}: buildah {args[0]} failed: {stderr_tail(result.stderr)}")
        return result.stdout.strip()

    # --- images ----------------------------------------------------------------------------------

    def image_exists(self, image: str) -> bool:
        """Whether local storage has an image of that name or id."""
        self._check_storage()
        flags = self._storage_flags(self._driver)
        result = self._call(["inspect", "--type", "image", image], flags, self.settings.timeout)
        return result.returncode == 0

    def inspect_image(self, image: str) -> dict[str, Any]:
        """``buildah inspect`` of a local image, as parsed JSON."""
        text = self.run(["inspect", "--type", "image", image], subject=image)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModificationError(f"{image}: buildah inspect printed something that is not JSON") from exc
        if not isinstance(data, dict):
            raise ModificationError(f"{image}: buildah inspect printed something unexpected")
        return data

    def tag(self, image: str, name: str) -> None:
        """Give a local image another name."""
        self.run(["tag", image, name], subject=name)

    def remove_image(self, image: str) -> None:
        """Remove a local image name (the layers go when nothing else uses them); never raises."""
        try:
            self.run(["rmi", image], subject=image)
        except ModificationError as exc:
            LOG.warning("could not remove local image: %s", exc.message)

    def pull_dir(self, directory: Path, *, subject: str) -> str:
        """Load an image from a ``dir:`` layout into local storage; its image id."""
        output = self.run(["pull", "--quiet", f"dir:{directory}"], subject=subject)
        return output.splitlines()[-1].strip() if output else ""

    def push_dir(self, image: str, directory: Path, *, format_: str | None = None) -> None:
        """Write a local image to a ``dir:`` layout (layers compressed)."""
        options = ["--quiet", "--compression-format", "gzip"]
        if format_:
            options += ["--format", format_]
        self.run(
            ["push", *options, image, f"dir:{directory}"], subject=image, timeout=self.settings.build_timeout
        )

    # --- working containers ----------------------------------------------------------------------

    @contextmanager
    def container(self, image: str) -> Iterator[str]:
        """A working container from a local image, removed on the way out whatever happened."""
        name = f"imageprep-{uuid.uuid4().hex[:12]}"
        self.run(["from", "--pull=never", "--quiet", "--name", name, image], subject=image)
        try:
            yield name
        finally:
            try:
                self.run(["rm", name], subject=name)
            except ModificationError as exc:
                LOG.warning("could not remove working container: %s", exc.message)

    def mount(self, container: str, *, subject: str) -> Path:
        """Mount a working container's root filesystem (root only); where it is mounted."""
        try:
            return Path(self.run(["mount", container], subject=subject))
        except ModificationError as exc:
            raise ModificationError(
                exc.message, hint="mounting an image needs root; run the command with sudo"
            ) from exc

    def run_in(
        self, container: str, command: Sequence[str], *, subject: str, volumes: Sequence[str] = ()
    ) -> str:
        """Run a command inside a working container as root (the image's user is not changed)."""
        options = ["--isolation", self.settings.isolation, "--user", "0:0"]
        for volume in volumes:
            options += ["--volume", volume]
        return self.run(
            ["run", *options, container, "--", *command], subject=subject, timeout=self.settings.build_timeout
        )

    def copy_into(self, container: str, sources: Sequence[Path], destination: str, *, subject: str) -> None:
        """Copy host files into a working container."""
        self.run(["copy", "--quiet", container, *map(str, sources), destination], subject=subject)

    def configure(self, container: str, options: Sequence[str], *, subject: str) -> None:
        """Change a working container's image configuration (labels, user, ...)."""
        self.run(["config", *options, container], subject=subject)

    def commit(self, container: str, name: str, *, format_: str = "docker") -> str:
        """Commit a working container as a new image (one new layer); its image id."""
        return self.run(
            ["commit", "--quiet", "--format", format_, container, name],
            subject=name,
            timeout=self.settings.build_timeout,
        )

    def build(self, context: Path, dockerfile: Path, name: str, *, subject: str) -> str:
        """``buildah bud`` a Dockerfile into ``name``, never pulling; the image id."""
        return self.run(
            [
                "bud",
                "--quiet",
                "--pull=never",
                "--format",
                "docker",
                "--isolation",
                self.settings.isolation,
                "--tag",
                name,
                "--file",
                str(dockerfile),
                str(context),
            ],
            subject=subject,
            timeout=self.settings.build_timeout,
        )
