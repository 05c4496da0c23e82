"""``rpm_install.yml``: install a directory of RPM files into an image as one new layer.

The image's own ``rpm`` does the work when it has one, so its database format and scriptlets
are its own. An image without rpm (a minimal or non-RPM base) gets the host's ``rpm --root``
into its mounted filesystem, with the database at the standard ``/var/lib/rpm`` and without
dependency checks (such an image's package database describes nothing it contains).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

from imageprep.model.errors import ModificationError
from imageprep.modify.buildah import Buildah, stderr_tail
from imageprep.modify.imageinfo import find_program
from imageprep.modify.request import MODIFIED_LABEL

LOG = logging.getLogger(__name__)

RPM_MAGIC = b"\xed\xab\xee\xdb"
INSTALL_OPTIONS = ("-Uvh", "--replacepkgs", "--replacefiles", "--oldpackage")
IMAGE_RPM_DIR = "/tmp/imageprep-rpms"
RPM_DATABASE = "/var/lib/rpm"
HOST_RPM_TIMEOUT = 1800.0


def find_rpms(directory: Path) -> list[Path]:
    """Every ``*.rpm`` file of the directory, checked to really be RPM packages."""
    if not directory.exists():
        raise ModificationError(f"rpms_path {directory} does not exist")
    if not directory.is_dir():
        raise ModificationError(f"rpms_path {directory} is not a directory")
    rpms = sorted(path for path in directory.iterdir() if path.name.endswith(".rpm") and path.is_file())
    if not rpms:
        raise ModificationError(
            f"rpms_path {directory} holds no *.rpm files", hint="put the hotfix packages there"
        )
    for path in rpms:
        try:
            with path.open("rb") as handle:
                magic = handle.read(len(RPM_MAGIC))
        except OSError as exc:
            raise ModificationError(f"cannot read {path}: {exc.strerror}") from exc
        if magic != RPM_MAGIC:
            raise ModificationError(f"{path} is not an RPM package (no RPM lead)")
    return rpms


def _host_rpm(root: Path, rpms: list[Path]) -> None:
    program = shutil.which("rpm")
    if program is None:
        raise ModificationError(
            "the image has no rpm program and neither has this host",
            hint="install rpm on this host (apt-get install rpm / dnf install rpm)",
        )
    command = [
        program,
        "--root",
        str(root),
        "--dbpath",
        RPM_DATABASE,
        "--nodeps",
        *INSTALL_OPTIONS,
        *map(str, rpms),
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=HOST_RPM_TIMEOUT, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise ModificationError(f"rpm did not finish within {HOST_RPM_TIMEOUT:.0f}s") from exc
    if result.returncode != 0:
        raise ModificationError(f"installing the RPMs failed: {stderr_tail(result.stderr)}")


def install_rpms(buildah: Buildah, source: str, result_name: str, rpms: list[Path], append_tag: str) -> str:
    """Install ``rpms`` into a copy of ``source`` committed as ``result_name``; its image id."""
    with buildah.container(source) as container:
        root = buildah.mount(container, subject="mounting the image")
        image_rpm = find_program(root, "rpm")
        if image_rpm is not None:
            LOG.info("installing %d RPM(s) into %s with the image's %s", len(rpms), source, image_rpm)
            buildah.copy_into(container, rpms, f"{IMAGE_RPM_DIR}/", subject="copying the RPMs in")
            inside = [f"{IMAGE_RPM_DIR}/{path.name}" for path in rpms]
            buildah.run_in(container, [image_rpm, *INSTALL_OPTIONS, *inside], subject="installing the RPMs")
            shutil.rmtree(root / IMAGE_RPM_DIR.lstrip("/"), ignore_errors=True)
        else:
            LOG.info("%s has no rpm; installing %d RPM(s) with this host's rpm --root", source, len(rpms))
            _host_rpm(root, rpms)
        buildah.configure(container, ["--label", f"{MODIFIED_LABEL}={append_tag}"], subject="labelling")
        return buildah.commit(container, result_name)
