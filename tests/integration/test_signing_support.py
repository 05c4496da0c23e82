"""The signing harness itself, against real tools: docker-registry 2.8.2, skopeo 1.9.3, gpg 2.2.

These pin what later signature tests rely on: that a GPG-signed push leaves its signature where
lookaside storage puts it, that skopeo under a signature policy accepts it (through a web server,
as a deployment node would read it) and refuses what is not signed, that the cosign-style and
OCI 1.1 referrer artifacts made in code are accepted by this registry and verify, and what this
registry does not support (the referrers API, the ``OCI-Subject`` header).
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.support import cosign
from tests.support.imagegen import GeneratedImage, make_image
from tests.support.registry_server import RunningRegistry, plain_registry_server
from tests.support.seeding import seed_image
from tests.support.signing import (
    GpgKey,
    add_signature,
    gpg_available,
    gpg_key,
    lookaside_dir,
    policy_file,
    read_signature,
    registries_d,
    sign_into_registry,
    signature_files,
    skopeo_pull_verified,
)
from tests.support.staticweb import static_web_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpgKey]:
    if not gpg_available():
        pytest.skip("gpg and gpgconf are needed (apt-get install gnupg)")
    with gpg_key(tmp_path_factory.mktemp("gpg")) as key:
        yield key


@pytest.fixture()
def lookaside(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """An empty staging directory and the base URL of a web server publishing it."""
    staging = tmp_path / "staging"
    staging.mkdir()
    with static_web_server(staging) as url:
        yield staging, url


def _subject(image: GeneratedImage) -> dict[str, object]:
    return {"mediaType": image.manifest_media_type, "digest": image.digest, "size": len(image.manifest)}


# --- the static web server ------------------------------------------------------------------------------


def test_static_web_server_serves_files_and_404s_the_rest(tmp_path: Path) -> None:
    (tmp_path / "repo@sha256=ab").mkdir()
    (tmp_path / "repo@sha256=ab" / "signature-1").write_bytes(b"sig")
    with static_web_server(tmp_path) as url:
        with urllib.request.urlopen(f"{url}/repo@sha256=ab/signature-1", timeout=10) as answer:
            assert answer.read() == b"sig"
        for missing in ("repo@sha256=ab/signature-2", "repo@sha256=ab/", "nothing"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{url}/{missing}", timeout=10)
            assert refused.value.code == 404
            refused.value.close()


# --- GPG simple signing with skopeo ------------------------------------------------------------------------


def test_signed_push_lands_signature_1_in_staging_naming_the_image(
    plain_registry: RunningRegistry, signing_key: GpgKey, lookaside: tuple[Path, str], tmp_path: Path
) -> None:
    staging, url = lookaside
    config = registries_d(
        tmp_path, {plain_registry.host: {"lookaside": url, "lookaside-staging": staging.as_uri()}}
    )
    image = make_image({"signed": "staging"}, oci=True)

    digest = sign_into_registry(plain_registry, "sign/staging", "1", image, signing_key, staging, config)

    assert digest == image.digest
    assert signature_files(staging, "sign/staging", digest) == [
        staging / f"sign/staging@sha256={digest.removeprefix('sha256:')}" / "signature-1"
    ]
    claims = read_signature(signing_key, lookaside_dir(staging, "sign/staging", digest) / "signature-1")
    assert claims["critical"]["identity"]["docker-reference"] == f"{plain_registry.host}/sign/staging:1"
    assert claims["critical"]["image"]["docker-manifest-digest"] == digest
    assert claims["critical"]["type"] == "atomic container signature"
    assert not any((tmp_path / "unmatched-signatures").iterdir())


def test_signing_the_generated_image_again_replaces_signature_1(
    plain_registry: RunningRegistry, signing_key: GpgKey, lookaside: tuple[Path, str], tmp_path: Path
) -> None:
    # skopeo writes the source's signature set plus the new one; a generated image has none.
    staging, _ = lookaside
    config = registries_d(tmp_path, {plain_registry.host: {"lookaside-staging": staging.as_uri()}})
    image = make_image({"signed": "twice"}, oci=True)
    sign_into_registry(plain_registry, "sign/twice", "1", image, signing_key, staging, config)
    sign_into_registry(plain_registry, "sign/twice", "1", image, signing_key, staging, config)

    assert [path.name for path in signature_files(staging, "sign/twice", image.digest)] == ["signature-1"]


def test_add_signature_appends_and_a_pull_needs_only_one_accepted_signature(
    plain_registry: RunningRegistry, signing_key: GpgKey, lookaside: tuple[Path, str], tmp_path: Path
) -> None:
    staging, url = lookaside
    config = registries_d(
        tmp_path, {plain_registry.host: {"lookaside": url, "lookaside-staging": staging.as_uri()}}
    )
    image = make_image({"signed": "by two"}, oci=True)
    sign_into_registry(plain_registry, "tripleomaster/two", "1", image, signing_key, staging, config)
    with gpg_key(tmp_path / "other") as other:
        files = add_signature(plain_registry, "tripleomaster/two", "1", other, staging, config)
        second = read_signature(other, files[1])
    policy = policy_file(tmp_path, key=signing_key, scope=f"{plain_registry.host}/tripleomaster")

    pulled = skopeo_pull_verified(
        f"{plain_registry.host}/tripleomaster/two:1",
        policy=policy,
        registries_dir=config,
        target_dir=tmp_path / "p",
    )

    assert [path.name for path in files] == ["signature-1", "signature-2"]
    assert (
        read_signature(signing_key, files[0])["critical"]["image"]["docker-manifest-digest"] == image.digest
    )
    assert second["critical"]["image"]["docker-manifest-digest"] == image.digest
    assert pulled.returncode == 0, pulled.stderr


def test_verified_pull_reads_the_signature_from_the_lookaside_web_server(
    plain_registry: RunningRegistry, signing_key: GpgKey, lookaside: tuple[Path, str], tmp_path: Path
) -> None:
    staging, url = lookaside
    config = registries_d(
        tmp_path, {plain_registry.host: {"lookaside": url, "lookaside-staging": staging.as_uri()}}
    )
    image = make_image({"signed": "pull"}, oci=True)
    sign_into_registry(plain_registry, "tripleomaster/signed", "1", image, signing_key, staging, config)
    policy = policy_file(tmp_path, key=signing_key, scope=f"{plain_registry.host}/tripleomaster")

    pulled = skopeo_pull_verified(
        f"{plain_registry.host}/tripleomaster/signed:1",
        policy=policy,
        registries_dir=config,
        target_dir=tmp_path / "pulled",
    )

    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "pulled" / "manifest.json").read_bytes() == image.manifest


def test_verified_pull_refuses_an_unsigned_image(
    plain_registry: RunningRegistry, signing_key: GpgKey, lookaside: tuple[Path, str], tmp_path: Path
) -> None:
    _, url = lookaside
    config = registries_d(tmp_path, {plain_registry.host: {"lookaside": url}})
    seed_image(plain_registry, "tripleomaster/unsigned", "1", make_image({"signed": "no"}, oci=True))
    policy = policy_file(tmp_path, key=signing_key, scope=f"{plain_registry.host}/tripleomaster")

    pulled = skopeo_pull_verified(
        f"{plain_registry.host}/tripleomaster/unsigned:1",
        policy=policy,
        registries_dir=config,
        target_dir=tmp_path / "pulled",
    )

    assert pulled.returncode != 0
    assert "A signature was required, but no signature exists" in pulled.stderr


def test_verified_pull_refuses_a_signature_by_another_key(
    plain_registry: RunningRegistry, signing_key: GpgKey, lookaside: tuple[Path, str], tmp_path: Path
) -> None:
    staging, url = lookaside
    config = registries_d(
        tmp_path, {plain_registry.host: {"lookaside": url, "lookaside-staging": staging.as_uri()}}
    )
    image = make_image({"signed": "by another"}, oci=True)
    with gpg_key(tmp_path / "other") as other:
        sign_into_registry(plain_registry, "tripleomaster/other-key", "1", image, other, staging, config)
    policy = policy_file(tmp_path, key=signing_key, scope=f"{plain_registry.host}/tripleomaster")

    pulled = skopeo_pull_verified(
        f"{plain_registry.host}/tripleomaster/other-key:1",
        policy=policy,
        registries_dir=config,
        target_dir=tmp_path / "pulled",
    )

    assert pulled.returncode != 0
    assert "Source image rejected" in pulled.stderr


def test_a_mirror_is_accepted_with_the_source_signature_only_through_remap_identity(
    plain_registry: RunningRegistry, signing_key: GpgKey, lookaside: tuple[Path, str], tmp_path: Path
) -> None:
    # Lookaside paths hold no host, so one web server serves the source's signatures for the mirror.
    staging, url = lookaside
    image = make_image({"signed": "mirror"}, oci=True)
    with plain_registry_server(tmp_path / "mirror") as mirror:
        config = registries_d(
            tmp_path,
            {
                plain_registry.host: {"lookaside": url, "lookaside-staging": staging.as_uri()},
                mirror.host: {"lookaside": url},
            },
        )
        sign_into_registry(plain_registry, "tripleomaster/mirrored", "1", image, signing_key, staging, config)
        seed_image(mirror, "tripleomaster/mirrored", "1", image)
        ref = f"{mirror.host}/tripleomaster/mirrored:1"
        strict = policy_file(tmp_path, key=signing_key, scope=f"{mirror.host}/tripleomaster")
        remapped = policy_file(
            tmp_path,
            key=signing_key,
            scope=f"{mirror.host}/tripleomaster",
            signed_prefix=f"{plain_registry.host}/tripleomaster",
        )

        refused = skopeo_pull_verified(ref, policy=strict, registries_dir=config, target_dir=tmp_path / "a")
        accepted = skopeo_pull_verified(
            ref, policy=remapped, registries_dir=config, target_dir=tmp_path / "b"
        )

    assert refused.returncode != 0
    assert f"Signature for identity {plain_registry.host}/tripleomaster/mirrored:1 is not accepted" in (
        refused.stderr
    )
    assert accepted.returncode == 0, accepted.stderr


def test_registries_d_refuses_keys_skopeo_would_silently_ignore(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lookasid-staging"):
        registries_d(tmp_path, {"127.0.0.1:5000": {"lookasid-staging": "file:///x"}})


# --- cosign-style attachments and OCI 1.1 referrers ---------------------------------------------------


def test_cosign_signature_pushed_under_its_tag_verifies(plain_registry: RunningRegistry) -> None:
    host, repository = plain_registry.host, "cosign/signed"
    image = make_image({"cosign": "sig"}, oci=True)
    seed_image(plain_registry, repository, "1", image)
    key = cosign.cosign_key()
    signature = cosign.signature_artifact(key, f"{host}/{repository}", image.digest)
    tag = cosign.cosign_tag(image.digest)

    pushed = cosign.push_artifact(host, repository, tag, signature)
    served, media_type, digest = cosign.fetch_manifest(host, repository, tag)

    assert tag == f"sha256-{image.digest.removeprefix('sha256:')}.sig"
    assert (served, media_type, digest, pushed.digest) == (
        signature.manifest,
        cosign.OCI_MANIFEST,
        signature.digest,
        signature.digest,
    )
    fetch = lambda digest: cosign.fetch_blob(host, repository, digest)  # noqa: E731
    assert cosign.verify_cosign_signature(key, served, fetch) == image.digest
    assert cosign.verify_cosign_signature(key.public_pem, served, fetch) == image.digest
    with pytest.raises(cosign.SignatureCheckError, match="does not verify"):
        cosign.verify_cosign_signature(cosign.cosign_key(), served, fetch)
    with pytest.raises(cosign.SignatureCheckError, match="does not match its digest"):
        cosign.verify_cosign_signature(key, served, lambda digest: b"tampered")
    assert tag in json.loads(cosign.request(host, "GET", f"/v2/{repository}/tags/list").body)["tags"]


def test_cosign_signature_over_tls(tls_registry: RunningRegistry) -> None:
    host, repository, ca = tls_registry.host, "cosign/tls", tls_registry.ca_file
    image = make_image({"cosign": "tls"}, oci=True)
    seed_image(tls_registry, repository, "1", image)
    key = cosign.cosign_key()
    signature = cosign.signature_artifact(key, f"{host}/{repository}", image.digest)

    cosign.push_artifact(host, repository, cosign.cosign_tag(image.digest), signature, ca_file=ca)
    served, _, _ = cosign.fetch_manifest(host, repository, cosign.cosign_tag(image.digest), ca_file=ca)

    fetch = lambda digest: cosign.fetch_blob(host, repository, digest, ca_file=ca)  # noqa: E731
    assert cosign.verify_cosign_signature(key, served, fetch) == image.digest


def test_referrer_with_subject_and_its_fallback_index_push_unchanged(plain_registry: RunningRegistry) -> None:
    host, repository = plain_registry.host, "referrers/accepted"
    image = make_image({"referrers": "yes"}, oci=True)
    seed_image(plain_registry, repository, "1", image)
    referrer = cosign.referrer_artifact(
        _subject(image),
        "application/vnd.example.signature",
        b"signature bytes",
        annotations={"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    )
    index = cosign.fallback_index_artifact([referrer])

    pushed = cosign.push_artifact(host, repository, referrer.digest, referrer)
    cosign.push_artifact(host, repository, cosign.referrers_fallback_tag(image.digest), index)

    assert cosign.fetch_manifest(host, repository, referrer.digest)[0] == referrer.manifest
    served, media_type, _ = cosign.fetch_manifest(
        host, repository, cosign.referrers_fallback_tag(image.digest)
    )
    assert (served, media_type) == (index.manifest, cosign.OCI_INDEX)
    assert json.loads(served)["manifests"] == [
        {
            "mediaType": cosign.OCI_MANIFEST,
            "digest": referrer.digest,
            "size": len(referrer.manifest),
            "artifactType": "application/vnd.example.signature",
            "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
        }
    ]
    document = json.loads(referrer.manifest)
    assert document["subject"] == _subject(image)
    assert document["config"] == {
        "mediaType": cosign.OCI_EMPTY,
        "digest": cosign.sha256_digest(b"{}"),
        "size": 2,
    }
    # docker-registry 2.8.2 stores the subject but knows nothing of referrers:
    assert pushed.subject is None
    for artifact_type in (None, "application/vnd.example.signature"):
        answer = cosign.fetch_referrers(host, repository, image.digest, artifact_type)
        assert (answer.status, answer.body) == (404, b"404 page not found\n")
    tags = json.loads(cosign.request(host, "GET", f"/v2/{repository}/tags/list").body)["tags"]
    assert cosign.referrers_fallback_tag(image.digest) in tags


def test_docker_registry_refuses_missing_blobs_and_the_withdrawn_artifact_manifest(
    plain_registry: RunningRegistry,
) -> None:
    host, repository = plain_registry.host, "referrers/missing"
    image = make_image({"referrers": "missing"}, oci=True)
    seed_image(plain_registry, repository, "1", image)
    referrer = cosign.referrer_artifact(_subject(image), "application/vnd.example.x", b"never uploaded")

    without_blobs = cosign.request(
        host,
        "PUT",
        f"/v2/{repository}/manifests/{referrer.digest}",
        body=referrer.manifest,
        headers={"Content-Type": cosign.OCI_MANIFEST},
    )
    index_of_missing = cosign.request(
        host,
        "PUT",
        f"/v2/{repository}/manifests/{cosign.referrers_fallback_tag(image.digest)}",
        body=cosign.referrers_fallback_index([referrer]),
        headers={"Content-Type": cosign.OCI_INDEX},
    )

    withdrawn_artifact_type = cosign.request(
        host,
        "PUT",
        f"/v2/{repository}/manifests/artifact",
        body=referrer.manifest,
        headers={"Content-Type": "application/vnd.oci.artifact.manifest.v1+json"},
    )

    missing = json.loads(without_blobs.body)["errors"]
    assert without_blobs.status == 400
    assert sorted((error["code"], error["detail"]) for error in missing) == sorted(
        ("MANIFEST_BLOB_UNKNOWN", cosign.sha256_digest(blob)) for blob in referrer.blobs
    )
    assert index_of_missing.status == 400
    assert [error["code"] for error in json.loads(index_of_missing.body)["errors"]] == [
        "MANIFEST_BLOB_UNKNOWN"
    ]
    assert withdrawn_artifact_type.status == 400
    assert [error["code"] for error in json.loads(withdrawn_artifact_type.body)["errors"]] == [
        "MANIFEST_INVALID"
    ]


def test_verified_pull_over_tls_with_the_registry_ca(
    tls_registry: RunningRegistry, signing_key: GpgKey, lookaside: tuple[Path, str], tmp_path: Path
) -> None:
    staging, url = lookaside
    config = registries_d(
        tmp_path, {tls_registry.host: {"lookaside": url, "lookaside-staging": staging.as_uri()}}
    )
    image = make_image({"signed": "tls"}, oci=True)
    sign_into_registry(tls_registry, "tripleomaster/tls", "1", image, signing_key, staging, config)
    policy = policy_file(tmp_path, key=signing_key, scope=f"{tls_registry.host}/tripleomaster")

    pulled = skopeo_pull_verified(
        f"{tls_registry.host}/tripleomaster/tls:1",
        policy=policy,
        registries_dir=config,
        target_dir=tmp_path / "pulled",
        ca_file=tls_registry.ca_file,
    )

    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "pulled" / "manifest.json").read_bytes() == image.manifest
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    untrusted = skopeo_pull_verified(
        f"{tls_registry.host}/tripleomaster/tls:1",
        policy=policy,
        registries_dir=config,
        target_dir=tmp_path / "untrusted",
        ca_file=other_ca,
    )
    assert untrusted.returncode != 0
    assert "certificate signed by unknown authority" in untrusted.stderr


def test_docker_registry_accepts_a_subject_it_does_not_hold(plain_registry: RunningRegistry) -> None:
    # The subject is not checked, so a mirror may push referrers before (or without) their image.
    ghost = {"mediaType": cosign.OCI_MANIFEST, "digest": cosign.sha256_digest(b"absent"), "size": 6}
    referrer = cosign.referrer_artifact(ghost, "application/vnd.example.x", b"orphan")

    pushed = cosign.push_artifact(plain_registry.host, "referrers/ghost", referrer.digest, referrer)

    assert pushed.digest == referrer.digest


def test_skopeo_copies_a_cosign_signature_but_rewrites_its_manifest(
    plain_registry: RunningRegistry, tmp_path: Path
) -> None:
    # skopeo (use-sigstore-attachments) is no byte-exact reference for .sig tags: the config is
    # rebuilt, so the manifest digest changes; payload and signature survive and still verify.
    repository = "cosign/skopeo"
    image = make_image({"cosign": "skopeo"}, oci=True)
    seed_image(plain_registry, repository, "1", image)
    key = cosign.cosign_key()
    signature = cosign.signature_artifact(key, f"{plain_registry.host}/{repository}", image.digest)
    tag = cosign.cosign_tag(image.digest)
    cosign.push_artifact(plain_registry.host, repository, tag, signature)
    with plain_registry_server(tmp_path / "mirror") as mirror:
        config = registries_d(
            tmp_path,
            {
                plain_registry.host: {"use-sigstore-attachments": True},
                mirror.host: {"use-sigstore-attachments": True},
            },
        )
        copied = subprocess.run(
            [
                "skopeo",
                "--insecure-policy",
                "--registries.d",
                str(config),
                "copy",
                "--preserve-digests",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                f"docker://{plain_registry.host}/{repository}:1",
                f"docker://{mirror.host}/{repository}:1",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            check=False,
        )
        assert copied.returncode == 0, copied.stderr
        served, _, digest = cosign.fetch_manifest(mirror.host, repository, tag)
        fetch = lambda blob: cosign.fetch_blob(mirror.host, repository, blob)  # noqa: E731
        vouched = cosign.verify_cosign_signature(key, served, fetch)

    assert digest != signature.digest
    assert json.loads(served)["layers"] == json.loads(signature.manifest)["layers"]
    assert vouched == image.digest
