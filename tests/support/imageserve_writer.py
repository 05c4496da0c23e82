"""A separate process that copies generated images into an image-serve tree through the copy engine.

``python -m tests.support.imageserve_writer ROOT --images N [--delay S] [--prefix P]`` copies N
small images (a shared base layer plus one own layer each) from an in-memory source into the tree;
``--delay`` slows every source chunk so a test can kill the process part-way. Exit status 0 when
every image was copied (or already there); the report goes to stdout as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imageprep.imageserve import ImageServeTree
from imageprep.transfer import CopyJob, Outcome, copy_images
from tests.support.imagegen import make_image, make_layer, random_layer
from tests.support.memory_store import MemoryStore

BASE = random_layer(24 * 1024, "imageserve-writer-base")


def jobs(root: Path, images: int, delay: float, prefix: str) -> list[CopyJob]:
    source = MemoryStore("memory-source", chunk_size=4096)
    source.faults.chunk_delay = delay
    tree = ImageServeTree(root)
    result = []
    for number in range(images):
        repository = f"{prefix}/image-{number:02d}"
        own = make_layer({f"etc/image-{number}": random_layer(8 * 1024, f"own-{number}").data})
        source.add_image(repository, "current", make_image({"number": str(number)}, [BASE, own]))
        result.append(CopyJob(source, repository, "current", tree, repository, "current"))
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--prefix", default="writer")
    args = parser.parse_args(argv)
    report = copy_images(jobs(args.root, args.images, args.delay, args.prefix), concurrency=2)
    outcomes = [result.outcome.value for result in report.images]
    errors = [result.error for result in report.images if result.error]
    print(json.dumps({"outcomes": outcomes, "errors": errors}))
    return 0 if all(result.outcome is not Outcome.FAILED for result in report.images) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
