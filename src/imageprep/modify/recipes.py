"""Pick what modifies an image: a built-in ``tasks_from`` of tripleo-modify-image, or an Ansible role."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from imageprep.model.errors import ModificationError
from imageprep.modify.ansiblerole import find_playbook_program, missing_ansible, run_role
from imageprep.modify.buildah import Buildah
from imageprep.modify.devinstall import install_sources, source_directories
from imageprep.modify.dockerfile import build_dockerfile, read_dockerfile
from imageprep.modify.imageinfo import image_info
from imageprep.modify.request import ModifyRequest
from imageprep.modify.rpms import find_rpms, install_rpms
from imageprep.modify.yumupdate import repository_mounts, update_packages

LOG = logging.getLogger(__name__)
BUILTIN_TASKS = ("rpm_install.yml", "modify_image.yml", "yum_update.yml", "dev_install.yml")


def _required_path(request: ModifyRequest, key: str) -> Path:
    path = request.path(key)
    assert path is not None  # required paths are never None
    return path


def _precheck(request: ModifyRequest) -> None:
    if not request.builtin:
        if find_playbook_program() is None:
            raise missing_ansible(request)
        return
    tasks = request.tasks_from
    if tasks == "rpm_install.yml":
        find_rpms(_required_path(request, "rpms_path"))
    elif tasks == "modify_image.yml":
        read_dockerfile(_required_path(request, "modify_dir_path"))
    elif tasks == "yum_update.yml":
        repos = request.path("yum_repos_dir_path", required=False)
        if repos is not None:
            repository_mounts(repos)
        rpms = request.path("rpms_path", required=False)
        if rpms is not None:
            find_rpms(rpms)
        request.text_list("update_repo")
    elif tasks == "dev_install.yml":
        source_directories(request)
    else:
        raise ModificationError(
            f"tasks_from {tasks!r} is not one imageprep implements",
            hint=f"use one of {', '.join(BUILTIN_TASKS)}",
        )


def _builtin(buildah: Buildah, request: ModifyRequest) -> None:
    tasks = request.tasks_from
    source, result, append = request.source_image, request.result_image, request.append_tag
    if tasks == "rpm_install.yml":
        install_rpms(buildah, source, result, find_rpms(_required_path(request, "rpms_path")), append)
    elif tasks == "modify_image.yml":
        user = image_info(buildah, source).user
        build_dockerfile(buildah, source, result, _required_path(request, "modify_dir_path"), append, user)
    elif tasks == "yum_update.yml":
        update_packages(buildah, request)
    else:
        install_sources(buildah, request)


def _named(request: ModifyRequest, error: ModificationError) -> ModificationError:
    return ModificationError(
        f"cannot modify {request.source_image} ({request.label}): {error.message}", hint=error.hint
    )


def check_request(request: ModifyRequest) -> None:
    """Check what can be checked before any image is pulled: inputs exist, tools are installed."""
    try:
        _precheck(request)
    except ModificationError as exc:
        raise _named(request, exc) from exc


def modify(buildah: Buildah, request: ModifyRequest, *, roles_path: Sequence[Path] = ()) -> str:
    """Modify the local image ``request.source_image``; the local name of the result.

    Any failure is one :class:`ModificationError` naming the image, what was attempted and why.
    """
    check_request(request)
    LOG.info("modifying %s with %s into %s", request.source_image, request.label, request.result_image)
    try:
        if not buildah.image_exists(request.source_image):
            raise ModificationError("it is not in local container storage")
        if request.builtin:
            _builtin(buildah, request)
        else:
            run_role(buildah, request, roles_path)
    except ModificationError as exc:
        raise _named(request, exc) from exc
    return request.result_image
