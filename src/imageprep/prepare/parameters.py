"""Turning prepared images into heat parameters: layering, legacy names, insecure registries, ceph."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from imageprep.prepare.evaluate import PreparedImage

_CONTAINER_PARAM = re.compile(r"Container(\w+)Image")
CEPH_DAEMON_PARAM = "ContainerCephDaemonImage"
INSECURE_PARAM = "DockerInsecureRegistryAddress"
CEPH_EXTRA_PARAM = "CephAnsibleExtraConfig"


def image_parameters(images: Iterable[PreparedImage]) -> dict[str, str]:
    """Each image's parameters set to its final reference; later images win over earlier ones."""
    parameters: dict[str, str] = {}
    for image in images:
        for name in image.params:
            parameters[name] = str(image.target)
    return parameters


def with_legacy_aliases(parameters: Mapping[str, str]) -> dict[str, str]:
    """Also write every ``Container<X>Image`` under its pre-Train name ``Docker<X>Image``."""
    result = dict(parameters)
    for name, value in parameters.items():
        match = _CONTAINER_PARAM.fullmatch(name)
        if match:
            result[f"Docker{match.group(1)}Image"] = value
    return result


def surviving_images(images: Sequence[PreparedImage]) -> list[PreparedImage]:
    """Images at least one of whose parameters was not overridden by a later image.

    An image whose every parameter a later entry replaced would be copied for nothing.
    """
    final: dict[str, int] = {}
    for position, image in enumerate(images):
        for name in image.params:
            final[name] = position
    return [image for position, image in enumerate(images) if position in final.values()]


def address_list(value: Any) -> set[str]:
    """A ``DockerInsecureRegistryAddress`` value (a list, or a comma-separated string) as addresses."""
    if isinstance(value, str):
        return {part.strip() for part in value.split(",") if part.strip()}
    if isinstance(value, list):
        return {str(item) for item in value}
    return set()


def insecure_addresses(
    declared: Iterable[str], images: Iterable[PreparedImage], is_insecure: Callable[[str], bool]
) -> list[str]:
    """Registries nodes must reach without verified TLS, sorted.

    The local image-serve registry always (it serves plain HTTP); push destinations that
    ``is_insecure`` (declared, or probed as plain HTTP / unverifiable TLS); and whatever the
    operator already listed, so writing this parameter never drops an address they had.
    """
    addresses = set(declared)
    for destination in {image.destination for image in images if image.destination is not None}:
        if destination.local or is_insecure(destination.host):
            addresses.add(destination.host)
    return sorted(addresses)


def ceph_registry_credentials(
    images: Sequence[PreparedImage],
    credentials: Mapping[str, tuple[str, str]],
    operator_extra: Any,
) -> dict[str, Any] | None:
    """``CephAnsibleExtraConfig`` carrying the ceph registry login, when credentials exist for it.

    The registry is the host of ``ceph_namespace`` of the entry that produced the final ceph daemon
    image. Keys the operator's own ``CephAnsibleExtraConfig`` has are kept as the operator wrote them.
    """
    producer = None
    for image in images:
        if CEPH_DAEMON_PARAM in image.params:
            producer = image
    if producer is None:
        return None
    host = producer.source.registry  # the image is {ceph_namespace}/{ceph_image}:{ceph_tag}
    if host not in credentials:
        return None
    username, password = credentials[host]
    extra = {"ceph_docker_registry_username": username, "ceph_docker_registry_password": password}
    if isinstance(operator_extra, dict):
        extra.update(operator_extra)
    return extra
