"""A run reuses its connections to a registry: the TLS handshakes a far-away source costs are
paid once per connection slot, not once per request (counted at a real TLS registry)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from imageprep.catalogue.defaults import load_defaults
from imageprep.catalogue.template import CatalogueTemplate
from imageprep.catalogue.variables import template_variables
from imageprep.model.blobs import BytesBody
from imageprep.model.manifest import Descriptor, Manifest
from imageprep.model.reference import ImageReference
from imageprep.registry import RegistrySession
from imageprep.registry.transport import PER_HOST
from imageprep.settings import Settings
from imageprep.usecases.prepare import PrepareRequest, prepare_images
from tests.support.imagegen import make_image, random_layer
from tests.support.registry_server import plain_registry_server, registry_available, tls_registry_server
from tests.support.tcpcount import counting_forwarder

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not registry_available(), reason="needs docker-registry"),
]
TAG = "current-tripleo"
SET = {
    "namespace": "ns.example/tripleomaster",
    "name_prefix": "centos-binary-",
    "tag": TAG,
    "ceph_images": False,
    "pushgateway_namespace": "ns.example/prometheus",
    "pushgateway_tag": TAG,
}


def _repositories() -> list[str]:
    variables = template_variables(load_defaults().template_defaults, SET, None)
    images = CatalogueTemplate.builtin().render(variables, "test")
    return [ImageReference.parse(image.reference).path for image in images]


def test_a_warm_run_opens_no_more_connections_to_a_host_than_its_concurrency(tmp_path: Path) -> None:
    repositories = _repositories()
    assert 2 * len(repositories) > 2 * PER_HOST  # two checks an image: every slot is needed twice
    with (
        tls_registry_server(tmp_path / "tls") as source,
        plain_registry_server(tmp_path / "dest") as destination,
    ):
        with RegistrySession(ca_file=source.ca_file) as seeding:
            client = seeding.client(source.host)
            for repository in repositories:
                image = make_image({"name": repository}, [random_layer(300, repository, oci=True)], oci=True)
                for blob in image.blobs:
                    client.write_blob(
                        repository,
                        Descriptor(blob.media_type, blob.digest, len(blob.data)),
                        BytesBody(blob.data),
                    )
                client.put_manifest(
                    repository, TAG, Manifest.parse(image.manifest, image.manifest_media_type, repository)
                )
        with counting_forwarder(source.host) as counted:
            entry = {
                "push_destination": destination.host,
                "set": {
                    **SET,
                    "namespace": f"{counted.host}/tripleomaster",
                    "pushgateway_namespace": f"{counted.host}/prometheus",
                },
            }
            env = tmp_path / "env.yaml"
            env.write_text(yaml.safe_dump({"parameter_defaults": {"ContainerImagePrepare": [entry]}}))
            settings = Settings(
                ca_file=source.ca_file, cache_directory=tmp_path / "cache", image_serve_root=tmp_path / "t"
            )
            request = PrepareRequest(environment_files=(env,))
            cold = prepare_images(request, settings)
            counted.reset()
            warm = prepare_images(request, settings)
    assert cold.report is not None and not cold.report.failed
    assert warm.report is not None and len(warm.report.skipped) == len(repositories)
    # One for the plain-HTTP probe a loopback host gets, then at most one per slot for the checks.
    assert counted.connections <= PER_HOST + 1, counted.connections
