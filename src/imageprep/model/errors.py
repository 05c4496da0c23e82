"""The one error tree of imageprep.

Every failure an operator can cause or meet is an :class:`ImageprepError`. Messages are written
for the person running the command: what failed, for which file / key / image / registry, and,
where there is one, what to do about it (``hint``). The CLI turns each class into one stable exit
code and one line on stderr; nothing above the HTTP layer ever sees a library's own exception.
"""

from __future__ import annotations


class ImageprepError(Exception):
    """Root of every error imageprep raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ConfigurationError(ImageprepError):
    """The operator's input (environment files, roles file, options) is wrong."""

    exit_code = 2


class NoSignatureStorageError(ConfigurationError):
    """A destination has nowhere to write lookaside signatures (no ``lookaside-staging``)."""


class CatalogueError(ImageprepError):
    """The image catalogue template or defaults file cannot be used."""

    exit_code = 3


class InvalidReferenceError(ConfigurationError):
    """An image reference does not follow the distribution reference grammar."""


class RegistryError(ImageprepError):
    """A registry answered something we cannot work with."""

    exit_code = 4


class AuthenticationError(RegistryError):
    """The registry refused our credentials, or needs some we do not have."""


class NotFoundError(RegistryError):
    """The repository, manifest, tag or blob does not exist in the registry."""


class DigestMismatchError(RegistryError):
    """Bytes received do not hash to the digest they were published under."""


class TransientError(RegistryError):
    """A failure that may go away when retried (connection reset, 429, 502-504).

    ``retry_after`` is the wait the server asked for; ``unreachable`` says the host could not be
    connected to at all (as opposed to a connection that broke or an answer that said "later");
    ``cause`` is a short name for statistics (``HTTP 503``, ``connect``, ``cut``).
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        retry_after: float | None = None,
        unreachable: bool = False,
        cause: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after
        self.unreachable = unreachable
        self.cause = cause


class UnsupportedMediaTypeError(RegistryError):
    """A manifest type we do not copy (for example Docker schema 1)."""


class TransferError(ImageprepError):
    """One or more images could not be copied."""

    exit_code = 5


class ImageServeError(ImageprepError):
    """The local image-serve tree cannot be read or written."""

    exit_code = 6


class ModificationError(ImageprepError):
    """Modifying an image (buildah, rpm, ansible role) failed."""

    exit_code = 7


class DeadlineExceededError(TransferError):
    """The run's total time limit passed before it finished; nothing more is started."""


class RunInterruptedError(ImageprepError):
    """The operator interrupted the run (Ctrl-C); work in flight stops at its next request."""

    exit_code = 130
