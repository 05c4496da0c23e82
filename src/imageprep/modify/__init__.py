"""Modifying images in local containers storage: buildah builds, RPM installs, Ansible roles.

Layers below: :mod:`imageprep.model`. Moving images between this storage and registries is the
copy engine's job (see :mod:`imageprep.prepare.localstorage`); :class:`DirImageStore` is the
``dir:`` layout both sides understand.
"""

from typing import TYPE_CHECKING

from imageprep._lazy import lazy_attributes

if TYPE_CHECKING:
    from imageprep.modify.buildah import Buildah, BuildahSettings
    from imageprep.modify.dirstore import DirImageStore
    from imageprep.modify.recipes import check_request, modify
    from imageprep.modify.request import BUILTIN_ROLES, ModifyRequest
    from imageprep.modify.rpms import find_rpms

# Loaded on first use: a prepare without modify_role never needs buildah's driver.
__getattr__ = lazy_attributes(
    globals(),
    {
        "Buildah": "imageprep.modify.buildah",
        "BuildahSettings": "imageprep.modify.buildah",
        "DirImageStore": "imageprep.modify.dirstore",
        "check_request": "imageprep.modify.recipes",
        "modify": "imageprep.modify.recipes",
        "BUILTIN_ROLES": "imageprep.modify.request",
        "ModifyRequest": "imageprep.modify.request",
        "find_rpms": "imageprep.modify.rpms",
    },
)

__all__ = [
    "BUILTIN_ROLES",
    "Buildah",
    "BuildahSettings",
    "DirImageStore",
    "ModifyRequest",
    "check_request",
    "find_rpms",
    "modify",
]
