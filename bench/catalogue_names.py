"""The 95 repositories of imageprep's own catalogue, rendered with the built-in defaults."""

from __future__ import annotations

from imageprep.catalogue.defaults import load_defaults
from imageprep.catalogue.template import CatalogueTemplate
from imageprep.catalogue.variables import template_variables
from imageprep.model.reference import ImageReference

TAG = "current-tripleo"


def rehomed_namespaces(source: str) -> dict[str, str]:
    """Every ``*namespace`` value of the built-in defaults moved onto ``source``, keeping its path."""
    return {
        key: f"{source}/{ImageReference.parse(value + '/x').path.rsplit('/', 1)[0]}"
        for key, value in load_defaults().template_defaults.items()
        if key.endswith("namespace")
    }


def prepare_environment(source: str, destination: str) -> dict[str, object]:
    """A heat environment whose ``imageprep prepare`` copies exactly :func:`repositories`.

    Every namespace is moved onto ``source`` and every tag set to :data:`TAG`, without tag
    discovery: the same work ``skopeo sync`` is given.
    """
    tags = {key: TAG for key in load_defaults().template_defaults if key.endswith("tag")}
    entry = {"push_destination": destination, "set": {**rehomed_namespaces(source), **tags}}
    return {"parameter_defaults": {"ContainerImagePrepare": [entry]}}


def repositories() -> list[str]:
    """``tripleomaster/centos-binary-nova-api``, ``ceph/daemon``, ...: one per catalogue image."""
    variables = template_variables(load_defaults().template_defaults, {}, None)
    images = CatalogueTemplate.builtin().render(variables, "benchmark")
    return [ImageReference.parse(image.reference).repository for image in images]
