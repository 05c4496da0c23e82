"""``push``: parse, settings, one call of the library, print."""

from __future__ import annotations

import argparse

from imageprep.cli.base import ImageprepCommand, add_signature_option, allow_dash_values, settings
from imageprep.settings import add_registry_options
from imageprep.transfer.report import Outcome
from imageprep.usecases.locations import locate
from imageprep.usecases.push import PushRequest, push


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
            "--append-tag",
            default="",
            metavar="TEXT",
            help="appended verbatim to the tag at the destination; may start with '-' "
            "(--append-tag -pushed) (default: nothing)",
        )
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
            "--cleanup",
            action="store_true",
            help="accepted for scripts written for the original command, where it removed nothing "
            "either: no image is ever removed by push (default: off)",
        )
        add_signature_option(parser)
        add_registry_options(parser, login="the destination registry", source_login=True)
        allow_dash_values(parser, "--append-tag")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        run_settings = settings(parsed_args)
        request = PushRequest.parse(
            parsed_args.image,
            local=parsed_args.local,
            destination=locate(run_settings, parsed_args.registry_url),
            append_tag=parsed_args.append_tag,
            all_architectures=parsed_args.multi_arch,
            cleanup=parsed_args.cleanup,
            dry_run=parsed_args.dry_run,
            signatures=not parsed_args.remove_signatures,
        )
        outcome = push(request, run_settings)
        where = f" (image-serve tree {outcome.tree})" if outcome.tree is not None else ""
        if outcome.result is None:
            self.app.stdout.write(f"would push {parsed_args.image} to {outcome.target}{where}\n")
            return 0
        verb = "already there" if outcome.result.outcome is Outcome.SKIPPED else "pushed"
        attached = outcome.result.attachments.copied
        if attached:
            verb += f"; {attached} signature{'s' if attached > 1 else ''} and attachments copied"
        self.app.stdout.write(f"{outcome.target} {outcome.result.digest} ({verb})\n")
        return 0
