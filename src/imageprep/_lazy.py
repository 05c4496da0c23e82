"""Package attributes imported on first use (PEP 562), so that importing a package stays cheap.

``imageprep prepare`` touches the image-serve and modification packages only for a constant or
a type; loading their stores, servers and buildah drivers for that would be paid on every run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(namespace: dict[str, Any], sources: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for the module whose ``globals()`` is ``namespace``: it imports
    ``name`` from the module ``sources[name]`` when asked for it, once."""

    def attribute(name: str) -> Any:
        module = sources.get(name)
        if module is None:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later lookups find it without coming here
        return value

    return attribute
