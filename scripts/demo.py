"""`make demo`: the main job end to end, on loopback only.

1. start a Debian docker-registry on a free 127.0.0.1 port, the "remote" registry, seeded with
   small generated images for every catalogue image (labelled with an rdo_version);
2. write the default ContainerImagePrepare (imageprep prepare default --local-push-destination),
   pointed at the seeded registry; the local registry is 127.0.0.1 on a free port;
3. run imageprep prepare: tag discovery, copies into the local image-serve tree (demo-work/image-serve),
   heat parameters; then run it again (nothing to copy);
4. serve the tree with imageprep serve on the local registry's address, pull one image back with
   skopeo and compare digests with the remote registry.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.catalogue_names import rehomed_namespaces  # noqa: E402
from bench.seed import ImageSet, push  # noqa: E402
from tests.support.imagegen import make_image, make_layer  # noqa: E402
from tests.support.registry_server import free_port, plain_registry_server  # noqa: E402

from imageprep.catalogue.defaults import load_defaults  # noqa: E402
from imageprep.catalogue.template import CatalogueTemplate  # noqa: E402
from imageprep.catalogue.variables import template_variables  # noqa: E402
from imageprep.model.reference import ImageReference  # noqa: E402

WORK = ROOT / "demo-work"
PREPARE = (
    "imageprep",
    "prepare",
    "-e",
    "demo-env.yaml",
    "--output-env-file",
    "images.yaml",
    "--report",
    "report.json",
    "--image-serve-root",
    "image-serve",
)
SERVE_START_TIMEOUT = 20.0
VERSION = "20261125.1"


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run(*command: str) -> str:
    print("$ " + " ".join(command), flush=True)
    result = subprocess.run(command, cwd=WORK, check=True, text=True, stdout=subprocess.PIPE)
    return result.stdout


def seed(source: str, namespaces: dict[str, str]) -> list[str]:
    """Push one small image per catalogue entry, tagged as the template says and by its version."""
    variables = template_variables(load_defaults().template_defaults, namespaces, None)
    references = [
        ImageReference.parse(i.reference) for i in CatalogueTemplate.builtin().render(variables, "demo")
    ]
    base = make_layer({"usr/share/demo-base": b"demo base layer\n" * 4096})
    images = {}
    for reference in references:
        own = make_layer({f"etc/{reference.path}": reference.path.encode()})
        images[reference.repository] = (
            reference.tag or "latest",
            make_image({"rdo_version": VERSION}, [base, own]),
        )
    for tag in {tag for tag, _ in images.values()}:
        subset = {repo: image for repo, (image_tag, image) in images.items() if image_tag == tag}
        push(source, ImageSet(subset, (base,)), tag)
    push(source, ImageSet({repo: image for repo, (_, image) in images.items()}, (base,)), VERSION)
    return [str(reference) for reference in references]


@contextmanager
def serving(root: str, listen: str) -> Iterator[None]:
    """``imageprep serve`` in the background until the block ends; waits (bounded) until it answers."""
    print(f"$ imageprep serve --root {root} --listen {listen} &", flush=True)
    process = subprocess.Popen(
        ["imageprep", "serve", "--root", root, "--listen", listen], cwd=WORK, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + SERVE_START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"http://{listen}/v2/", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("imageprep serve did not start") from None
                time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> int:
    WORK.mkdir(exist_ok=True)
    local = f"127.0.0.1:{free_port()}"
    with plain_registry_server(WORK / "remote") as remote:
        step(f"seeding the 'remote' registry {remote.host} with generated images")
        namespaces = rehomed_namespaces(remote.host)
        print(f"{len(seed(remote.host, namespaces))} images, tags current-tripleo (and others) and {VERSION}")

        step("the default prepare document, pushing to the local registry")
        run(
            "imageprep", "prepare", "default", "--local-push-destination",
            "--output-env-file", "containers-prepare-parameters.yaml",
        )  # fmt: skip
        document = yaml.safe_load((WORK / "containers-prepare-parameters.yaml").read_text())
        entry = document["parameter_defaults"]["ContainerImagePrepare"][0]
        entry["set"].update(namespaces)
        document["parameter_defaults"]["LocalContainerRegistry"] = local
        (WORK / "demo-env.yaml").write_text(yaml.safe_dump(document))
        print(f"pointed at {remote.host}; the local registry is {local}: demo-env.yaml")

        step("prepare: discover tags, copy every image into the image-serve tree, write the heat parameters")
        run(*PREPARE)
        parameters = yaml.safe_load((WORK / "images.yaml").read_text())["parameter_defaults"]
        print(f"ContainerNovaApiImage: {parameters['ContainerNovaApiImage']}")
        tree = WORK / "image-serve"
        repositories = len(list((tree / "v2").rglob("tags/list")))
        blobs = sum(1 for path in (tree / ".imageprep" / "pool").rglob("*") if path.is_file())
        print(f"image-serve tree: {repositories} repositories, {blobs} blobs, each stored once")

        step("prepare again: everything is already there")
        run(*PREPARE)
        report = json.loads((WORK / "report.json").read_text())
        print(f"second run: {report['copied']} copied, {report['skipped']} skipped")

        step("serve the tree as the local registry and pull nova-api back with skopeo")
        target = str(parameters["ContainerNovaApiImage"])
        with serving("image-serve", local):
            run("skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{target}", "oci:pulled:api")
            inspected = json.loads(run("skopeo", "inspect", "--tls-verify=false", f"docker://{target}"))
        source_reference = target.replace(local, remote.host)
        original = json.loads(run("skopeo", "inspect", "--tls-verify=false", f"docker://{source_reference}"))
        same = inspected["Digest"] == original["Digest"]
        print(f"digest {inspected['Digest']} {'matches' if same else 'DIFFERS FROM'} the source")
        return 0 if same and report["copied"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
