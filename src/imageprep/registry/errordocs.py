"""Registry error documents (``{"errors": [{"code", "message"}]}``) and the one translation of an
unsuccessful status into imageprep's error tree, so operators always see the same wording."""

from __future__ import annotations

import json
from typing import Any, NoReturn

from imageprep.model.errors import (
    AuthenticationError,
    DigestMismatchError,
    NotFoundError,
    RegistryError,
    TransientError,
)
from imageprep.registry.responses import HttpResponse

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


def _errors(content: bytes) -> list[Any] | None:
    try:
        document = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    errors = document.get("errors") if isinstance(document, dict) else None
    return errors if isinstance(errors, list) else []


def error_details(content: bytes) -> str:
    """The ``code: message`` pairs of a registry error document, or a short excerpt of the body."""
    errors = _errors(content)
    if errors is None:
        return content[:200].decode("utf-8", "replace").strip()
    parts = []
    for item in errors:
        if isinstance(item, dict):
            code = str(item.get("code", "")).strip()
            message = str(item.get("message", "")).strip()
            parts.append(": ".join(part for part in (code, message) if part))
    return "; ".join(part for part in parts if part)


def error_codes(content: bytes) -> frozenset[str]:
    """The ``code`` values of a registry error document (empty when it is not one)."""
    errors = _errors(content) or []
    return frozenset(str(item.get("code")) for item in errors if isinstance(item, dict) and item.get("code"))


def raise_for_status(response: HttpResponse, *, registry: str, subject: str, action: str) -> None:
    """Turn an unsuccessful response into the matching error; 2xx returns quietly.

    ``subject`` names the repository or image and ``action`` what we were doing, so the message tells
    the operator what failed where.
    """
    if 200 <= response.status < 300:
        return
    _raise_status(response, registry=registry, subject=subject, action=action)


def _raise_status(response: HttpResponse, *, registry: str, subject: str, action: str) -> NoReturn:
    details = error_details(response.content)
    suffix = f": {details}" if details else ""
    where = f"{action} {subject} on registry {registry}"
    status = response.status
    codes = error_codes(response.content)
    if status in (401, 403):
        raise AuthenticationError(
            f"{where} was refused (HTTP {status}){suffix}",
            hint="check the credentials for this registry (ContainerImageRegistryCredentials, an auth "
            "file, or --username/--password); some registries also answer this way when the "
            "repository does not exist",
        )
    if status == 407:
        raise RegistryError(
            f"{where} was refused by the proxy: it wants a login (HTTP 407)",
            hint="put the proxy's user and password in the proxy URL: http://USER:PASSWORD@HOST:PORT",
        )
    if status == 404:
        raise NotFoundError(f"{where} failed: not found (HTTP 404){suffix}")
    if "DIGEST_INVALID" in codes or "SIZE_INVALID" in codes:
        raise DigestMismatchError(
            f"{where} failed: the registry rejected the content (HTTP {status}){suffix}"
        )
    if status in RETRYABLE_STATUSES:
        raise TransientError(f"{where} failed (HTTP {status}){suffix}", cause=f"HTTP {status}")
    raise RegistryError(f"{where} failed (HTTP {status}){suffix}")
