"""OCI 1.1 referrers on a registry: the referrers API where it has one, the fallback tag where not.

A registry that processes ``subject`` answers a manifest push with an ``OCI-Subject`` header and
lists the manifest under ``GET /v2/<name>/referrers/<digest>``. One that does not (Debian's
docker-registry 2.8 among them) stores the manifest and ignores its subject; the client then keeps
an index of the subject's referrers under the tag ``sha256-<hex>`` (the referrers tag schema),
which this module updates after each such push.
"""

from __future__ import annotations

from collections.abc import Callable

from imageprep.model import mediatypes
from imageprep.model.attachments import digest_tag, index_entries, referrers_index, with_entry
from imageprep.model.errors import NotFoundError
from imageprep.model.manifest import Descriptor, Manifest
from imageprep.registry.auth import repository_scope
from imageprep.registry.connection import ApiCall, Connection
from imageprep.registry.responses import HttpResponse

MAX_INDEX_BYTES = 4 * 1024 * 1024
# What a registry without the API answers for /referrers/: it does not know the route.
_NO_API = frozenset({400, 404, 405, 501})


def read_referrers(connection: Connection, repository: str, digest: str) -> list[Descriptor] | None:
    """What the referrers API lists for ``digest``; ``None`` when the registry has no such API."""
    subject = f"referrers of {repository}@{digest}"
    call = ApiCall(
        "GET",
        f"{repository}/referrers/{digest}",
        repository_scope(repository),
        "listing",
        subject,
        headers={"Accept": mediatypes.OCI_INDEX},
        limit=MAX_INDEX_BYTES,
    )
    response = connection.send(call)
    if response.status in _NO_API:
        return None
    connection.check(response, call)
    if not (response.header("content-type") or "").startswith(mediatypes.OCI_INDEX):
        return None  # an answer of some other route (a web page): no API here
    where = f"{connection.registry}/{repository}@{digest}"
    return [Descriptor.from_json(entry, where) for entry in index_entries(response.content, where)]


def processes_subject(response: HttpResponse) -> bool:
    """Whether the registry indexed a pushed manifest's subject itself (its ``OCI-Subject`` header)."""
    return response.header("oci-subject") is not None


def record_in_fallback_tag(
    registry: str,
    repository: str,
    referrer: Manifest,
    get: Callable[[str, str], Manifest],
    put: Callable[[str, str, Manifest], object],
) -> None:
    """Add ``referrer`` to its subject's ``sha256-<hex>`` index (creating it), through ``get`` and
    ``put`` (the registry's manifest calls); nothing when it is listed already."""
    assert referrer.subject is not None
    tag = digest_tag(referrer.subject.digest)
    where = f"{registry}/{repository}:{tag}"
    try:
        entries = index_entries(get(repository, tag).raw, where)
    except NotFoundError:
        entries = []
    updated = with_entry(entries, referrer.referrer_entry())
    if updated is not None:
        put(repository, tag, Manifest.parse(referrers_index(updated), mediatypes.OCI_INDEX, where))
