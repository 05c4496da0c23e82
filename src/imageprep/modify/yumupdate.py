"""``yum_update.yml``: update an image's packages with the image's own dnf or yum.

The repositories are the operator's (``yum_repos_dir_path`` is bind-mounted over the image's
``/etc/yum.repos.d``, and every ``file://`` repository it names is mounted at the same path), so
an image is updated from the same content the hosts use. ``update_repo`` limits the update to
those repositories; without it every enabled repository counts (the documented "update all
packages" use; the original role silently updated nothing in that case). ``rpms_path`` updates
from local RPM files instead.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from imageprep.model.errors import ModificationError
from imageprep.modify.buildah import Buildah
from imageprep.modify.imageinfo import find_program
from imageprep.modify.request import MODIFIED_LABEL, ModifyRequest
from imageprep.modify.rpms import IMAGE_RPM_DIR, find_rpms

LOG = logging.getLogger(__name__)
_FILE_BASEURL = re.compile(r"^\s*baseurl\s*=\s*file://(/\S*)", re.IGNORECASE | re.MULTILINE)


def repository_mounts(repos_dir: Path) -> list[str]:
    """``--volume`` values: the repo directory as ``/etc/yum.repos.d`` plus its local repositories."""
    if not repos_dir.is_dir():
        raise ModificationError(f"yum_repos_dir_path {repos_dir} is not a directory")
    volumes = [f"{repos_dir.resolve()}:/etc/yum.repos.d:ro"]
    seen: set[str] = set()
    for repo_file in sorted(repos_dir.glob("*.repo")):
        try:
            text = repo_file.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ModificationError(f"cannot read {repo_file}: {exc.strerror}") from exc
        for match in _FILE_BASEURL.finditer(text):
            path = match.group(1).rstrip("/")
            if path and path not in seen and Path(path).is_dir():
                seen.add(path)
                volumes.append(f"{path}:{path}:ro")
    return volumes


def update_command(manager: str, update_repos: list[str], rpm_files: list[str]) -> list[str]:
    """The package manager command line for the update."""
    command = [manager, "-y"]
    if update_repos:
        command.append("--disablerepo=*")
        command += [f"--enablerepo={repo}" for repo in update_repos]
    command.append("update")
    return command + rpm_files


def update_packages(buildah: Buildah, request: ModifyRequest) -> str:
    """Run the update in a working container committed as the request's result; the image id."""
    repos_dir = request.path("yum_repos_dir_path", required=False)
    volumes = repository_mounts(repos_dir) if repos_dir is not None else []
    rpms_path = request.path("rpms_path", required=False)
    rpms = find_rpms(rpms_path) if rpms_path is not None else []
    update_repos = request.text_list("update_repo")
    if request.variables.get("compare_host_packages"):
        LOG.info("compare_host_packages: the image is updated from the same repositories as this host")
    with buildah.container(request.source_image) as container:
        root = buildah.mount(container, subject="mounting the image")
        manager = find_program(root, "dnf") or find_program(root, "yum")
        if manager is None:
            raise ModificationError(
                "the image has neither dnf nor yum, so its packages cannot be updated",
                hint="use tasks_from: rpm_install.yml with the packages in rpms_path instead",
            )
        inside: list[str] = []
        if rpms:
            buildah.copy_into(container, rpms, f"{IMAGE_RPM_DIR}/", subject="copying the RPMs in")
            inside = [f"{IMAGE_RPM_DIR}/{path.name}" for path in rpms]
        command = update_command(manager, update_repos, inside)
        buildah.run_in(container, command, subject="updating packages", volumes=volumes)
        buildah.run_in(
            container, [manager, "clean", "all"], subject="cleaning the package cache", volumes=volumes
        )
        shutil.rmtree(root / IMAGE_RPM_DIR.lstrip("/"), ignore_errors=True)
        buildah.configure(
            container, ["--label", f"{MODIFIED_LABEL}={request.append_tag}"], subject="labelling"
        )
        return buildah.commit(container, request.result_image)
