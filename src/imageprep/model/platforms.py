"""Which child of a manifest list this host would pull.

A single-architecture deployment only ever pulls the host's child: the copy engine copies and tags
that child alone by default, and the registry client reads labels from it. Go architecture names
are what manifest lists use.
"""

from __future__ import annotations

import os

from imageprep.model.errors import NotFoundError
from imageprep.model.manifest import Descriptor

_MACHINE_TO_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}


def host_architecture(machine: str | None = None) -> str:
    """The Go architecture name of ``machine`` (default: this host), e.g. ``x86_64`` -> ``amd64``."""
    # os.uname() is what platform.machine() reads, without importing platform (1.5 ms per run).
    machine = os.uname().machine if machine is None else machine
    return _MACHINE_TO_GOARCH.get(machine.lower(), machine.lower())


def select_child(children: tuple[Descriptor, ...], architecture: str, where: str) -> Descriptor:
    """The linux child for ``architecture``; entries without an OS are accepted as linux."""
    for child in children:
        plat = child.platform
        if plat is not None and plat.architecture == architecture and plat.os in ("linux", ""):
            return child
    available = sorted(
        f"{c.platform.os}/{c.platform.architecture}" for c in children if c.platform is not None
    )
    have = ", ".join(available) or "none"
    raise NotFoundError(
        f"manifest list of {where} has no linux/{architecture} image (it has: {have})",
        hint="copy with all architectures, or use an image built for this host's architecture",
    )
