"""Count blob uploads and mounts from a docker-registry access log.

A completed upload is a ``PUT`` (or monolithic ``POST``) carrying ``digest=`` that answered 201;
a mount is a ``POST ...?mount=`` that answered 201. This is how the benchmark checks that every
unique blob crossed the wire exactly once.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<uri>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) ')


@dataclass
class BlobTraffic:
    """Uploads and mounts per digest, plus the number of requests seen."""

    uploads: Counter[str] = field(default_factory=Counter)
    mounts: Counter[str] = field(default_factory=Counter)
    requests: int = 0


def read_traffic(log: Path, start: int = 0) -> BlobTraffic:
    """Parse the access log from byte offset ``start``."""
    traffic = BlobTraffic()
    with log.open("rb") as handle:
        handle.seek(start)
        text = handle.read().decode("utf-8", "replace")
    for match in _LINE.finditer(text):
        traffic.requests += 1
        if match["status"] != "201":
            continue
        parts = urlsplit(match["uri"])
        query = parse_qs(parts.query)
        if "/blobs/uploads/" not in parts.path:
            continue
        if match["method"] == "POST" and "mount" in query:
            traffic.mounts[query["mount"][0]] += 1
        elif match["method"] in ("PUT", "POST") and "digest" in query:
            traffic.uploads[query["digest"][0]] += 1
    return traffic
