"""GPG "simple signing" with the real tools: gpg makes the key, skopeo signs and verifies.

A simple-signing signature is a GPG-signed JSON document naming the image (``docker-reference``)
and its manifest digest. It lives outside the registry, in *lookaside* storage: files under a
base URL at ``<repository>@sha256=<hex>/signature-N``. skopeo finds that base URL in a
``registries.d`` directory and checks signatures against a ``policy.json``. Using skopeo (and
not imageprep) on both ends means a signature imageprep carries along is judged by the same
code a deployment node's podman uses.

Hermeticity, because signing touches more state than copying:

* Every key lives in a throwaway ``GNUPGHOME``; its gpg-agent is killed when the context ends.
  gpg puts its sockets in the home directory here (no ``/run/user/<uid>``), and a Unix socket
  path must stay under 108 bytes, so a home that would be too deep goes to a short directory
  under the system temp dir (removed at the end) instead of the one given.
* skopeo runs with a throwaway ``HOME`` and explicit ``--registries.d`` and ``--policy``, so
  neither the user's nor the system's containers configuration is read.
* skopeo silently ignores unknown ``registries.d`` keys and, with no matching scope, writes new
  signatures to its built-in default (``/var/lib/containers/sigstore`` for root). Found by
  experiment: a misspelt key put a signature there. So :func:`registries_d` refuses unknown
  keys and by default adds a ``default-docker`` catch-all pointing inside the test's directory,
  and :func:`sign_into_registry` fails unless the signature landed where the test expects.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.imagegen import GeneratedImage, write_oci_layout
from tests.support.registry_server import RunningRegistry
from tests.support.seeding import skopeo_raw_manifest

GPG_TIMEOUT = 60
SKOPEO_TIMEOUT = 120
KEY_USER_ID = "imageprep test <test@example.invalid>"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# Longest socket gpg-agent makes in its home, and the sun_path limit (108 with the NUL) minus slack.
_LONGEST_SOCKET = "S.gpg-agent.browser"
_SOCKET_PATH_LIMIT = 100

# The section keys skopeo 1.9.3 (containers/image 5.23) honours, checked one by one against the real
# binary. Writing: each of ``lookaside-staging``, ``sigstore-staging``, ``lookaside`` and
# ``sigstore`` receives the signature when alone; together the order is lookaside-staging, then
# sigstore-staging, then lookaside, then sigstore. Reading: ``lookaside`` or legacy ``sigstore``
# (lookaside wins); a ``*-staging`` URL is never read. The base URL is joined with a plain "/", so
# one ending in "/" gives "//" in the path.
REGISTRIES_D_KEYS = frozenset(
    {"lookaside", "lookaside-staging", "sigstore", "sigstore-staging", "use-sigstore-attachments"}
)


def gpg_available() -> bool:
    """gpg and gpgconf (to stop the agent) are both needed; skopeo is checked by the registry fixtures."""
    return shutil.which("gpg") is not None and shutil.which("gpgconf") is not None


@dataclass(frozen=True)
class GpgKey:
    """A signing key in its own GNUPGHOME, and its public half exported (ASCII-armored) for policies."""

    home: Path
    fingerprint: str
    public_key_file: Path

    @property
    def env(self) -> dict[str, str]:
        """The environment for a process that must sign with this key and nothing else."""
        return {"PATH": "/usr/bin:/bin", "HOME": str(self.home), "GNUPGHOME": str(self.home)}


def _gpg(home: Path, *args: str) -> str:
    result = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", *args],
        capture_output=True,
        text=True,
        timeout=GPG_TIMEOUT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "GNUPGHOME": str(home)},
    )
    if result.returncode != 0:
        raise AssertionError(f"gpg {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def _make_home(directory: Path) -> tuple[Path, bool]:
    """A fresh 0700 home under ``directory``, or under the system temp dir when too deep for sockets;
    the flag says the home is ours to remove."""
    directory.mkdir(parents=True, exist_ok=True)
    if len(str(directory / "gnupg-XXXXXXXX" / _LONGEST_SOCKET)) < _SOCKET_PATH_LIMIT:
        return Path(tempfile.mkdtemp(prefix="gnupg-", dir=directory)), False
    return Path(tempfile.mkdtemp(prefix="ipgpg-")), True


def _fingerprint(home: Path) -> str:
    for line in _gpg(home, "--with-colons", "--list-secret-keys").splitlines():
        fields = line.split(":")
        if fields[0] == "fpr":
            return fields[9]
    raise AssertionError(f"gpg listed no secret key in {home}")


@contextmanager
def gpg_key(directory: Path, user_id: str = KEY_USER_ID) -> Iterator[GpgKey]:
    """Generate an RSA-2048 signing key with no passphrase; kill its gpg-agent when the block ends.

    About a quarter of a second per key, so a test that needs a second (untrusted) key can have one.
    """
    home, ours = _make_home(directory)
    try:
        _gpg(
            home,
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            user_id,
            "rsa2048",
            "sign",
            "never",
        )
        fingerprint = _fingerprint(home)
        public_key_file = directory / f"public-{fingerprint[-16:]}.asc"
        public_key_file.write_text(_gpg(home, "--armor", "--export", fingerprint))
        yield GpgKey(home, fingerprint, public_key_file)
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "all"],
            capture_output=True,
            timeout=GPG_TIMEOUT,
            check=False,
            env={"PATH": "/usr/bin:/bin", "HOME": str(home), "GNUPGHOME": str(home)},
        )
        if ours:
            shutil.rmtree(home, ignore_errors=True)


def read_signature(key: GpgKey, signature_file: Path) -> dict[str, Any]:
    """The JSON document inside a simple-signing signature, after gpg has checked it with ``key``.

    Lets a test assert what a signature claims (``critical.identity.docker-reference``,
    ``critical.image.docker-manifest-digest``) and not only that a file exists.
    """
    document: dict[str, Any] = json.loads(_gpg(key.home, "--decrypt", str(signature_file)))
    return document


# --- registries.d and policy.json -------------------------------------------------------------------------


def registries_d(
    directory: Path, entries: Mapping[str, Mapping[str, str | bool]], *, catch_all: bool = True
) -> Path:
    """Write a containers ``registries.d`` directory; ``entries`` maps a scope to its section.

    A scope is ``host[:port]``, a namespace or a repository (``127.0.0.1:5001/tripleomaster``);
    a section holds ``lookaside`` (where signatures are read; also written without a staging
    URL), ``lookaside-staging`` (where new signatures are written, typically ``file://``; never
    read, so a verified pull needs ``lookaside``) and ``use-sigstore-attachments``. skopeo 1.9.3
    honours these names and the legacy ``sigstore`` / ``sigstore-staging`` (see
    ``REGISTRIES_D_KEYS``); anything else is refused here because skopeo would ignore it without
    a word.

    With ``catch_all`` a ``default-docker`` section sends signatures for any unlisted scope to
    ``<directory>/unmatched-signatures`` (and reads none), so a scope that does not match can
    never write outside the test's directory.
    """
    for scope, section in entries.items():
        unknown = set(section) - REGISTRIES_D_KEYS
        if unknown:
            raise ValueError(
                f"registries.d scope {scope}: unknown keys {sorted(unknown)} (skopeo ignores them)"
            )
    target = directory / "registries.d"
    target.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {"docker": {scope: dict(section) for scope, section in entries.items()}}
    if catch_all:
        stray = directory / "unmatched-signatures"
        stray.mkdir(exist_ok=True)
        document["default-docker"] = {"lookaside-staging": stray.as_uri()}
    (target / "imageprep-test.yaml").write_text(yaml.safe_dump(document, sort_keys=True))
    return target


def policy_file(directory: Path, *, key: GpgKey, scope: str, signed_prefix: str | None = None) -> Path:
    """A ``policy.json`` that rejects everything except images under ``scope`` signed by ``key``.

    With ``signed_prefix`` the signature may name ``signed_prefix/...`` where the pull says
    ``scope/...`` (``remapIdentity``): a mirror serving images signed for their source registry.
    ``dir`` and ``oci`` destinations are accepted so a verified pull has somewhere to go. Each call
    writes a new file, so one directory can hold several policies.
    """
    requirement: dict[str, Any] = {
        "type": "signedBy",
        "keyType": "GPGKeys",
        "keyPath": str(key.public_key_file),
    }
    if signed_prefix is not None:
        requirement["signedIdentity"] = {
            "type": "remapIdentity",
            "prefix": scope,
            "signedPrefix": signed_prefix,
        }
    accept = [{"type": "insecureAcceptAnything"}]
    policy = {
        "default": [{"type": "reject"}],
        "transports": {"docker": {scope: [requirement]}, "dir": {"": accept}, "oci": {"": accept}},
    }
    directory.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="policy-", suffix=".json", dir=directory)
    with os.fdopen(handle, "w") as stream:
        json.dump(policy, stream, indent=2)
    return Path(name)


# --- signing and verifying with skopeo -------------------------------------------------------------------


def lookaside_dir(storage: Path, repository: str, manifest_digest: str) -> Path:
    """Where lookaside storage keeps one manifest's signatures: ``<repository>@sha256=<hex>``."""
    algorithm, _, hex_part = manifest_digest.partition(":")
    return storage / f"{repository}@{algorithm}={hex_part}"


def signature_files(storage: Path, repository: str, manifest_digest: str) -> list[Path]:
    """``signature-1``, ``signature-2``, ... as a reader finds them: in order, up to the first gap."""
    found = []
    base = lookaside_dir(storage, repository, manifest_digest)
    for index in range(1, 1000):
        candidate = base / f"signature-{index}"
        if not candidate.is_file():
            break
        found.append(candidate)
    return found


def _run_skopeo(
    args: list[str], env_extra: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="imageprep-skopeo-") as home:
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "REGISTRY_AUTH_FILE": str(Path(home) / "auth.json")}
        env.update(env_extra or {})
        return subprocess.run(
            ["skopeo", *args], capture_output=True, text=True, timeout=SKOPEO_TIMEOUT, env=env, check=False
        )


def _signature_state(staging_dir: Path, repository: str, digest: str) -> list[tuple[int, int]]:
    """(inode, mtime_ns) of each signature file: changes when skopeo rewrites one even with equal
    bytes (the signed JSON and the GPG packet carry whole-second timestamps and RSA PKCS#1 v1.5
    is deterministic, so two signatures in the same second may be identical)."""
    return [
        (path.stat().st_ino, path.stat().st_mtime_ns)
        for path in signature_files(staging_dir, repository, digest)
    ]


def _sign_copy(
    registry: RunningRegistry, key: GpgKey, registries_dir: Path, source: str, destination: str
) -> None:
    creds: list[str] = []
    if registry.creds and source.startswith("docker://"):
        creds += ["--src-creds", registry.creds]
    if registry.creds:
        creds += ["--dest-creds", registry.creds]
    result = _run_skopeo(
        [
            "--insecure-policy",
            "--registries.d",
            str(registries_dir),
            "copy",
            "--preserve-digests",
            "--sign-by",
            key.fingerprint,
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            *creds,
            source,
            destination,
        ],
        {"GNUPGHOME": str(key.home)},
    )
    if result.returncode != 0:
        raise AssertionError(f"skopeo signing copy to {destination} failed: {result.stderr.strip()}")


def sign_into_registry(
    registry: RunningRegistry,
    repository: str,
    tag: str,
    image: GeneratedImage,
    key: GpgKey,
    staging_dir: Path,
    registries_dir: Path,
) -> str:
    """Push ``image`` as ``repository:tag`` with a new GPG signature by ``key``; the manifest digest.

    skopeo writes the signature to the staging URL ``registries_dir`` gives for the registry, which
    must be ``staging_dir``: this fails unless ``signature-1`` is (re)written there. skopeo writes
    the *set* of signatures the source has plus the new one, and a generated image has none, so the
    set becomes exactly ``signature-1``, replacing any earlier one; :func:`add_signature` appends.
    The signature names ``HOST/REPO:TAG`` of this registry. Digests are preserved, and checked:
    the registry must serve exactly the generated manifest bytes.
    """
    if image.manifest_media_type != OCI_MANIFEST:
        raise ValueError("sign_into_registry needs an OCI-typed image (make_image(..., oci=True))")
    before = _signature_state(staging_dir, repository, image.digest)
    with tempfile.TemporaryDirectory(prefix="imageprep-layout-") as layout:
        write_oci_layout(Path(layout), {tag: image})
        _sign_copy(
            registry,
            key,
            registries_dir,
            f"oci:{layout}:{tag}",
            f"docker://{registry.host}/{repository}:{tag}",
        )
    after = _signature_state(staging_dir, repository, image.digest)
    if len(after) != 1 or after[:1] == before[:1]:
        raise AssertionError(
            f"signature-1 was not written under {lookaside_dir(staging_dir, repository, image.digest)}: does "
            f"{registries_dir} give {registry.host}/{repository} the staging URL {staging_dir.as_uri()}?"
        )
    served = skopeo_raw_manifest(registry, repository, tag)
    if served != image.manifest:
        raise AssertionError(f"the registry changed the manifest of {repository}:{tag} while signing")
    return image.digest


def add_signature(
    registry: RunningRegistry,
    repository: str,
    tag: str,
    key: GpgKey,
    staging_dir: Path,
    registries_dir: Path,
) -> list[Path]:
    """Sign ``repository:tag`` once more, keeping its signatures; every signature file, new one last.

    skopeo copies the image onto itself: it reads the existing signatures through the ``lookaside``
    URL and writes them back with the new one as ``signature-N+1``. So ``registries_dir`` must give
    the registry a ``lookaside`` that reads ``staging_dir`` (its ``file://`` URL, or a web server
    over it); without one skopeo sees no signatures and would replace them, which this reports.
    """
    raw = skopeo_raw_manifest(registry, repository, tag)
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    before = signature_files(staging_dir, repository, digest)
    reference = f"docker://{registry.host}/{repository}:{tag}"
    _sign_copy(registry, key, registries_dir, reference, reference)
    after = signature_files(staging_dir, repository, digest)
    if len(after) != len(before) + 1:
        raise AssertionError(
            f"{len(before)} signature(s) of {repository}:{tag} became {len(after)}, not one more: can "
            f"skopeo read {staging_dir} through the lookaside URL {registries_dir} gives {registry.host}?"
        )
    return after


def skopeo_pull_verified(
    image_ref: str,
    *,
    policy: Path,
    registries_dir: Path,
    target_dir: Path,
    ca_file: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``skopeo copy docker://REF dir:TARGET`` under ``policy``; the finished process, never raising.

    ``image_ref`` is ``HOST/REPO:TAG`` or ``HOST/REPO@DIGEST``. Without ``ca_file`` TLS is not
    verified (plain-HTTP test registries); with it the registry's certificate must chain to that
    CA (skopeo's ``--src-cert-dir`` adds it to the system roots, which cannot vouch for a loopback
    test certificate). A refusal by the policy is ``returncode != 0`` with ``Source image
    rejected: ...`` on stderr.
    """
    reference = image_ref if image_ref.startswith("docker://") else f"docker://{image_ref}"
    with tempfile.TemporaryDirectory(prefix="imageprep-certs-") as cert_dir:
        if ca_file is None:
            tls = ["--src-tls-verify=false"]
        else:
            shutil.copyfile(ca_file, Path(cert_dir) / "ca.crt")  # skopeo reads *.crt from the directory
            tls = ["--src-cert-dir", cert_dir]
        return _run_skopeo(
            [
                "--policy",
                str(policy),
                "--registries.d",
                str(registries_dir),
                "copy",
                *tls,
                reference,
                f"dir:{target_dir}",
            ]
        )
