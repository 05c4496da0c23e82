"""An entry whose includes name no image of the catalogue says so instead of preparing nothing."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from imageprep.catalogue.roles import Role
from tests.support.preparing import prepare


def _warnings(caplog: pytest.LogCaptureFixture, parameters: dict[str, Any], **options: Any) -> list[str]:
    with caplog.at_level(logging.WARNING, logger="imageprep"):
        prepare(parameters, **options)
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


def test_includes_matching_no_image_warn_naming_the_entry_and_patterns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    entries = [{"set": {"tag": "l"}}, {"set": {"tag": "l"}, "includes": ["nova-apj", "^quay.io/nope"]}]
    assert _warnings(caplog, {"ContainerImagePrepare": entries}) == [
        "env.yaml: ContainerImagePrepare[1]: includes 'nova-apj', '^quay.io/nope' match no image of "
        "the catalogue, so this entry prepares nothing"
    ]


def test_includes_naming_an_image_this_entry_does_not_render_warn(caplog: pytest.LogCaptureFixture) -> None:
    entry = {"set": {"tag": "l", "neutron_driver": "other"}, "includes": ["ovn-controller"]}
    (message,) = _warnings(caplog, {"ContainerImagePrepare": [entry]})
    assert message.startswith("env.yaml: ContainerImagePrepare[0]: includes 'ovn-controller' match no image")


def test_includes_that_match_do_not_warn_even_when_no_role_needs_the_images(
    caplog: pytest.LogCaptureFixture,
) -> None:
    roles = (Role("Compute", 1, ("OS::TripleO::Services::NovaCompute",)),)
    entries = [
        {"set": {"tag": "l"}, "includes": ["nova-compute"]},
        {"set": {"tag": "l"}, "includes": ["keystone"]},
    ]
    assert _warnings(caplog, {"ContainerImagePrepare": entries}, roles=roles) == []
