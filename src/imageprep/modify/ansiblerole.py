"""Any other ``modify_role``: run that Ansible role the way the original tooling did.

The role gets ``source_image``, ``target_image``, ``modified_append_tag`` and
``container_build_tool: buildah`` plus the entry's ``modify_vars``, and must leave the local
image ``target_image + modified_append_tag`` behind. Ansible (``ansible-core``) is an optional
extra; without it the error says how to install it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from imageprep.model.errors import ModificationError
from imageprep.modify.buildah import Buildah, stderr_tail
from imageprep.modify.request import ModifyRequest

PLAYBOOK = "ansible-playbook"
_ROLE_NOT_FOUND = re.compile(r"the role '([^']+)' was not found in ([^\n]*)", re.IGNORECASE)


def find_playbook_program() -> str | None:
    """``ansible-playbook`` beside this Python (a virtualenv with the extra), else on ``PATH``."""
    beside = Path(sys.executable).parent / PLAYBOOK
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(PLAYBOOK)


def missing_ansible(request: ModifyRequest) -> ModificationError:
    """The error for a role that needs Ansible when Ansible is not installed."""
    return ModificationError(
        f"modify_role {request.role!r} is not built in, and running an Ansible role needs "
        f"{PLAYBOOK}, which is not installed",
        hint="install the Ansible extra: pip install 'imageprep[ansible]' (or ansible-core), or use "
        "modify_role: tripleo-modify-image with a built-in tasks_from",
    )


def playbook(request: ModifyRequest) -> list[dict[str, Any]]:
    """The one-play playbook that imports the role for one image."""
    # Modules on localhost run with the Python that runs Ansible, not whatever discovery finds.
    variables: dict[str, Any] = {"ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    variables.update((str(key), value) for key, value in request.variables.items())
    variables.update(
        source_image=request.source_image,
        target_image=request.target_image or request.source_image,
        modified_append_tag=request.append_tag,
        container_build_tool="buildah",
    )
    role: dict[str, Any] = {"name": request.role}
    if request.variables.get("tasks_from"):
        role["tasks_from"] = str(request.variables["tasks_from"])
    return [
        {
            "name": f"modify {request.source_image}",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": variables,
            "tasks": [{"import_role": role}],
        }
    ]


def _environment(buildah: Buildah, roles_path: Sequence[Path], scratch: Path) -> dict[str, str]:
    # The caller's environment is passed through, as the original tooling did; we only add to it.
    environment = dict(os.environ)
    if roles_path:
        paths = [str(path) for path in roles_path]
        if environment.get("ANSIBLE_ROLES_PATH"):
            paths.append(environment["ANSIBLE_ROLES_PATH"])
        environment["ANSIBLE_ROLES_PATH"] = os.pathsep.join(paths)
    settings = buildah.settings
    if settings.root is not None or settings.runroot is not None or settings.driver is not None:
        # The role's own buildah calls must see the storage we use.
        conf = scratch / "storage.conf"
        conf.write_text(buildah.storage_conf(), encoding="utf-8")
        environment["CONTAINERS_STORAGE_CONF"] = str(conf)
    environment.setdefault("ANSIBLE_LOCALHOST_WARNING", "False")
    environment.setdefault("ANSIBLE_INVENTORY_UNPARSED_WARNING", "False")
    environment.setdefault("ANSIBLE_NOCOLOR", "1")
    # Ansible's scratch files go with ours, not into the caller's ~/.ansible.
    environment.setdefault("ANSIBLE_LOCAL_TEMP", str(scratch / "ansible-local"))
    environment.setdefault("ANSIBLE_REMOTE_TEMP", str(scratch / "ansible-remote"))
    return environment


def run_role(buildah: Buildah, request: ModifyRequest, roles_path: Sequence[Path] = ()) -> str:
    """Run the role; the name of the local image it produced."""
    program = find_playbook_program()
    if program is None:
        raise missing_ansible(request)
    with tempfile.TemporaryDirectory(prefix="imageprep-role-") as scratch_name:
        scratch = Path(scratch_name)
        book = scratch / "modify-image.yaml"
        book.write_text(yaml.safe_dump(playbook(request), sort_keys=False), encoding="utf-8")
        command = [program, "-i", "localhost,", str(book)]
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=buildah.settings.build_timeout,
                stdin=subprocess.DEVNULL,
                env=_environment(buildah, roles_path, scratch),
                cwd=scratch,
            )
        except subprocess.TimeoutExpired as exc:
            raise ModificationError(
                f"role {request.role} did not finish within {buildah.settings.build_timeout:.0f}s"
            ) from exc
    if result.returncode != 0:
        output = f"{result.stdout}\n{result.stderr}"
        missing = _ROLE_NOT_FOUND.search(output)
        if missing:
            searched = missing.group(2).strip().rstrip(":")
            raise ModificationError(
                f"Ansible role {request.role!r} was not found (searched {searched})",
                hint="check the role name, or set ANSIBLE_ROLES_PATH to the directory that holds the role",
            )
        failed = [line for line in output.splitlines() if "fatal:" in line or "ERROR!" in line]
        raise ModificationError(
            f"role {request.role} failed: {stderr_tail(chr(10).join(failed) or output, 3)}"
        )
    if not buildah.image_exists(request.result_image):
        raise ModificationError(
            f"role {request.role} finished but left no local image {request.result_image}",
            hint="the role must build target_image + modified_append_tag with buildah",
        )
    return request.result_image
