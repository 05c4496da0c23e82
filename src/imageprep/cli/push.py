"""``push``: copy one image (from local container storage with ``--local``) into a registry."""

from __future__ import annotations

import argparse
import logging
import os
import socket
from pathlib import Path

from imageprep.cli.base import ImageprepCommand
from imageprep.imageserve import ImageServeTree, resolve_root
from imageprep.model.errors import ConfigurationError, TransferError
from imageprep.modify.buildah import Buildah
from imageprep.prepare.localregistry import local_registry_address
from imageprep.prepare.pushing import PushRequest, check_access, push_image
from imageprep.registry.credentials import Credential, CredentialStore, default_auth_files, normalise_host
from imageprep.registry.session import RegistrySession
from imageprep.transfer.report import Outcome

LOG = logging.getLogger(__name__)


def _pair(username: str | None, password: str | None, what: str) -> Credential | None:
    if username and password is not None:
        return Credential(username, password)
    if username or password:
        raise ConfigurationError(f"{what} needs both a username and a password")
    return None


class Push(ImageprepCommand):
    """Push an image to a registry (default: this host's local registry)."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = super().get_parser(prog_name)
        parser.add_argument(
            "image",
            metavar="IMAGE",
            help="<registry>/<namespace>/<name>[:<tag>]; a containers-storage: prefix means --local",
        )
        parser.add_argument(
            "--local",
            action="store_true",
            help="the image is in local container storage (buildah images) (default: in a registry)",
        )
        parser.add_argument(
            "--registry-url",
            metavar="HOST:PORT",
            help="destination registry (default: the local registry, <hostname>.ctlplane:8787 or "
            "localhost:8787, written as its image-serve tree on disk)",
        )
        parser.add_argument(
            "--image-serve-root",
            metavar="DIR",
            help="the local registry's image-serve tree, written when the destination is the local "
            "registry (default: $IMAGEPREP_IMAGE_SERVE_ROOT, else /var/lib/image-serve)",
        )
        parser.add_argument(
            "--append-tag",
            default="",
            metavar="TEXT",
            help="appended verbatim to the tag at the destination (default: nothing)",
        )
        parser.add_argument("--username", help="destination registry user (default: from auth files)")
        parser.add_argument("--password", help="destination registry password (default: from auth files)")
        parser.add_argument("--source-username", help="source registry user (default: from auth files)")
        parser.add_argument("--source-password", help="source registry password (default: from auth files)")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="only check the source exists and log in to the registries; copy nothing (default: off)",
        )
        parser.add_argument(
            "--multi-arch",
            action="store_true",
            help="copy every architecture of a manifest list (default: this host's only)",
        )
        parser.add_argument(
            "--insecure-registry",
            dest="insecure_registries",
            action="append",
            default=[],
            metavar="HOST:PORT",
            help="reach this registry over plain HTTP or unverified TLS, repeatable (default: none; "
            "loopback registries without TLS are found by themselves)",
        )
        parser.add_argument(
            "--ca-file",
            type=Path,
            metavar="FILE",
            help="extra CA certificates to trust (default: $SSL_CERT_FILE, else none)",
        )
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        local_registry = local_registry_address(None, socket.gethostname())
        registry = parsed_args.registry_url or local_registry
        request = PushRequest.parse(
            parsed_args.image,
            local=parsed_args.local,
            registry=registry,
            append_tag=parsed_args.append_tag,
            all_architectures=parsed_args.multi_arch,
        )
        explicit: dict[str, Credential] = {}
        destination_login = _pair(parsed_args.username, parsed_args.password, "--username/--password")
        source_login = _pair(
            parsed_args.source_username, parsed_args.source_password, "--source-username/--source-password"
        )
        if source_login is not None:
            if request.local:
                LOG.warning("--source-username/--source-password are ignored for a local image")
            else:
                explicit[normalise_host(request.source.registry)] = source_login
        if destination_login is not None:
            explicit[normalise_host(request.registry)] = destination_login
        credentials = CredentialStore(explicit, default_auth_files(os.environ, Path.home()))
        ca_file = parsed_args.ca_file or (
            Path(os.environ["SSL_CERT_FILE"]) if os.environ.get("SSL_CERT_FILE") else None
        )
        buildah = Buildah()
        # The local registry is served read-only from the image-serve tree: write the tree itself.
        tree = None
        if request.registry == local_registry:
            tree = ImageServeTree(resolve_root(parsed_args.image_serve_root, os.environ))
        insecure = parsed_args.insecure_registries
        with RegistrySession(credentials, insecure=insecure, ca_file=ca_file) as session:
            if parsed_args.dry_run:
                check_access(request, session, buildah, destination_is_registry=tree is None)
                where = f" (image-serve tree {tree.root})" if tree is not None else ""
                self.app.stdout.write(f"would push {parsed_args.image} to {request.target}{where}\n")
                return 0
            result = push_image(request, session, buildah, tree)
        if result.outcome is Outcome.FAILED:
            raise TransferError(f"cannot push {result.source} to {request.target}: {result.error}")
        verb = "already there" if result.outcome is Outcome.SKIPPED else "pushed"
        self.app.stdout.write(f"{request.target} {result.digest} ({verb})\n")
        return 0
