"""The 95 repositories of imageprep's own catalogue, rendered with the built-in defaults."""

from __future__ import annotations

from imageprep.catalogue.defaults import load_defaults
from imageprep.catalogue.template import CatalogueTemplate
from imageprep.catalogue.variables import template_variables
from imageprep.model.reference import ImageReference

TAG = "current-tripleo"


def repositories() -> list[str]:
    """``tripleomaster/centos-binary-nova-api``, ``ceph/daemon``, ...: one per catalogue image."""
    variables = template_variables(load_defaults().template_defaults, {}, None)
    images = CatalogueTemplate.builtin().render(variables, "benchmark")
    return [ImageReference.parse(image.reference).repository for image in images]
