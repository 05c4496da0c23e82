"""An independent check of a whole image-serve tree: every reachable file complete and correct.

Written against the on-disk layout only (no imageprep code), so it can judge what the writer left
behind, for example after the writer was killed with SIGKILL.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
RESERVED = ("blobs", "manifests", "tags")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _repositories(v2: Path) -> list[Path]:
    found = []
    for directory, subdirectories, _ in os.walk(v2):
        path = Path(directory)
        subdirectories[:] = [
            d for d in subdirectories if not d.startswith(".") and d not in ("blobs", "manifests", "tags")
        ]
        if all((path / name).is_dir() for name in ("blobs", "manifests", "tags")):
            found.append(path)
    return found


def _check_manifest(repository: Path, digest: str, problems: list[str]) -> None:
    directory = repository / "manifests" / digest
    index = directory / "index.json"
    if not index.is_file():
        problems.append(f"{directory}: no index.json")
        return
    if _sha256(index) != digest:
        problems.append(f"{index}: content does not hash to {digest}")
        return
    document = json.loads(index.read_bytes())
    typed = [p.name for p in directory.glob("manifest.*")]
    if len(typed) != 1 or not os.path.samefile(directory / typed[0], index):
        problems.append(f"{directory}: expected one manifest.EXT hard link, found {typed}")
    if not (directory / ".htaccess").is_file() or digest not in (directory / ".htaccess").read_text():
        problems.append(f"{directory}: missing or wrong .htaccess")
    if "manifests" in document:
        for child in document["manifests"]:
            if not (repository / "manifests" / child["digest"] / "index.json").is_file():
                problems.append(f"{index}: child manifest {child['digest']} missing")
        return
    for blob in [document["config"], *document["layers"]]:
        path = repository / "blobs" / blob["digest"]
        if not path.is_file():
            problems.append(f"{index}: blob {blob['digest']} missing")
        elif path.stat().st_size != blob["size"] or _sha256(path) != blob["digest"]:
            problems.append(f"{path}: wrong size or digest")


def verify_tree(root: Path, *, indexes: bool = True) -> list[str]:
    """Everything wrong with the tree at ``root`` (an empty list means it is sound).

    ``indexes=False`` leaves out whether ``_catalog`` and ``tags/list`` are up to date: a writer
    killed between writing a tag and rewriting those lags them (every file is still whole), and
    the next writer to open the tree brings them up to date.
    """
    problems: list[str] = []
    v2 = root / "v2"
    if json.loads((v2 / "index.json").read_text()) != {}:
        problems.append("v2/index.json is not {}")
    repositories = _repositories(v2)
    names = sorted(p.relative_to(v2).as_posix() for p in repositories)
    catalog = json.loads((v2 / "_catalog").read_text())
    if indexes and sorted(catalog["repositories"]) != names:
        problems.append(f"_catalog lists {catalog['repositories']}, the tree holds {names}")
    for repository in repositories:
        manifests = repository / "manifests"
        for entry in manifests.iterdir():
            if DIGEST.fullmatch(entry.name):
                _check_manifest(repository, entry.name, problems)
        tags = sorted(p.name[: -len(".type-map")] for p in manifests.glob("*.type-map"))
        tags_list = repository / "tags" / "list"
        if indexes or tags_list.exists():  # a writer killed before its first tag leaves none
            listed = json.loads(tags_list.read_text())
            if indexes and listed["tags"] != tags:
                problems.append(f"{repository}/tags/list says {listed['tags']}, type maps say {tags}")
        for tag in tags:
            text = (manifests / f"{tag}.type-map").read_text()
            uris = re.findall(r"^URI: (sha256:[0-9a-f]{64})/index\.json$", text, re.MULTILINE)
            if not uris:
                problems.append(f"{tag}.type-map names no manifest")
            for uri in uris:
                if not (manifests / uri / "index.json").is_file():
                    problems.append(f"{tag}.type-map points at missing {uri}")
            link = manifests / f"{tag}.ref"
            if not link.is_symlink() or os.readlink(link) != uris[0]:
                problems.append(f"{link} does not point at the tagged manifest {uris[0]}")
        for blob in (repository / "blobs").iterdir():
            if blob.name.startswith("."):
                continue
            if _sha256(blob) != blob.name:
                problems.append(f"{blob}: content does not hash to its name")
            pooled = root / ".imageprep" / "pool" / "sha256" / blob.name.split(":", 1)[1]
            if not pooled.exists() or not os.path.samefile(blob, pooled):
                problems.append(f"{blob} is not a hard link to its pool copy")
    return problems


def visible_files(root: Path) -> set[str]:
    """Every non-hidden file under ``v2/`` (what a web server could be asked for)."""
    found = set()
    for directory, subdirectories, files in os.walk(root / "v2"):
        subdirectories[:] = [d for d in subdirectories if not d.startswith(".")]
        found.update(str(Path(directory, f).relative_to(root)) for f in files if not f.startswith("."))
    return found
