"""Cosign-style signature attachments and OCI 1.1 referrers, made in code (no cosign binary).

Two ways a registry can carry a signature beside an image, both built here byte by byte:

* **cosign tag attachments**: a small OCI manifest stored under the tag ``sha256-<hex>.sig`` of the
  signed manifest's digest. Its single layer is the "simple signing" JSON payload naming the image,
  and the layer's ``dev.cosignproject.cosign/signature`` annotation is the base64 of an
  ECDSA-P256/SHA-256 DER signature over that payload.
* **OCI 1.1 referrers**: a manifest with ``artifactType`` and a ``subject`` descriptor pointing at
  the signed manifest. A registry without the referrers API is served by the *referrers tag schema*:
  an OCI index of the referrers stored under the tag ``sha256-<hex>``.

Uploads and reads use only ``http.client`` from the standard library, never imageprep, so the
harness cannot share a bug with the code under test.

What docker-registry 2.8.2 (Debian ``2.8.2+ds1``) does with these, found by experiment against the
real binary (``tests/integration/test_signing_support.py`` pins all of these and the first
skopeo finding below):

* Accepted (201, stored and served byte for byte): an OCI 1.1 manifest with ``artifactType``,
  the empty config descriptor (``application/vnd.oci.empty.v1+json``, ``{}``, size 2) and a
  ``subject``. Unknown fields are kept, not validated: a ``subject`` naming a manifest the
  registry does not hold is accepted too. No fallback config was needed.
* Accepted: a manifest under the tag ``sha256-<hex>.sig`` and an OCI index under ``sha256-<hex>``
  (with ``artifactType`` and ``annotations`` in its entries); both show in ``tags/list``.
* Not supported: ``GET /v2/<name>/referrers/<digest>`` (with or without ``?artifactType=``) is a
  404 with ``Content-Type: text/plain`` and body ``404 page not found`` (the router's answer, not
  registry error JSON). The manifest PUT answer has ``Docker-Content-Digest``, ``Location`` and
  ``Docker-Distribution-Api-Version`` but no ``OCI-Subject``, so a client must fall back to the
  referrers tag schema.
* Refused: a manifest whose config or layer blobs were not uploaded (400, one
  ``MANIFEST_BLOB_UNKNOWN`` per missing blob, ``detail`` its digest); an index listing a manifest
  the repository lacks (400 ``MANIFEST_BLOB_UNKNOWN``); the withdrawn artifact manifest type
  ``application/vnd.oci.artifact.manifest.v1+json`` (400 ``MANIFEST_INVALID``, ``detail`` ``{}``).

And what Debian's skopeo 1.9.3 does with these attachments:

* With ``use-sigstore-attachments: true`` in registries.d it copies the ``.sig`` tag along, but
  rebuilds the signature manifest (new config blob, so a new manifest digest); the payload layer
  and its signature annotation are kept and still verify. So skopeo is no byte-exact reference
  for carrying ``.sig`` tags.
* It cannot verify them: a ``sigstoreSigned`` policy requirement fails with ``Source image
  rejected: Debian-local change: sigstore disabled``. Verification here is therefore our own
  (:func:`verify_cosign_signature`).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import ssl
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
COSIGN_PAYLOAD = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
COSIGN_PAYLOAD_TYPE = "cosign container image signature"
MANIFEST_ACCEPT = ", ".join(
    [
        OCI_MANIFEST,
        OCI_INDEX,
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)
HTTP_TIMEOUT = 30.0


class SignatureCheckError(ValueError):
    """A cosign signature artifact that does not verify: malformed, tampered or signed by another key."""


class RegistryAnswerError(RuntimeError):
    """The registry answered a harness request with an unexpected status (kept for the test to read)."""

    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {path} answered {status}: {body[:500]!r}")
        self.status = status
        self.body = body


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``; local so this module does not import imageprep."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical_json(document: object) -> bytes:
    """Compact JSON as Go's encoder writes it (cosign is Go): no spaces, key order as given."""
    return json.dumps(document, separators=(",", ":")).encode()


# --- keys and payloads ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CosignKey:
    """An ECDSA P-256 key pair as cosign generates (``cosign generate-key-pair`` makes the same kind)."""

    private_key: ec.EllipticCurvePrivateKey

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    @cached_property
    def public_pem(self) -> bytes:
        """The public key as PEM SubjectPublicKeyInfo, the form ``cosign.pub`` has."""
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, payload: bytes) -> bytes:
        """DER-encoded ECDSA signature over SHA-256 of ``payload``."""
        return self.private_key.sign(payload, ec.ECDSA(hashes.SHA256()))


def cosign_key() -> CosignKey:
    """A fresh P-256 key; a new one per call, so a test can make a second key that must not verify."""
    return CosignKey(ec.generate_private_key(ec.SECP256R1()))


def simple_signing_payload(docker_reference: str, manifest_digest: str) -> bytes:
    """The JSON cosign signs: which image (by reference) and which manifest (by digest)."""
    document = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": COSIGN_PAYLOAD_TYPE,
        },
        "optional": None,
    }
    return _canonical_json(document)


def cosign_tag(manifest_digest: str, suffix: str = ".sig") -> str:
    """The tag an attachment of ``manifest_digest`` lives under: ``sha256-<hex>.sig`` (or ``.att``, ...).

    With ``suffix=""`` it is the referrers tag schema's fallback tag ``sha256-<hex>``.
    """
    algorithm, _, hex_part = manifest_digest.partition(":")
    if not hex_part:
        raise ValueError(f"not a digest: {manifest_digest!r}")
    return f"{algorithm}-{hex_part}{suffix}"


def referrers_fallback_tag(subject_digest: str) -> str:
    """The tag the referrers tag schema stores the index of ``subject_digest``'s referrers under."""
    return cosign_tag(subject_digest, suffix="")


# --- artifacts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Artifact:
    """A manifest ready to push: its exact bytes and every blob it references (config first)."""

    manifest: bytes
    media_type: str
    blobs: tuple[bytes, ...] = field(default=())

    @cached_property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @cached_property
    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.manifest)
        return parsed

    @property
    def artifact_type(self) -> str | None:
        """What the referrers API reports: ``artifactType``, else the config media type (OCI 1.1)."""
        explicit = self.document.get("artifactType")
        if isinstance(explicit, str):
            return explicit
        config = self.document.get("config")
        return str(config["mediaType"]) if isinstance(config, dict) else None

    def descriptor(self) -> dict[str, Any]:
        """The descriptor an index uses for this manifest (with artifactType and annotations if any)."""
        descriptor: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.manifest),
        }
        if self.artifact_type is not None:
            descriptor["artifactType"] = self.artifact_type
        annotations = self.document.get("annotations")
        if annotations:
            descriptor["annotations"] = dict(annotations)
        return descriptor


def _blob_descriptor(
    media_type: str, data: bytes, annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    descriptor: dict[str, Any] = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    if annotations:
        descriptor["annotations"] = dict(annotations)
    return descriptor


def signature_artifact(key: CosignKey, docker_reference: str, manifest_digest: str) -> Artifact:
    """The manifest ``cosign sign`` pushes under ``cosign_tag(manifest_digest)``.

    The config is a minimal OCI image config whose one diff_id is the payload digest (the payload
    layer is stored uncompressed, so its digest is its diff_id), which is what cosign writes too.
    """
    payload = simple_signing_payload(docker_reference, manifest_digest)
    signature = base64.b64encode(key.sign(payload)).decode("ascii")
    config = _canonical_json(
        {
            "architecture": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(payload)]},
        }
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": _blob_descriptor(OCI_CONFIG, config),
        "layers": [_blob_descriptor(COSIGN_PAYLOAD, payload, {COSIGN_SIGNATURE_ANNOTATION: signature})],
    }
    return Artifact(_canonical_json(manifest), OCI_MANIFEST, (config, payload))


def referrer_artifact(
    subject_descriptor: Mapping[str, Any],
    artifact_type: str,
    payload: bytes,
    *,
    payload_media_type: str = "application/octet-stream",
    annotations: Mapping[str, str] | None = None,
) -> Artifact:
    """An OCI 1.1 artifact manifest that refers to ``subject_descriptor`` (mediaType, digest, size).

    Its config is the empty descriptor (``{}``, 2 bytes), as the image-spec asks of artifacts
    that have no config of their own.
    """
    subject = {name: subject_descriptor[name] for name in ("mediaType", "digest", "size")}
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": _blob_descriptor(OCI_EMPTY, EMPTY_JSON),
        "layers": [_blob_descriptor(payload_media_type, payload)],
        "subject": subject,
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    return Artifact(_canonical_json(manifest), OCI_MANIFEST, (EMPTY_JSON, payload))


def referrers_fallback_index(referrers: list[Artifact]) -> bytes:
    """The OCI index the referrers tag schema keeps under ``referrers_fallback_tag(subject)``."""
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [referrer.descriptor() for referrer in referrers],
    }
    return _canonical_json(index)


def fallback_index_artifact(referrers: list[Artifact]) -> Artifact:
    """``referrers_fallback_index`` as a pushable artifact (an index references no blobs)."""
    return Artifact(referrers_fallback_index(referrers), OCI_INDEX)


# --- talking to a registry with http.client -----------------------------------------------------------


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass(frozen=True)
class PushedManifest:
    """What the registry said to a manifest PUT: the digest it computed and any ``OCI-Subject``."""

    digest: str | None
    subject: str | None
    headers: dict[str, str]


def _connection(registry_host: str, ca_file: Path | None) -> http.client.HTTPConnection:
    host, _, port = registry_host.rpartition(":")
    if not host.startswith("127."):
        raise ValueError(f"the harness only talks to loopback registries, not {registry_host}")
    if ca_file is None:
        return http.client.HTTPConnection(host, int(port), timeout=HTTP_TIMEOUT)
    context = ssl.create_default_context(cafile=str(ca_file))
    return http.client.HTTPSConnection(host, int(port), timeout=HTTP_TIMEOUT, context=context)


def request(
    registry_host: str,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    ca_file: Path | None = None,
) -> HttpAnswer:
    """One request on its own connection; never raises on an HTTP status (the caller judges)."""
    connection = _connection(registry_host, ca_file)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        data = response.read()
        return HttpAnswer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        connection.close()


def _expect(answer: HttpAnswer, method: str, path: str, *statuses: int) -> HttpAnswer:
    if answer.status not in statuses:
        raise RegistryAnswerError(method, path, answer.status, answer.body)
    return answer


def push_blob(registry_host: str, repository: str, data: bytes, ca_file: Path | None = None) -> str:
    """Upload ``data`` monolithically (POST for a session, one PUT with the digest); its digest."""
    digest = sha256_digest(data)
    head = request(registry_host, "HEAD", f"/v2/{repository}/blobs/{digest}", ca_file=ca_file)
    if head.status == 200:
        return digest
    start_path = f"/v2/{repository}/blobs/uploads/"
    started = _expect(request(registry_host, "POST", start_path, ca_file=ca_file), "POST", start_path, 202)
    location = urllib.parse.urlsplit(started.headers["location"])
    query = urllib.parse.parse_qsl(location.query, keep_blank_values=True) + [("digest", digest)]
    put_path = f"{location.path}?{urllib.parse.urlencode(query)}"
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
    answer = request(registry_host, "PUT", put_path, body=data, headers=headers, ca_file=ca_file)
    _expect(answer, "PUT", put_path, 201)
    return digest


def push_artifact(
    registry_host: str, repository: str, reference: str, artifact: Artifact, ca_file: Path | None = None
) -> PushedManifest:
    """Upload the artifact's blobs, then PUT its manifest under ``reference`` (a tag or its digest)."""
    for blob in artifact.blobs:
        push_blob(registry_host, repository, blob, ca_file)
    path = f"/v2/{repository}/manifests/{reference}"
    headers = {"Content-Type": artifact.media_type, "Content-Length": str(len(artifact.manifest))}
    answer = request(registry_host, "PUT", path, body=artifact.manifest, headers=headers, ca_file=ca_file)
    _expect(answer, "PUT", path, 201)
    return PushedManifest(
        answer.headers.get("docker-content-digest"), answer.headers.get("oci-subject"), answer.headers
    )


def fetch_manifest(
    registry_host: str,
    repository: str,
    reference: str,
    accept: str = MANIFEST_ACCEPT,
    ca_file: Path | None = None,
) -> tuple[bytes, str, str | None]:
    """The manifest bytes, their ``Content-Type`` and the ``Docker-Content-Digest`` header."""
    path = f"/v2/{repository}/manifests/{reference}"
    answer = _expect(
        request(registry_host, "GET", path, headers={"Accept": accept}, ca_file=ca_file), "GET", path, 200
    )
    return answer.body, answer.headers.get("content-type", ""), answer.headers.get("docker-content-digest")


def fetch_blob(registry_host: str, repository: str, digest: str, ca_file: Path | None = None) -> bytes:
    """A blob's bytes, checked against ``digest`` (redirects are not followed: docker-registry's
    filesystem driver serves blobs directly)."""
    path = f"/v2/{repository}/blobs/{digest}"
    data = _expect(request(registry_host, "GET", path, ca_file=ca_file), "GET", path, 200).body
    if sha256_digest(data) != digest:
        raise RegistryAnswerError("GET", path, 200, b"body does not match its digest")
    return data


def fetch_referrers(
    registry_host: str,
    repository: str,
    subject_digest: str,
    artifact_type: str | None = None,
    ca_file: Path | None = None,
) -> HttpAnswer:
    """``GET /v2/<name>/referrers/<digest>`` as answered (a 404 means the API is not there)."""
    path = f"/v2/{repository}/referrers/{subject_digest}"
    if artifact_type is not None:
        path += "?" + urllib.parse.urlencode({"artifactType": artifact_type})
    return request(registry_host, "GET", path, headers={"Accept": OCI_INDEX}, ca_file=ca_file)


# --- verification -------------------------------------------------------------------------------------


def _load_public_key(key: CosignKey | bytes) -> ec.EllipticCurvePublicKey:
    if isinstance(key, CosignKey):
        return key.public_key
    loaded = serialization.load_pem_public_key(key)
    if not isinstance(loaded, ec.EllipticCurvePublicKey):
        raise SignatureCheckError("the verification key is not an ECDSA public key")
    return loaded


def verify_cosign_signature(
    key: CosignKey | bytes, signature_manifest: bytes, fetch_blob: Callable[[str], bytes]
) -> str:
    """Check a ``.sig`` manifest's payloads against their signature annotations; the digest vouched for.

    ``key`` is a :class:`CosignKey` or a PEM public key (``cosign.pub``); ``fetch_blob`` maps a
    digest to the blob's bytes (from a registry, a tree, ...). cosign appends one layer per
    signature, so the first layer that verifies with ``key`` wins; when none does this raises
    :class:`SignatureCheckError` saying why each failed, so a test can tell "signed by this key"
    from anything else. The payload is checked against its digest before its signature.
    """
    public_key = _load_public_key(key)
    try:
        layers = json.loads(signature_manifest)["layers"]
    except (ValueError, KeyError, TypeError) as error:
        raise SignatureCheckError(f"not an image manifest with layers: {error}") from error
    failures = []
    for layer in layers:
        encoded = (layer.get("annotations") or {}).get(COSIGN_SIGNATURE_ANNOTATION)
        if layer.get("mediaType") != COSIGN_PAYLOAD or not encoded:
            continue
        payload = fetch_blob(layer["digest"])
        if sha256_digest(payload) != layer["digest"]:
            failures.append(f"payload {layer['digest']} does not match its digest")
            continue
        try:
            public_key.verify(base64.b64decode(encoded, validate=True), payload, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            failures.append(f"the signature on payload {layer['digest']} does not verify with this key")
            continue
        critical = json.loads(payload)["critical"]
        if critical.get("type") != COSIGN_PAYLOAD_TYPE:
            failures.append(f"payload {layer['digest']} has type {critical.get('type')!r}")
            continue
        return str(critical["image"]["docker-manifest-digest"])
    raise SignatureCheckError("; ".join(failures) or "no simple-signing layer with a signature annotation")
