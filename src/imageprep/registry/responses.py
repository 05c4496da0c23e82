"""Responses as our own values: a complete one, and one whose body is still to be read.

Nothing above the registry transport sees the HTTP library's response type; a body that breaks
off while being read comes out as a :class:`~imageprep.model.errors.TransientError`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import httpcore

from imageprep.model.control import RunControl
from imageprep.model.errors import RegistryError, TransientError
from imageprep.registry.failures import describe

# Failures of the exchange itself (not HTTP statuses): a new attempt may succeed.
EXCHANGE_ERRORS = (httpcore.TimeoutException, httpcore.NetworkError, httpcore.RemoteProtocolError)
READ_ERRORS = (*EXCHANGE_ERRORS, httpcore.ProtocolError)
# The socket delivers 64 KiB at a time; handing on larger pieces means fewer trips through the
# digest check and the upload that consume them.
CHUNK_SIZE = 256 * 1024


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A complete response; header names are lower-case."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str

    def header(self, name: str) -> str | None:
        """One header's value (``None`` when absent)."""
        return self.headers.get(name.lower())


def header_map(response: httpcore.Response) -> dict[str, str]:
    """Header names lower-cased; a repeated header keeps its last value."""
    return {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in response.headers}


@dataclass(slots=True)
class StreamedResponse:
    """A response whose body is read piece by piece; read errors come out as our errors."""

    status: int
    headers: Mapping[str, str]
    url: str
    _response: httpcore.Response = field(repr=False)
    _context: str = field(repr=False)
    _control: RunControl | None = field(default=None, repr=False)

    def header(self, name: str) -> str | None:
        """One header's value (``None`` when absent)."""
        return self.headers.get(name.lower())

    def iter_bytes(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The body in pieces of about ``chunk_size`` bytes (the last one shorter)."""
        parts: list[bytes] = []
        held = 0
        try:
            for chunk in self._response.iter_stream():
                if self._control is not None:
                    self._control.check(self._context)
                parts.append(chunk)
                held += len(chunk)
                if held >= chunk_size:
                    yield b"".join(parts)
                    parts, held = [], 0
        except READ_ERRORS as exc:
            if held:
                yield b"".join(parts)  # what did arrive is good: a resumed read starts after it
            raise TransientError(
                f"{self._context}: connection lost while reading: {describe(exc)}", cause="cut"
            ) from exc
        if held:
            yield b"".join(parts)

    def read(self, limit: int | None = None) -> bytes:
        """The whole body, refused (not retried) as soon as it is known to exceed ``limit`` bytes."""
        if limit is not None:
            declared = self.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _too_large(self._context, limit)
        parts: list[bytes] = []
        total = 0
        for chunk in self.iter_bytes():
            total += len(chunk)
            if limit is not None and total > limit:
                raise _too_large(self._context, limit)
            parts.append(chunk)
        return b"".join(parts)

    def complete(self, limit: int | None = None) -> HttpResponse:
        """Read the body and return the plain response value."""
        return HttpResponse(self.status, self.headers, self.read(limit), self.url)

    def close(self) -> None:
        """Hand the connection back (or drop it when the body was not read to its end)."""
        self._response.close()


def _too_large(context: str, limit: int) -> RegistryError:
    return RegistryError(f"{context}: the answer is larger than {limit} bytes; refused")
