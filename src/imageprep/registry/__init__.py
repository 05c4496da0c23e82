"""The registry layer: the distribution HTTP API as an image store.

Layers below: :mod:`imageprep.model`. Nothing here imports the transfer, catalogue or CLI layers.
"""

from imageprep.model.platforms import host_architecture
from imageprep.registry.auth import Authenticator, TokenFetch, repository_scope
from imageprep.registry.challenge import Challenge, parse_challenge
from imageprep.registry.client import RegistryClient
from imageprep.registry.credentials import (
    Credential,
    CredentialStore,
    default_auth_files,
    parse_registry_credentials,
    read_auth_file,
)
from imageprep.registry.endpoint import EndpointPolicy, Scheme, api_host, is_loopback
from imageprep.registry.proxy import Proxy, ProxyConfig
from imageprep.registry.session import RegistrySession
from imageprep.registry.tokens import Token, TokenCache
from imageprep.registry.transport import Timeouts
from imageprep.registry.upload import UploadPolicy

__all__ = [
    "Authenticator",
    "Challenge",
    "Credential",
    "CredentialStore",
    "EndpointPolicy",
    "RegistryClient",
    "RegistrySession",
    "Proxy",
    "ProxyConfig",
    "Scheme",
    "Timeouts",
    "Token",
    "TokenCache",
    "TokenFetch",
    "UploadPolicy",
    "api_host",
    "default_auth_files",
    "host_architecture",
    "is_loopback",
    "parse_challenge",
    "parse_registry_credentials",
    "read_auth_file",
    "repository_scope",
]
