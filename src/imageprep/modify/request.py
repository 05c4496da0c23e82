"""What to modify, and how: the role interface of the original tooling as a plain value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imageprep.model.errors import ModificationError

# The role the original tooling ships; its entry points (tasks_from) are built in here.
BUILTIN_ROLES = frozenset({"tripleo-modify-image", "tripleo_modify_image"})
DEFAULT_TASKS_FROM = "modify_image.yml"
MODIFIED_LABEL = "modified_append_tag"


@dataclass(frozen=True, slots=True)
class ModifyRequest:
    """Modify local image ``source_image``; the result is ``(target_image or source_image) + append_tag``.

    ``variables`` are the entry's ``modify_vars`` (``tasks_from`` picks the built-in recipe).
    The append tag is concatenated as is, so it carries its own leading ``-``.
    """

    source_image: str
    append_tag: str
    role: str = "tripleo-modify-image"
    variables: Mapping[str, Any] = field(default_factory=dict)
    target_image: str | None = None

    @property
    def result_image(self) -> str:
        """The local name the modified image gets."""
        return f"{self.target_image or self.source_image}{self.append_tag}"

    @property
    def builtin(self) -> bool:
        """Whether the role is one whose entry points imageprep implements itself."""
        return self.role in BUILTIN_ROLES

    @property
    def tasks_from(self) -> str:
        """The role entry point (``modify_image.yml`` unless ``modify_vars`` says otherwise)."""
        value = self.variables.get("tasks_from")
        return str(value) if value else DEFAULT_TASKS_FROM

    @property
    def label(self) -> str:
        """How errors name what was attempted."""
        return self.tasks_from if self.builtin else f"role {self.role}"

    def path(self, key: str, *, required: bool = True) -> Path | None:
        """A path-valued ``modify_vars`` key; a missing required one is an error naming it."""
        value = self.variables.get(key)
        if value is None or value == "":
            if required:
                raise ModificationError(f"{self.tasks_from} needs modify_vars.{key}")
            return None
        if not isinstance(value, str):
            raise ModificationError(
                f"modify_vars.{key} must be a path, not {type(value).__name__}: {value!r}"
            )
        return Path(value).expanduser()

    def text_list(self, key: str) -> list[str]:
        """A ``modify_vars`` key holding a list of strings (or one comma-separated string)."""
        value = self.variables.get(key)
        if value is None or value == "":
            return []
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return [item for item in value if item]
        raise ModificationError(f"modify_vars.{key} must be a list of strings, not {value!r}")
