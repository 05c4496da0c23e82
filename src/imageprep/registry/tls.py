"""TLS for registries: the verifying context (CA file loaded on first use), the unverified one, and
telling a TLS failure from an unreachable host.

Verified TLS is the rule; the unverified context exists for hosts the operator declared insecure
and for finding out whether a loopback host speaks TLS at all.
"""

from __future__ import annotations

import functools
import os
import re
import ssl

from imageprep.model.errors import RegistryError
from imageprep.registry.failures import caused_by, exception_chain

_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_HASHED_ENTRY = re.compile(r"[0-9a-f]{8}\.[0-9]+\Z")  # OpenSSL's subject-hash names (CRLs are .rN)


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
    """The system's trust store, plus ``ca_file`` when given.

    What ``ssl.create_default_context`` trusts, without parsing the system's whole CA bundle when
    that can be avoided: parsing it takes 50-90 ms with OpenSSL 3 (every certificate, every run),
    while OpenSSL's hashed directory (``/etc/ssl/certs``, which update-ca-certificates makes from
    the same certificates) is read lazily, only the CA a server's chain names. The directory stands
    in for the bundle when it holds one hashed entry per certificate of the bundle, and when
    ``$SSL_CERT_FILE`` is unset or names the bundle itself; any other file is loaded as Python
    would. A ``ca_file`` that is the very file already trusted is not loaded a second time (it
    defaults to ``$SSL_CERT_FILE``, which is often the system bundle).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the host name
    paths = ssl.get_default_verify_paths()
    system_bundle = paths.openssl_cafile
    chosen = os.environ.get(paths.openssl_cafile_env) or system_bundle
    if _same_file(chosen, system_bundle) and _directory_stands_in(paths.capath, system_bundle):
        context.load_verify_locations(capath=paths.capath)
    else:
        context.set_default_verify_paths()
    if ca_file and not _same_file(ca_file, chosen):
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise RegistryError(f"cannot load CA certificates from {ca_file}: {exc}") from exc
    return context


def _same_file(one: str, other: str) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False


@functools.cache
def _directory_stands_in(directory: str | None, bundle: str) -> bool:
    """Whether ``directory`` has a hashed entry for each certificate of ``bundle`` (looked at once
    a run: a run builds a context for each kind of connection, and the answer does not change)."""
    if not directory:
        return False
    try:
        hashed = sum(1 for entry in os.scandir(directory) if _HASHED_ENTRY.match(entry.name))
        with open(bundle, "rb") as handle:
            return hashed > 0 and handle.read().count(_PEM_CERTIFICATE) == hashed
    except OSError:
        return False


def unverified_context() -> ssl.SSLContext:
    """TLS without verification, for hosts declared insecure; loads no CA bundle (nothing uses it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def is_tls_failure(exc: BaseException) -> bool:
    """Whether an exception chain was caused by the TLS handshake (not by an unreachable host)."""
    return caused_by(exc, ssl.SSLError)


# The alerts a server sends when it wants a client certificate and got none, or none it accepts.
_CLIENT_CERTIFICATE_ALERTS = frozenset(
    {
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "TLSV1_ALERT_UNKNOWN_CA",
    }
)


def is_client_certificate_refusal(exc: BaseException) -> bool:
    """Whether the server ended the handshake over the client's certificate (not worth retrying)."""
    return any(
        isinstance(current, ssl.SSLError) and current.reason in _CLIENT_CERTIFICATE_ALERTS
        for current in exception_chain(exc)
    )


def is_certificate_failure(exc: BaseException) -> bool:
    """Whether an exception chain was caused by certificate verification."""
    return caused_by(exc, ssl.SSLCertVerificationError)
