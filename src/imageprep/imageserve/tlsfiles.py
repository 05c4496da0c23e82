"""The TLS certificate and key ``imageprep serve`` presents, checked before the server starts.

Each way the files can be wrong (missing, unreadable, not PEM, a key that is not the
certificate's, a key with a passphrase) is one operator-readable :class:`ConfigurationError`
naming the option and the file, rather than OpenSSL's ``[SSL] PEM lib (_ssl.c:3900)``. The
certificate is parsed on its own first, so a bad certificate and a bad key are told apart.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from imageprep.model.errors import ConfigurationError

_MISMATCH = ("KEY_VALUES_MISMATCH", "X509_CHECK_PRIVATE_KEY")


def _check_readable(option: str, path: Path) -> None:
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except FileNotFoundError:
        raise ConfigurationError(f"{option} {path}: no such file") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{option} {path}: is a directory, not a PEM file") from None
    except OSError as exc:
        raise ConfigurationError(f"{option} {path}: cannot read it: {exc.strerror or exc}") from None


def server_context(certificate: Path, key: Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context presenting ``certificate`` (with its chain) and ``key``."""
    _check_readable("--tls-cert", certificate)
    _check_readable("--tls-key", key)
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        probe.load_verify_locations(cafile=str(certificate))
    except (ssl.SSLError, ValueError):
        raise ConfigurationError(
            f"--tls-cert {certificate}: not a PEM certificate",
            hint="give the server certificate (and any intermediates) in PEM form",
        ) from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols(["http/1.1"])

    def no_passphrase() -> str:
        # Called only for an encrypted key; without it OpenSSL would prompt on the terminal.
        raise ConfigurationError(
            f"--tls-key {key} is encrypted with a passphrase", hint="give an unencrypted key"
        )

    try:
        context.load_cert_chain(str(certificate), str(key), password=no_passphrase)
    except ssl.SSLError as exc:
        if any(reason in str(exc) for reason in _MISMATCH):
            raise ConfigurationError(
                f"--tls-key {key} is not the key of the certificate in --tls-cert {certificate}"
            ) from None
        raise ConfigurationError(f"--tls-key {key}: not a PEM private key ({exc.reason or exc})") from None
    return context
