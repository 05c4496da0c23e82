"""The one place the benchmark builds imageprep's side: a registry store for a loopback host.

This is the integration point with :mod:`imageprep.registry`, imported lazily so the rest of the
benchmark (seeding, skopeo timings) works even when the registry layer is broken or absent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from imageprep.transfer.store import ImageStore


@contextmanager
def make_registry_store(host: str) -> Iterator[ImageStore]:
    """An :class:`ImageStore` for the plain-HTTP registry at ``host`` (``127.0.0.1:PORT``), closed on exit."""
    if not host.startswith("127.0.0."):
        raise ValueError(f"the benchmark only talks to loopback registries, not {host}")
    from imageprep.registry import RegistrySession

    with RegistrySession(insecure=[host]) as session:
        yield session.client(host)
