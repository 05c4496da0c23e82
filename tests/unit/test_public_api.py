"""The public API is exactly what ``imageprep.__all__`` lists; entry points name real classes."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import imageprep

ROOT = Path(__file__).resolve().parents[2]


def test_public_api_is_pinned() -> None:
    assert sorted(imageprep.__all__) == [
        "ImageReference",
        "ImageprepError",
        "PrepareOutcome",
        "PrepareRequest",
        "Settings",
        "__version__",
        "container_images_prepare_multi",
        "prepare_images",
    ]
    for name in imageprep.__all__:
        assert hasattr(imageprep, name)


def test_entry_points_resolve() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    targets = [project["scripts"]["imageprep"]]
    for group in project["entry-points"].values():
        targets.extend(group.values())
    for target in targets:
        module, _, attribute = target.partition(":")
        loaded = importlib.import_module(module)
        if attribute:
            assert callable(getattr(loaded, attribute)), target
