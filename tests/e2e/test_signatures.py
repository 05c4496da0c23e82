"""Signatures travel with their images: real ``imageprep prepare`` runs, checked with real tools.

GPG "simple signing": a key made here, an image signed into the source registry by ``skopeo copy
--sign-by`` (its lookaside on a loopback web server), mirrored by imageprep into a second registry
(whose lookaside staging directory a second web server publishes); ``skopeo copy`` out of the
mirror under a policy that requires the key (identity remapped to the mirror) succeeds, and the
same pull of an unsigned image is refused. cosign-style signatures and OCI referrers, made in code
with an ECDSA P-256 key: after the mirror each signature still verifies, naming the digest the
mirror serves, for a single image and for each child of a multi-arch one. Debian's skopeo cannot
verify sigstore signatures itself (that support is disabled there), so the harness verifies them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import Run
from tests.support import cosign
from tests.support.imagegen import GeneratedImage, make_image, make_layer
from tests.support.imageserve_servers import imageprep_serving
from tests.support.registry_server import RunningRegistry, plain_registry_server, registry_available
from tests.support.seeding import seed_image
from tests.support.signing import (
    GpgKey,
    gpg_available,
    gpg_key,
    policy_file,
    registries_d,
    sign_into_registry,
    signature_files,
    skopeo_pull_verified,
)
from tests.support.staticweb import static_web_server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not registry_available(), reason="needs docker-registry and skopeo"),
]
TAG = "current-tripleo"
SIGNED = "tripleomaster/centos-binary-nova-api"
UNSIGNED = "tripleomaster/centos-binary-keystone"
MULTI = "tripleomaster/centos-binary-heat-api"
SBOM = "application/vnd.example.sbom+json"


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpgKey]:
    if not gpg_available():
        pytest.skip("needs gpg (apt-get install gnupg)")
    with gpg_key(tmp_path_factory.mktemp("gpg")) as key:
        yield key


@pytest.fixture
def source(tmp_path: Path) -> Iterator[RunningRegistry]:
    with plain_registry_server(tmp_path / "source") as registry:
        yield registry


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[RunningRegistry]:
    with plain_registry_server(tmp_path / "mirror") as registry:
        yield registry


def _image(name: str) -> GeneratedImage:
    return make_image({"name": name}, [make_layer({f"etc/{name}": name.encode()}, oci=True)], oci=True)


def _environment(tmp_path: Path, source: RunningRegistry, destination: str | bool, *names: str) -> Path:
    entry = {
        "push_destination": destination,
        "includes": [f"centos-binary-{name}:" for name in names or ("nova-api",)],
        "set": {"namespace": f"{source.host}/tripleomaster", "name_prefix": "centos-binary-", "tag": TAG},
    }
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump({"parameter_defaults": {"ContainerImagePrepare": [entry]}}))
    return path


def _signed_source(tmp_path: Path, key: GpgKey, source: RunningRegistry) -> tuple[Path, str]:
    """SIGNED signed with ``key`` into ``source`` (its lookaside: the directory returned), and
    UNSIGNED beside it; the signed image's digest."""
    signatures = tmp_path / "source-sigs"
    signatures.mkdir()
    signer = registries_d(tmp_path / "signer", {source.host: {"lookaside-staging": signatures.as_uri()}})
    digest = sign_into_registry(source, SIGNED, TAG, _image("nova-api"), key, signatures, signer)
    seed_image(source, UNSIGNED, TAG, _image("keystone"))
    return signatures, digest


def _verified_pull(
    tmp_path: Path, key: GpgKey, host: str, lookaside: str, signed_for: str
) -> tuple[int, int]:
    """skopeo's exit codes pulling SIGNED and UNSIGNED from ``host`` under a policy that wants
    ``key``'s signature for ``signed_for``'s namespace (remapped to ``host``'s)."""
    node = registries_d(tmp_path / "node", {host: {"lookaside": lookaside}})
    policy = policy_file(
        tmp_path, key=key, scope=f"{host}/tripleomaster", signed_prefix=f"{signed_for}/tripleomaster"
    )
    codes = []
    for repository in (SIGNED, UNSIGNED):
        pulled = skopeo_pull_verified(
            f"{host}/{repository}:{TAG}",
            policy=policy,
            registries_dir=node,
            target_dir=tmp_path / repository.replace("/", "-"),
        )
        if repository == UNSIGNED:
            assert "signature" in pulled.stderr.lower(), pulled.stderr
        codes.append(pulled.returncode)
    return codes[0], codes[1]


def _prepare(imageprep: Run, env: Path, tmp_path: Path, *extra: str) -> str:
    done = imageprep(
        "prepare", "-e", str(env), "--output-env-file", str(tmp_path / "images.yaml"), *extra, check=True
    )
    return done.stderr


# --- GPG simple signing, end to end with skopeo ----------------------------------------------------


def test_a_gpg_signed_image_mirrored_to_a_registry_still_verifies_and_an_unsigned_one_is_refused(
    imageprep: Run, tmp_path: Path, signing_key: GpgKey, source: RunningRegistry, mirror: RunningRegistry
) -> None:
    source_sigs, digest = _signed_source(tmp_path, signing_key, source)
    mirror_sigs = tmp_path / "mirror-sigs"
    mirror_sigs.mkdir()
    with static_web_server(source_sigs) as source_url, static_web_server(mirror_sigs) as mirror_url:
        ours = registries_d(
            tmp_path / "imageprep",
            {
                source.host: {"lookaside": source_url},
                mirror.host: {"lookaside": mirror_url, "lookaside-staging": mirror_sigs.as_uri()},
            },
            catch_all=False,
        )
        env = _environment(tmp_path, source, mirror.host, "nova-api", "keystone")
        log = _prepare(imageprep, env, tmp_path, "--registries.d", str(ours))
        assert "signatures and attachments: 1 copied" in log
        assert [path.name for path in signature_files(mirror_sigs, SIGNED, digest)] == ["signature-1"]

        signed, unsigned = _verified_pull(tmp_path, signing_key, mirror.host, mirror_url, source.host)
        assert signed == 0 and unsigned != 0

        again = _prepare(imageprep, env, tmp_path, "--registries.d", str(ours))
        assert "1 already present" in again  # the re-run adds nothing
        assert [path.name for path in signature_files(mirror_sigs, SIGNED, digest)] == ["signature-1"]


def test_a_gpg_signed_image_copied_into_the_tree_verifies_when_imageprep_serve_serves_it(
    imageprep: Run, tmp_path: Path, signing_key: GpgKey, source: RunningRegistry
) -> None:
    source_sigs, digest = _signed_source(tmp_path, signing_key, source)
    ours = registries_d(
        tmp_path / "imageprep", {source.host: {"lookaside": source_sigs.as_uri()}}, catch_all=False
    )
    root = tmp_path / "image-serve"
    env = _environment(tmp_path, source, True, "nova-api", "keystone")
    _prepare(imageprep, env, tmp_path, "--registries.d", str(ours), "--image-serve-root", str(root))
    assert [path.name for path in signature_files(root / "sigstore", SIGNED, digest)] == ["signature-1"]
    with imageprep_serving(root) as served:
        lookaside = f"http://{served.host}/sigstore"
        signed, unsigned = _verified_pull(tmp_path, signing_key, served.host, lookaside, source.host)
        assert signed == 0 and unsigned != 0


def test_a_mirror_with_nowhere_to_stage_signatures_says_so_and_still_copies(
    imageprep: Run, tmp_path: Path, signing_key: GpgKey, source: RunningRegistry, mirror: RunningRegistry
) -> None:
    source_sigs, _ = _signed_source(tmp_path, signing_key, source)
    ours = registries_d(
        tmp_path / "imageprep", {source.host: {"lookaside": source_sigs.as_uri()}}, catch_all=False
    )
    log = _prepare(
        imageprep, _environment(tmp_path, source, mirror.host), tmp_path, "--registries.d", str(ours)
    )
    assert "WARNING: the signatures of" in log and "no file:// lookaside-staging" in log
    assert cosign.fetch_manifest(mirror.host, SIGNED, TAG)[2] is not None  # the image is there


# --- cosign-style signatures and OCI referrers ------------------------------------------------------


def _push_index(registry: RunningRegistry, repository: str) -> tuple[str, list[str]]:
    """A two-architecture image under TAG: (the index digest, the children's digests)."""
    children = {arch: make_image({"arch": arch}, oci=True, architecture=arch) for arch in ("amd64", "arm64")}
    for arch, child in children.items():
        seed_image(registry, repository, f"only-{arch}", child)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": cosign.OCI_INDEX,
            "manifests": [
                {
                    "mediaType": child.manifest_media_type,
                    "digest": child.digest,
                    "size": len(child.manifest),
                    "platform": {"architecture": arch, "os": "linux"},
                }
                for arch, child in children.items()
            ],
        }
    ).encode()
    pushed = cosign.push_artifact(registry.host, repository, TAG, cosign.Artifact(index, cosign.OCI_INDEX))
    assert pushed.digest == cosign.sha256_digest(index)
    return cosign.sha256_digest(index), [child.digest for child in children.values()]


def _sign(key: cosign.CosignKey, registry: RunningRegistry, repository: str, digest: str) -> None:
    signature = cosign.signature_artifact(key, f"{registry.host}/{repository}", digest)
    cosign.push_artifact(registry.host, repository, cosign.cosign_tag(digest), signature)


def _verified(key: cosign.CosignKey, host: str, repository: str, digest: str) -> str:
    manifest, _, _ = cosign.fetch_manifest(host, repository, cosign.cosign_tag(digest))
    return cosign.verify_cosign_signature(
        key, manifest, lambda blob: cosign.fetch_blob(host, repository, blob)
    )


def test_cosign_signatures_and_referrers_verify_at_the_mirror_for_single_and_multi_arch_images(
    imageprep: Run, tmp_path: Path, source: RunningRegistry, mirror: RunningRegistry
) -> None:
    key = cosign.cosign_key()
    image = _image("nova-api")
    seed_image(source, SIGNED, TAG, image)
    _sign(key, source, SIGNED, image.digest)
    sbom = cosign.referrer_artifact(
        {"mediaType": image.manifest_media_type, "digest": image.digest, "size": len(image.manifest)},
        SBOM,
        b'{"packages": []}',
    )
    cosign.push_artifact(source.host, SIGNED, sbom.digest, sbom)
    fallback = cosign.fallback_index_artifact([sbom])  # this registry has no referrers API
    cosign.push_artifact(source.host, SIGNED, cosign.referrers_fallback_tag(image.digest), fallback)
    index, children = _push_index(source, MULTI)
    for digest in (index, *children):
        _sign(key, source, MULTI, digest)

    env = _environment(tmp_path, source, mirror.host, "nova-api", "heat-api")
    env.write_text(env.read_text().replace("push_destination:", "multi_arch: true\n    push_destination:"))
    log = _prepare(imageprep, env, tmp_path)
    assert "signatures and attachments: 5 copied" in log

    mirrored = cosign.fetch_manifest(mirror.host, SIGNED, TAG)[2]
    assert _verified(key, mirror.host, SIGNED, image.digest) == mirrored == image.digest
    for digest in (index, *children):
        assert _verified(key, mirror.host, MULTI, digest) == digest
    listed, _, _ = cosign.fetch_manifest(mirror.host, SIGNED, cosign.referrers_fallback_tag(image.digest))
    assert [entry["digest"] for entry in json.loads(listed)["manifests"]] == [sbom.digest]
    assert [entry.get("artifactType") for entry in json.loads(listed)["manifests"]] == [SBOM]

    # And into the local registry: the same signatures verify as imageprep serve serves them,
    # and the referrer is answered by its referrers API.
    root = tmp_path / "image-serve"
    local = _environment(tmp_path, source, True, "nova-api", "heat-api")
    local.write_text(
        local.read_text().replace("push_destination:", "multi_arch: true\n    push_destination:")
    )
    _prepare(imageprep, local, tmp_path, "--image-serve-root", str(root))
    with imageprep_serving(root) as served:
        assert _verified(key, served.host, SIGNED, image.digest) == image.digest
        for digest in (index, *children):
            assert _verified(key, served.host, MULTI, digest) == digest
        answer = cosign.fetch_referrers(served.host, SIGNED, image.digest, artifact_type=SBOM)
        assert answer.status == 200 and [e["digest"] for e in json.loads(answer.body)["manifests"]] == [
            sbom.digest
        ]


def test_remove_signatures_copies_the_images_alone(
    imageprep: Run, tmp_path: Path, source: RunningRegistry, mirror: RunningRegistry
) -> None:
    key = cosign.cosign_key()
    image = _image("nova-api")
    seed_image(source, SIGNED, TAG, image)
    _sign(key, source, SIGNED, image.digest)
    log = _prepare(imageprep, _environment(tmp_path, source, mirror.host), tmp_path, "--remove-signatures")
    assert "signatures and attachments" not in log
    tags = json.loads(cosign.request(mirror.host, "GET", f"/v2/{SIGNED}/tags/list").body)["tags"]
    assert tags == [TAG]
