"""The document ``prepare default`` writes: the default entry list, optionally adjusted."""

from __future__ import annotations

from typing import Any

from imageprep.catalogue.defaults import Defaults


def default_document(
    defaults: Defaults, *, local_push_destination: bool = False, enable_registry_login: bool = False
) -> dict[str, Any]:
    """``{parameter_defaults: {ContainerImagePrepare: [...], ...}}``."""
    entries = defaults.container_image_prepare()
    if local_push_destination:
        for entry in entries:
            if isinstance(entry, dict):
                entry["push_destination"] = True
    parameters: dict[str, Any] = {"ContainerImagePrepare": entries}
    if enable_registry_login:
        parameters["ContainerImageRegistryLogin"] = True
    return {"parameter_defaults": parameters}
