"""Which directory is the image-serve tree: the option, else the environment, else the default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from imageprep.model.errors import ConfigurationError

DEFAULT_ROOT = Path("/var/lib/image-serve")
ROOT_VARIABLE = "IMAGEPREP_IMAGE_SERVE_ROOT"


def resolve_root(option: str | None, environ: Mapping[str, str]) -> Path:
    """``--image-serve-root`` if given, else ``$IMAGEPREP_IMAGE_SERVE_ROOT``, else the default; absolute."""
    for value, source in ((option, "--image-serve-root"), (environ.get(ROOT_VARIABLE), ROOT_VARIABLE)):
        if value is None:
            continue
        if not value.strip() or "\0" in value:
            raise ConfigurationError(f"{source} is set to {value!r}, which is not a directory name")
        return Path(os.path.abspath(os.path.expanduser(value)))
    return DEFAULT_ROOT
