"""Reading YAML files with errors an operator can act on (file, line and column)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from imageprep.model.errors import ConfigurationError


def parse_yaml(text: str, origin: str) -> Any:
    """Parse ``text``; a syntax error names ``origin`` with the line and column (1-based)."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{origin}:{mark.line + 1}:{mark.column + 1}" if mark else origin
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigurationError(f"{where}: invalid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{origin}: invalid YAML: {exc}") from exc


def load_yaml_file(path: Path) -> Any:
    """Read and parse one YAML file, turning I/O problems into configuration errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigurationError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise ConfigurationError(f"{path}: is a directory, expected a YAML file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot read: {exc}") from exc
    return parse_yaml(text, str(path))
