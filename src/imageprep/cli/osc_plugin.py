"""openstackclient plugin: the same command classes as ``openstack tripleo container image X``.

openstackclient loads this module through the ``openstack.cli.extension`` entry point and the
commands through ``openstack.imageprep.v1``. imageprep talks to no OpenStack API, so the
client factory returns nothing.
"""

from __future__ import annotations

import argparse
from typing import Any

API_NAME = "imageprep"
API_VERSION_OPTION = "os_imageprep_api_version"
API_VERSIONS = {"1": "imageprep.cli.osc_plugin"}
DEFAULT_API_VERSION = "1"


def make_client(instance: Any) -> None:
    """No API client: every command works on registries and local files."""
    return None


def build_option_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """No global options of our own."""
    return parser
