"""Writing heat environment documents: a comment header, sorted YAML, atomic replacement."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from imageprep.model.errors import ConfigurationError

# libyaml's emitter when PyYAML has it: the same YAML, written several times faster.
_FAST_DUMPER: type[yaml.SafeDumper | yaml.CSafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def render_document(document: Mapping[str, Any], command_line: str, generated_at: datetime) -> str:
    """The document as YAML (block style, sorted keys) under a header saying how it was made."""
    header = f"# Generated with the following on {generated_at.isoformat()}\n#\n#   {command_line}\n#\n\n"
    options: dict[str, Any] = {"default_flow_style": False, "sort_keys": True, "width": 4096}
    body: str
    try:
        body = yaml.dump(dict(document), Dumper=_FAST_DUMPER, **options)
    except (yaml.YAMLError, ValueError):
        # libyaml cannot write a lone surrogate (which the pure-Python parser can read from an
        # operator's escape); the pure-Python emitter escapes it.
        body = yaml.dump(dict(document), Dumper=yaml.SafeDumper, **options)
    return header + body


def _directory(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def check_writable(path: Path) -> None:
    """Refuse now, before any long work, an output that :func:`write_atomically` could not write."""
    directory = _directory(path)
    if not directory.is_dir():
        raise ConfigurationError(f"{path}: directory {directory} does not exist")
    if path.is_dir():
        raise ConfigurationError(f"{path}: is a directory, not a file")
    # The file itself is replaced by a rename, so what matters is the directory.
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigurationError(f"{path}: cannot write: directory {directory} is not writable")


def write_atomically(path: Path, text: str, *, keep_backup: bool = False) -> Path | None:
    """Replace ``path`` with ``text`` so readers see the old or the new file, never a mix.

    With ``keep_backup`` an existing file is first copied to ``<path>.backup``; that copy is
    returned. A failure leaves the existing file untouched.
    """
    directory = _directory(path)
    if not directory.is_dir():
        raise ConfigurationError(f"{path}: directory {directory} does not exist")
    backup = None
    try:
        if keep_backup and path.exists():
            backup = path.with_name(path.name + ".backup")
            shutil.copy2(path, backup)
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(temporary, mode)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    return backup
