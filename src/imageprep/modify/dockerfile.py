"""``modify_image.yml``: build an operator's Dockerfile on top of the image being modified.

The operator's Dockerfile names whatever base it was written against; the copy we build
(``Dockerfile.modified``) starts ``FROM`` the image being modified instead, records the append tag
in a label, and ends by switching back to the image's original user, so a ``USER root`` in the
operator's file never leaks into the deployed image.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from imageprep.model.errors import ModificationError
from imageprep.modify.buildah import Buildah
from imageprep.modify.request import MODIFIED_LABEL

MODIFIED_NAME = "Dockerfile.modified"
_FROM = re.compile(r"^(\s*)FROM\s+(?:--platform=\S+\s+)?\S+(\s+AS\s+\S+)?\s*$", re.IGNORECASE)
_USER = re.compile(r"^\s*USER\s", re.IGNORECASE)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def modified_dockerfile(text: str, source_image: str, append_tag: str, user: str) -> str:
    """The operator's Dockerfile rebased on ``source_image``, labelled, and ending as ``user``.

    The last ``FROM`` is the stage that becomes the image, so that is the one replaced (earlier
    stages of a multi-stage file keep their bases). A file without ``FROM`` gets one.
    """
    lines = text.splitlines()
    positions = [index for index, line in enumerate(lines) if _FROM.match(line)]
    label = f"LABEL {MODIFIED_LABEL}={_quote(append_tag)}"
    if positions:
        index = positions[-1]
        match = _FROM.match(lines[index])
        assert match is not None
        alias = match.group(2) or ""
        lines[index : index + 1] = [f"{match.group(1)}FROM {source_image}{alias}", label]
    else:
        lines[0:0] = [f"FROM {source_image}", label]
    if user or any(_USER.match(line) for line in lines):
        # An image without a user runs as root; say so explicitly once the file changed users.
        lines.append(f"USER {user or 'root'}")
    return "\n".join(lines) + "\n"


def read_dockerfile(directory: Path) -> str:
    """The text of ``directory/Dockerfile``; errors name the directory and what is wrong."""
    if not directory.is_dir():
        raise ModificationError(f"modify_dir_path {directory} is not a directory")
    original = directory / "Dockerfile"
    try:
        return original.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModificationError(f"modify_dir_path {directory} has no Dockerfile") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModificationError(f"cannot read {original}: {exc}") from exc


def build_dockerfile(
    buildah: Buildah, source: str, result_name: str, directory: Path, append_tag: str, user: str
) -> str:
    """Build ``directory/Dockerfile`` (context: ``directory``) on ``source`` as ``result_name``."""
    text = read_dockerfile(directory)
    # The modified copy lives outside the operator's directory, which may be read-only.
    with tempfile.TemporaryDirectory(prefix="imageprep-modify-") as scratch:
        modified = Path(scratch) / MODIFIED_NAME
        modified.write_text(modified_dockerfile(text, source, append_tag, user), encoding="utf-8")
        subject = f"building {directory / 'Dockerfile'}"
        return buildah.build(directory, modified, result_name, subject=subject)
