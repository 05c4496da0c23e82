"""The loopback registries that documentation examples name by placeholder.

``REGISTRY`` (plain HTTP), ``AUTH_REGISTRY`` (basic auth, user ``deployer``), ``TLS_REGISTRY``
(HTTPS with its CA in ``CA_FILE``) are started once, when the first example needs them, and seeded
with a few generated tripleomaster images (``REGISTRY``'s nova-api signed, cosign-style);
``DEST_REGISTRY`` is a fresh, empty registry for each
example that uses it. Every process started here is stopped by :meth:`DocRegistries.close`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

from tests.support import cosign
from tests.support.imagegen import GeneratedImage, make_image, make_layer
from tests.support.registry_server import (
    RunningRegistry,
    basic_auth_registry_server,
    plain_registry_server,
    tls_registry_server,
)
from tests.support.seeding import seed_image

# The seed document's Delorean hash, so that the docs read like the original examples.
RDO_VERSION = "35414701c176a6288fc2ad141dad0f73624dcb94_43527485"
VERSION, RELEASE = "17.1.0", "20260115"
TEMPLATE_TAG = "current-tripleo"
AUTH_USER, AUTH_PASSWORD = "deployer", "Example-Passw0rd"
SEEDED_NAMES = (
    "nova-api",
    "nova-compute",
    "neutron-metadata-agent",
    "neutron-metadata-agent-ovn",
    "keystone",
)
SHARED_BASE = make_layer({"usr/share/doc-example-base": b"a base layer every image shares\n" * 32}, oci=True)

SESSION_PLACEHOLDERS = ("REGISTRY", "AUTH_REGISTRY", "TLS_REGISTRY", "CA_FILE")
PLACEHOLDER = re.compile(r"\b(DEST_REGISTRY|AUTH_REGISTRY|TLS_REGISTRY|REGISTRY|CA_FILE)\b")


def _image(name: str) -> GeneratedImage:
    labels = {"name": name, "rdo_version": RDO_VERSION, "version": VERSION, "release": RELEASE}
    return make_image(
        labels, [SHARED_BASE, make_layer({f"etc/{name}/marker": name.encode()}, oci=True)], oci=True
    )


def _seed_repository(registry: RunningRegistry, name: str, tags: tuple[str, ...]) -> None:
    for tag in tags:  # one repository's pushes in turn: docker-registry races on a shared blob
        seed_image(registry, f"tripleomaster/centos-binary-{name}", tag, _image(name))


def _seed(registry: RunningRegistry, names: tuple[str, ...], tags: tuple[str, ...]) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        for future in [pool.submit(_seed_repository, registry, name, tags) for name in names]:
            future.result()


def _sign(registry: RunningRegistry, name: str) -> None:
    """A cosign-style signature of ``name``'s image, under its ``sha256-<hex>.sig`` tag."""
    repository = f"tripleomaster/centos-binary-{name}"
    digest = _image(name).digest
    signature = cosign.signature_artifact(cosign.cosign_key(), f"{registry.host}/{repository}", digest)
    cosign.push_artifact(registry.host, repository, cosign.cosign_tag(digest), signature)


class DocRegistries:
    """Placeholders to loopback addresses, starting what an example needs on first use."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._stack = ExitStack()
        self._session: dict[str, RunningRegistry] = {}
        self._counter = 0

    def _start(
        self, kind: str, factory: Callable[[Path], AbstractContextManager[RunningRegistry]]
    ) -> RunningRegistry:
        self._counter += 1
        return self._stack.enter_context(factory(self._directory / f"{kind}-{self._counter}"))

    def _shared(self, name: str) -> RunningRegistry:
        if name not in self._session:
            if name == "REGISTRY":
                registry = self._start("plain", plain_registry_server)
                _seed(registry, SEEDED_NAMES, (TEMPLATE_TAG, RDO_VERSION, f"{VERSION}-{RELEASE}"))
                _sign(registry, "nova-api")
            elif name == "AUTH_REGISTRY":
                registry = self._start(
                    "basic", lambda root: basic_auth_registry_server(root, AUTH_USER, AUTH_PASSWORD)
                )
                _seed(registry, ("nova-api",), (TEMPLATE_TAG, RDO_VERSION))
            else:
                registry = self._start("tls", tls_registry_server)
                _seed(registry, ("nova-api",), (TEMPLATE_TAG, RDO_VERSION))
            self._session[name] = registry
        return self._session[name]

    @contextmanager
    def values_for(self, text: str) -> Iterator[dict[str, str]]:
        """The value of every placeholder ``text`` uses; a fresh DEST_REGISTRY lives until exit."""
        used = set(PLACEHOLDER.findall(text))
        values: dict[str, str] = {}
        with ExitStack() as local:
            for name in sorted(used):
                if name == "DEST_REGISTRY":
                    self._counter += 1
                    root = self._directory / f"dest-{self._counter}"
                    values[name] = local.enter_context(plain_registry_server(root)).host
                elif name == "CA_FILE":
                    values[name] = str(self._shared("TLS_REGISTRY").ca_file)
                else:
                    values[name] = self._shared(name).host
            yield values

    def close(self) -> None:
        self._stack.close()


def substitute(text: str, values: dict[str, str]) -> str:
    """``text`` with every placeholder replaced by its value (those not in ``values`` are kept)."""
    return PLACEHOLDER.sub(lambda match: values.get(match[1], match[0]), text)
