"""``dev_install.yml``: pip-install local Python source trees into an image.

Only local directories (``python_dir``) are supported: imageprep never downloads source, so Gerrit
``refspecs`` are refused with a way forward (check the change out, list the directory). The
install runs the image's own ``python3 -m pip`` offline, without dependencies, so the image's
packaged dependencies stay what they are.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from imageprep.model.errors import ModificationError
from imageprep.modify.buildah import Buildah
from imageprep.modify.imageinfo import find_program
from imageprep.modify.request import MODIFIED_LABEL, ModifyRequest

SOURCE_DIR = "/tmp/imageprep-dev"
_PROJECT_FILES = ("setup.py", "setup.cfg", "pyproject.toml")


def source_directories(request: ModifyRequest) -> list[Path]:
    """The ``python_dir`` directories, checked to be Python projects."""
    if request.variables.get("refspecs"):
        raise ModificationError(
            "dev_install.yml refspecs would fetch changes from Gerrit, and imageprep never downloads source",
            hint="check the change out locally (git fetch + checkout) and list that directory in "
            "modify_vars.python_dir",
        )
    directories = [Path(item).expanduser() for item in request.text_list("python_dir")]
    if not directories:
        raise ModificationError("dev_install.yml needs modify_vars.python_dir (local source directories)")
    for directory in directories:
        if not directory.is_dir():
            raise ModificationError(f"python_dir {directory} is not a directory")
        if not any((directory / name).is_file() for name in _PROJECT_FILES):
            raise ModificationError(f"python_dir {directory} has no setup.py, setup.cfg or pyproject.toml")
    return directories


def install_sources(buildah: Buildah, request: ModifyRequest) -> str:
    """Install every ``python_dir`` into a copy of the image; the committed image id."""
    directories = source_directories(request)
    with buildah.container(request.source_image) as container:
        root = buildah.mount(container, subject="mounting the image")
        python = find_program(root, "python3")
        if python is None:
            raise ModificationError("the image has no python3 to install Python source with")
        inside = []
        for position, directory in enumerate(directories):
            target = f"{SOURCE_DIR}/{position}-{directory.resolve().name}"
            buildah.copy_into(container, [directory], f"{target}/", subject=f"copying {directory} in")
            inside.append(target)
        command = [python, "-m", "pip", "install", "--no-deps", "--no-index", "--no-build-isolation", *inside]
        buildah.run_in(container, command, subject="pip install")
        shutil.rmtree(root / SOURCE_DIR.lstrip("/"), ignore_errors=True)
        buildah.configure(
            container, ["--label", f"{MODIFIED_LABEL}={request.append_tag}"], subject="labelling"
        )
        return buildah.commit(container, request.result_image)
