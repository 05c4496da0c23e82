"""The small text files that tell a plain web server how to answer: type maps and ``.htaccess``.

A type map (Apache mod_negotiation) lists, for one tag, each stored variant's media type and the
manifest file it is in; the server picks by the client's ``Accept``. The tagged manifest comes
first; any other variant (the default child of a manifest list, for clients that cannot read
lists) gets a lower source quality (``qs``) so that a client accepting both gets the list, as a
registry would answer, rather than Apache's tie-break on the smaller file.
"""

from __future__ import annotations

from collections.abc import Sequence

SECONDARY_QUALITY = "0.5"


def render_type_map(tag: str, variants: Sequence[tuple[str, str]]) -> str:
    """A type map for ``tag``; ``variants`` are ``(media type, URI)``, the tagged manifest first."""
    lines = [f"URI: {tag}", ""]
    for position, (media_type, uri) in enumerate(variants):
        quality = f"; qs={SECONDARY_QUALITY}" if position else ""
        lines += [f"Content-Type: {media_type}{quality}", f"URI: {uri}", ""]
    return "\n".join(lines) + "\n"


def parse_type_map(text: str) -> dict[str, str]:
    """``{media type: URI}`` in file order; records lacking either key (the header) are skipped."""
    variants: dict[str, str] = {}
    for record in _records(text):
        media_type = record.get("content-type", "").split(";", 1)[0].strip()
        uri = record.get("uri", "")
        if media_type and uri:
            variants.setdefault(media_type, uri)
    return variants


def _records(text: str) -> list[dict[str, str]]:
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                records.append(current)
            current = {}
            continue
        key, colon, value = line.partition(":")
        if colon:
            current.setdefault(key.strip().lower(), value.strip())
    if current:
        records.append(current)
    return records


def render_htaccess(media_type: str, digest: str) -> str:
    """The headers Apache adds to a manifest served by digest: its type, digest and ETag."""
    return (
        f'Header set Content-Type "{media_type}"\n'
        f'Header set Docker-Content-Digest "{digest}"\n'
        f'Header set ETag "{digest}"\n'
    )


def htaccess_media_type(text: str) -> str | None:
    """The ``Content-Type`` an ``.htaccess`` written by :func:`render_htaccess` (or upstream) sets."""
    for line in text.splitlines():
        words = line.split(None, 3)
        if len(words) == 4 and words[:3] == ["Header", "set", "Content-Type"]:
            return words[3].strip().strip('"') or None
    return None
