"""Fixtures of the documentation example tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.docs.registries import DocRegistries


@pytest.fixture(scope="session")
def doc_registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocRegistries]:
    """Loopback registries for the placeholders, started on first use and always stopped."""
    registries = DocRegistries(tmp_path_factory.mktemp("doc-registries"))
    try:
        yield registries
    finally:
        registries.close()
