"""TLS for registries: the verifying context (CA file loaded on first use), the unverified one, and
telling a TLS failure from an unreachable host.

Verified TLS is the rule; the unverified context exists for hosts the operator declared insecure
and for finding out whether a loopback host speaks TLS at all.
"""

from __future__ import annotations

import ssl

from imageprep.model.errors import RegistryError
from imageprep.registry.failures import caused_by

_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"


def check_ca_file(ca_file: str) -> None:
    """Refuse, before any work starts, a CA file that cannot be read or holds no PEM certificate.

    Loading it for real costs tens of milliseconds, so that waits for the first https request;
    this read catches the wrong path or the wrong file at once.
    """
    try:
        with open(ca_file, "rb") as handle:
            content = handle.read()
    except OSError as exc:
        raise RegistryError(f"cannot read CA certificates from {ca_file}: {exc.strerror or exc}") from exc
    if _PEM_CERTIFICATE not in content:
        raise RegistryError(
            f"cannot load CA certificates from {ca_file}: it holds no PEM certificate",
            hint="give a file of PEM certificates, each starting with " + _PEM_CERTIFICATE.decode(),
        )


def verified_context(ca_file: str | None) -> ssl.SSLContext:
    """The system's trust store, plus ``ca_file`` when given."""
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise RegistryError(f"cannot load CA certificates from {ca_file}: {exc}") from exc
    return context


def unverified_context() -> ssl.SSLContext:
    """TLS without verification, for hosts declared insecure; loads no CA bundle (nothing uses it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def is_tls_failure(exc: BaseException) -> bool:
    """Whether an exception chain was caused by the TLS handshake (not by an unreachable host)."""
    return caused_by(exc, ssl.SSLError)


def is_certificate_failure(exc: BaseException) -> bool:
    """Whether an exception chain was caused by certificate verification."""
    return caused_by(exc, ssl.SSLCertVerificationError)
