"""Which stored variant of a tag a client gets, from its ``Accept`` header(s).

The same rule the generated Apache type maps encode: the client's quality for a media type times
a source quality of 1 for the tagged manifest and 0.5 for any other variant (the default child of
a manifest list), highest wins, ties go to the tagged manifest. A client that accepts none of the
variants still gets the tagged manifest (as registries do for clients that send no ``Accept``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

PRIMARY_QUALITY = 1.0
SECONDARY_QUALITY = 0.5


def parse_accept(headers: Iterable[str]) -> dict[str, float]:
    """``{media range: q}`` from every ``Accept`` header line; malformed q-values count as 1."""
    ranges: dict[str, float] = {}
    for header in headers:
        for item in header.split(","):
            media_range, *parameters = (part.strip() for part in item.split(";"))
            if not media_range:
                continue
            quality = 1.0
            for parameter in parameters:
                name, _, value = parameter.partition("=")
                if name.strip().lower() == "q":
                    try:
                        quality = min(max(float(value), 0.0), 1.0)
                    except ValueError:
                        quality = 1.0
            media_range = media_range.lower()
            ranges[media_range] = max(quality, ranges.get(media_range, 0.0))
    return ranges


def _client_quality(accepted: dict[str, float], media_type: str) -> float:
    for candidate in (media_type, media_type.split("/", 1)[0] + "/*", "*/*"):
        if candidate in accepted:
            return accepted[candidate]
    return 0.0


def choose_variant(media_types: Sequence[str], accept_headers: Iterable[str]) -> str | None:
    """The media type to serve out of ``media_types`` (the tagged manifest's first); None if empty."""
    if not media_types:
        return None
    accepted = parse_accept(accept_headers)
    if not accepted:
        return media_types[0]
    best = media_types[0]
    best_score = 0.0
    for position, media_type in enumerate(media_types):
        source = PRIMARY_QUALITY if position == 0 else SECONDARY_QUALITY
        score = _client_quality(accepted, media_type.lower()) * source
        if score > best_score:
            best, best_score = media_type, score
    return best
