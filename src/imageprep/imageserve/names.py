"""Names that become paths: repository names, tags and digests checked before any file is touched.

The tree maps API names straight onto directories, so the distribution grammar is also our path
safety rule: a component can never be ``.``, ``..``, empty or absolute, and never contains ``/``,
NUL or a leading dot (the prefix of our temporary and internal files). Components that equal the
tree's own directory names are refused too, so one repository can never land inside another's
``blobs``, ``manifests`` or ``tags``.
"""

from __future__ import annotations

import re

from imageprep.model.errors import ImageServeError
from imageprep.model.reference import MAX_NAME_LENGTH, PATH_COMPONENT, TAG

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# The OCI digest grammar, and the encodings of the algorithms it registers.
_ANY_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_REGISTERED = {"sha256": re.compile(r"[0-9a-f]{64}"), "sha512": re.compile(r"[0-9a-f]{128}")}
RESERVED_COMPONENTS = frozenset({"blobs", "manifests", "tags", "referrers"})
_SHOWN = 80


def _shown(value: str) -> str:
    text = value if len(value) <= _SHOWN else value[:_SHOWN] + "..."
    return repr(text)


def check_repository(name: str) -> str:
    """``name`` when it is a repository path the tree can hold; ImageServeError otherwise."""
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ImageServeError(
            f"invalid repository name {_shown(name)} for the image-serve tree: "
            f"it must be 1 to {MAX_NAME_LENGTH} characters"
        )
    for component in name.split("/"):
        if not PATH_COMPONENT.fullmatch(component):
            raise ImageServeError(
                f"invalid repository name {_shown(name)} for the image-serve tree",
                hint="repository names are lower-case letters and digits in /-separated components, "
                "with single separators (. _ __ -) inside a component",
            )
        if component in RESERVED_COMPONENTS:
            raise ImageServeError(
                f"repository name {_shown(name)} uses {component!r} as a path component, which the "
                "image-serve tree reserves for its own directories"
            )
    return name


def check_tag(tag: str) -> str:
    """``tag`` when it is a valid tag (letters, digits, ``_ . -``, 1-128, no leading ``.`` or ``-``)."""
    if not TAG.fullmatch(tag) or not tag.isascii():
        raise ImageServeError(
            f"invalid tag {_shown(tag)} for the image-serve tree",
            hint="tags are up to 128 ASCII letters, digits, '_', '.' and '-', not starting with '.' or '-'",
        )
    return tag


def check_digest(digest: str) -> str:
    """``digest`` when it is ``sha256:`` and 64 lower-case hex digits (the only kind the tree stores)."""
    if not DIGEST.fullmatch(digest):
        raise ImageServeError(
            f"invalid digest {_shown(digest)} for the image-serve tree",
            hint="the tree stores sha256 digests only (sha256: and 64 lower-case hex digits)",
        )
    return digest


def is_well_formed_digest(digest: str) -> bool:
    """Whether ``digest`` is a valid OCI digest of any algorithm (the tree holds sha256 only).

    A well-formed digest the tree cannot hold names content that is simply not here (404), while
    a malformed one is the client's mistake (400).
    """
    if not _ANY_DIGEST.fullmatch(digest):
        return False
    algorithm, _, encoded = digest.partition(":")
    registered = _REGISTERED.get(algorithm)
    return registered is None or registered.fullmatch(encoded) is not None


def is_digest(reference: str) -> bool:
    """Whether a manifest reference is a digest (tags never contain ``:``)."""
    return ":" in reference


def check_reference(reference: str) -> str:
    """A tag or a digest, checked as whichever it is."""
    return check_digest(reference) if is_digest(reference) else check_tag(reference)
