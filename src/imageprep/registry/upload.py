"""Uploading one blob: open an upload session, send the bytes, commit under the digest.

An upload is retried as a whole (a new session, the bytes from the first one again), because a
session whose request broke off may hold any part of what was sent. The bytes come from a
:class:`~imageprep.model.blobs.BlobBody` that can stream them again; when the *body* fails (its
source stopped answering, or its bytes turned out damaged), the upload is abandoned and that
failure handed up unretried: it is the source's to retry, not the destination's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from urllib.parse import urljoin

from imageprep.model.blobs import BlobBody
from imageprep.model.errors import DigestMismatchError, ImageprepError, RegistryError, TransientError
from imageprep.model.manifest import Descriptor
from imageprep.registry.auth import PULL, PUSH, repository_scope
from imageprep.registry.connection import ApiCall, Connection
from imageprep.registry.digests import Slicer
from imageprep.registry.responses import HttpResponse

MiB = 1024 * 1024
_OCTET_STREAM = {"Content-Type": "application/octet-stream"}


@dataclass(frozen=True, slots=True)
class UploadPolicy:
    """Blobs up to ``monolithic_limit`` bytes go in one streamed PUT; larger ones in ``chunk_size`` PATCHes.

    The PUT streams, so a large limit costs no memory; it saves round trips on every layer.
    """

    monolithic_limit: int = 64 * MiB
    chunk_size: int = 8 * MiB


class BodyFailed(Exception):  # noqa: N818 - a signal, not an error of its own
    """The bytes being uploaded could not be had; carries why (never retried by the upload)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _guarded(chunks: Iterable[bytes]) -> Iterator[bytes]:
    try:
        yield from chunks
    except BodyFailed:
        raise
    except EOFError as exc:  # a slice of the body ran out: the body is shorter than it should be
        raise BodyFailed(DigestMismatchError(f"the blob's bytes {exc}")) from exc
    except Exception as exc:
        raise BodyFailed(exc) from exc


def start_upload(
    connection: Connection, repository: str, subject: str, params: dict[str, str] | None
) -> tuple[HttpResponse, ApiCall]:
    """``POST .../blobs/uploads/`` (with ``mount``/``from`` to mount); retried like any small request.

    Returns the answer and the call (for checking the answer with the call's wording).
    """
    scope = repository_scope(repository, PUSH)
    source = (params or {}).get("from")
    if source is not None and source != repository:
        scope += " " + repository_scope(source, PULL)
    action = "mounting" if params else "starting upload of"
    call = ApiCall("POST", f"{repository}/blobs/uploads/", scope, action, subject, params=params, body=b"")
    return connection.send(call), call


def upload_location(connection: Connection, response: HttpResponse, subject: str) -> str:
    """Where the opened session continues (relative locations resolved)."""
    location = response.header("location")
    if not location:
        raise RegistryError(
            f"registry {connection.registry} opened an upload of {subject} without a Location"
        )
    return urljoin(response.url, location)


def cancel_upload(connection: Connection, location: str, repository: str) -> None:
    """Abandon an upload session; best effort, the registry expires it anyway."""
    with suppress(ImageprepError):
        connection.send(
            ApiCall(
                "DELETE", location, repository_scope(repository, PUSH), "cancelling upload to", repository
            )
        )


class BlobUpload:
    """Uploads of blobs to one registry."""

    def __init__(self, connection: Connection, policy: UploadPolicy) -> None:
        self._connection = connection
        self._policy = policy

    def write(self, repository: str, descriptor: Descriptor, body: BlobBody) -> None:
        """Upload ``body`` as ``descriptor``'s blob; retried whole on transient failures.

        The registry checks the bytes against ``?digest=`` before committing; if the body raises,
        the upload is abandoned and nothing is committed.
        """
        retrier = self._connection.retrier
        try:
            retrier.call(
                lambda: self._once(repository, descriptor, body),
                key=self._connection.registry,
                # The body is verified; a digest the registry rejects was damaged on the way there.
                retry_on=(TransientError, DigestMismatchError),
            )
        except BodyFailed as failed:
            raise failed.error from None

    def _once(self, repository: str, descriptor: Descriptor, body: BlobBody) -> None:
        subject = f"blob {descriptor.digest} of {repository}"
        response, call = start_upload(self._connection, repository, subject, None)
        self._connection.check(response, call)
        location = upload_location(self._connection, response, subject)
        try:
            if 0 <= descriptor.size <= self._policy.monolithic_limit:
                final = self._put(location, repository, descriptor, subject, _guarded(body.open()))
            else:
                final = self._put_chunked(location, repository, descriptor, subject, body.open())
        except BaseException:
            cancel_upload(self._connection, location, repository)
            raise
        stored = final.header("docker-content-digest")
        if stored and stored != descriptor.digest:
            raise DigestMismatchError(f"registry {self._connection.registry} stored {subject} as {stored}")

    def _put(
        self,
        location: str,
        repository: str,
        descriptor: Descriptor,
        subject: str,
        body: Iterable[bytes] | bytes,
    ) -> HttpResponse:
        headers = dict(_OCTET_STREAM)
        if isinstance(body, bytes):
            headers["Content-Length"] = str(len(body))
        elif descriptor.size >= 0:
            headers["Content-Length"] = str(descriptor.size)
        call = ApiCall(
            "PUT",
            location,
            repository_scope(repository, PUSH),
            "uploading",
            subject,
            headers=headers,
            params={"digest": descriptor.digest},
            body=body,
            retry=False,
            bulk=body != b"",
        )
        response = self._connection.send(call)
        self._connection.check(response, call)
        return response

    def _put_chunked(
        self, location: str, repository: str, descriptor: Descriptor, subject: str, chunks: Iterable[bytes]
    ) -> HttpResponse:
        """PATCHes of ``chunk_size`` bytes, each streamed from the body as it comes, then the PUT."""
        slicer = Slicer(chunks)
        offset = 0
        while offset < descriptor.size:
            length = min(self._policy.chunk_size, descriptor.size - offset)
            call = ApiCall(
                "PATCH",
                location,
                repository_scope(repository, PUSH),
                "uploading",
                subject,
                headers={
                    **_OCTET_STREAM,
                    "Content-Range": f"{offset}-{offset + length - 1}",
                    "Content-Length": str(length),
                },
                body=_guarded(slicer.take(length)),
                retry=False,
                bulk=True,
            )
            response = self._connection.send(call)
            self._connection.check(response, call)
            location = upload_location(self._connection, response, subject)
            offset += length
        if slicer.rest():
            raise BodyFailed(
                DigestMismatchError(f"{subject} is longer than the {descriptor.size} bytes it should be")
            )
        return self._put(location, repository, descriptor, subject, b"")
