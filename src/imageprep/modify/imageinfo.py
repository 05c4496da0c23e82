"""What a modification needs to know about a local image before changing it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imageprep.model import mediatypes
from imageprep.modify.buildah import Buildah


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """The image's default user (to restore after root steps), labels and manifest format."""

    user: str
    labels: dict[str, str] = field(default_factory=dict)
    docker_format: bool = True

    @property
    def push_format(self) -> str:
        """The ``buildah push --format`` that keeps the image's own manifest format."""
        return "v2s2" if self.docker_format else "oci"


def _config(data: dict[str, Any]) -> dict[str, Any]:
    for key in ("OCIv1", "Docker"):
        section = data.get(key)
        config = section.get("config") if isinstance(section, dict) else None
        if isinstance(config, dict):
            return config
    return {}


def parse_inspect(data: dict[str, Any]) -> ImageInfo:
    """Build from ``buildah inspect --type image`` output."""
    config = _config(data)
    labels = config.get("Labels") or {}
    media_type = ""
    manifest = data.get("Manifest")
    if isinstance(manifest, str) and manifest:
        try:
            parsed = json.loads(manifest)
        except json.JSONDecodeError:
            parsed = {}
        if isinstance(parsed, dict):
            media_type = str(parsed.get("mediaType") or "")
    return ImageInfo(
        user=str(config.get("User") or ""),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        docker_format=media_type == mediatypes.DOCKER_MANIFEST,
    )


def image_info(buildah: Buildah, image: str) -> ImageInfo:
    """Inspect a local image."""
    return parse_inspect(buildah.inspect_image(image))


_PROGRAM_DIRS = ("usr/bin", "usr/sbin", "bin", "sbin")


def find_program(root: Path, name: str) -> str | None:
    """Where a mounted image keeps a program (``/usr/bin/rpm``), or ``None`` when it has none.

    Only the image's own directories are looked at: a path is never resolved through an
    absolute symlink, which would point into the host.
    """
    for directory in _PROGRAM_DIRS:
        inside = root / directory
        if inside.is_symlink():
            continue  # /bin -> /usr/bin: the usr directory is checked on its own
        if os.path.lexists(inside / name):
            return f"/{directory}/{name}"
    return None
