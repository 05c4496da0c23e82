"""Signatures and other attachments go along with the images they hang on (in-memory stores)."""

from __future__ import annotations

import json

import pytest

from imageprep.model import mediatypes
from imageprep.model.attachments import (
    cosign_tags,
    digest_tag,
    index_entries,
    is_attachment_tag,
    matching,
    referrers_index,
    with_entry,
)
from imageprep.model.manifest import Descriptor, Manifest
from imageprep.model.retry import Retrier, RetryPolicy
from imageprep.model.urgency import is_deferred
from imageprep.transfer import BlobPolicy, CopyJob, Outcome, TransferReport, copy_images
from tests.support.imagegen import EMPTY_CONFIG, GeneratedImage, make_artifact, make_image, make_layer
from tests.support.memory_store import MemoryStore

TAG = "current-tripleo"
REPO = "tripleomaster/centos-binary-nova-api"
SIGNATURE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SBOM_TYPE = "application/spdx+json"


def run(jobs: list[CopyJob], **kwargs: object) -> TransferReport:
    return copy_images(
        jobs,
        policy=BlobPolicy(wait_timeout=30.0),
        retrier=Retrier(RetryPolicy(attempts=2), sleep=lambda seconds: None),
        architecture="amd64",
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def source() -> MemoryStore:
    return MemoryStore("src.example:5000")


@pytest.fixture
def dest() -> MemoryStore:
    return MemoryStore("127.0.0.1:8787")


@pytest.fixture
def image(source: MemoryStore) -> GeneratedImage:
    generated = make_image({"name": "nova-api"}, [make_layer({"etc/nova": b"nova"})])
    source.add_image(REPO, TAG, generated)
    return generated


def job(source: MemoryStore, dest: MemoryStore, **kwargs: object) -> CopyJob:
    return CopyJob(source, REPO, TAG, dest, REPO, TAG, **kwargs)  # type: ignore[arg-type]


# --- the naming rules ------------------------------------------------------------------------------


def test_attachment_tags_are_named_after_the_digest() -> None:
    digest = "sha256:" + "ab" * 32
    assert digest_tag(digest) == "sha256-" + "ab" * 32
    assert cosign_tags(digest) == tuple(f"sha256-{'ab' * 32}{s}" for s in (".sig", ".att", ".sbom"))
    assert all(is_attachment_tag(tag) for tag in (*cosign_tags(digest), digest_tag(digest)))
    for tag in ("current-tripleo", "sha256-abc.sig", f"sha256-{'ab' * 32}.txt", f"sha512-{'ab' * 32}"):
        assert not is_attachment_tag(tag)


def test_a_referrers_index_lists_each_referrer_once_and_filters_by_type() -> None:
    first = {
        "mediaType": mediatypes.OCI_MANIFEST,
        "digest": "sha256:" + "1" * 64,
        "size": 9,
        "artifactType": "a",
    }
    second = {**first, "digest": "sha256:" + "2" * 64, "artifactType": "b"}
    entries = with_entry([], first)
    assert entries is not None
    assert with_entry(entries, first) is None  # already listed: nothing to write
    entries = with_entry(entries, second)
    assert entries is not None
    raw = referrers_index(entries)
    assert json.loads(raw)["mediaType"] == mediatypes.OCI_INDEX
    assert index_entries(raw, "test") == [first, second]
    assert matching(entries, "b") == [second] and matching(entries, None) == entries


def test_a_referrer_entry_takes_its_type_from_the_manifest_or_its_config(image: GeneratedImage) -> None:
    typed = make_artifact(b"x", subject=image, artifact_type=SBOM_TYPE)
    manifest = Manifest.parse(typed.manifest, typed.manifest_media_type, "test")
    assert manifest.subject is not None and manifest.subject.digest == image.digest
    entry = manifest.referrer_entry()
    assert entry["artifactType"] == SBOM_TYPE and entry["annotations"] == {"org.example.payload": "x"}
    untyped = Manifest.parse(make_artifact(b"y", subject=image).manifest, None, "test")
    assert untyped.referrer_entry()["artifactType"] == EMPTY_CONFIG.media_type  # the config's media type


# --- what the engine copies ------------------------------------------------------------------------


def test_cosign_tags_of_a_copied_image_come_along(
    source: MemoryStore, dest: MemoryStore, image: GeneratedImage
) -> None:
    signature, sbom = make_artifact(b"signed"), make_artifact(b"bill of materials")
    sig_tag, _, sbom_tag = cosign_tags(image.digest)
    source.add_image(REPO, sig_tag, signature)
    source.add_image(REPO, sbom_tag, sbom)
    report = run([job(source, dest)])
    assert report.images[0].outcome is Outcome.COPIED
    assert dest.tags[(REPO, sig_tag)] == signature.digest and dest.tags[(REPO, sbom_tag)] == sbom.digest
    assert report.attachments.tags == 2
    assert "signatures and attachments: 2 copied" in report.summary()


def test_referrers_come_along_through_the_api(
    source: MemoryStore, dest: MemoryStore, image: GeneratedImage
) -> None:
    referrer = make_artifact(b"bundle", subject=image, artifact_type=SIGNATURE_TYPE)
    source.add_image(REPO, None, referrer)  # by digest only: the API is the way to find it
    report = run([job(source, dest)])
    assert (REPO, referrer.digest) in dest.manifests
    assert [d.digest for d in dest.referrers(REPO, image.digest) or []] == [referrer.digest]
    assert report.attachments.referrers == 1


def test_referrers_are_found_under_the_fallback_tag_where_the_source_has_no_api(
    source: MemoryStore, dest: MemoryStore, image: GeneratedImage
) -> None:
    source.referrers_api = False
    referrer = make_artifact(b"bundle", subject=image, artifact_type=SIGNATURE_TYPE)
    source.add_image(REPO, None, referrer)
    index = referrers_index([Manifest.parse(referrer.manifest, None, "t").referrer_entry()])
    source.add_manifest(REPO, digest_tag(image.digest), Manifest.parse(index, mediatypes.OCI_INDEX, "t"))
    report = run([job(source, dest)])
    assert (REPO, referrer.digest) in dest.manifests
    assert report.attachments.referrers == 1


def test_lookaside_signatures_come_along_and_are_not_added_twice(
    source: MemoryStore, dest: MemoryStore, image: GeneratedImage
) -> None:
    source.signatures[(REPO, image.digest)] = [b"gpg signature 1", b"gpg signature 2"]
    first = run([job(source, dest)])
    assert dest.signatures[(REPO, image.digest)] == [b"gpg signature 1", b"gpg signature 2"]
    assert first.attachments.signatures == 2
    again = run([job(source, dest)])  # the image is skipped; its signatures are checked, not re-added
    assert again.images[0].outcome is Outcome.SKIPPED
    assert again.attachments.signatures == 0 and again.attachments.present == 2
    assert dest.signatures[(REPO, image.digest)] == [b"gpg signature 1", b"gpg signature 2"]


def test_a_rerun_finds_new_signature_tags_with_one_tag_listing(
    source: MemoryStore, dest: MemoryStore, image: GeneratedImage
) -> None:
    run([job(source, dest)])
    source.add_image(REPO, cosign_tags(image.digest)[0], make_artifact(b"signed later"))
    source.calls.clear()
    report = run([job(source, dest)])
    assert report.images[0].outcome is Outcome.SKIPPED and report.attachments.tags == 1
    assert source.count("list_tags") == 1
    assert source.count("referrers") == 0  # the API is asked only when the image itself is copied


def test_present_attachments_are_not_copied_again(
    source: MemoryStore, dest: MemoryStore, image: GeneratedImage
) -> None:
    source.add_image(REPO, cosign_tags(image.digest)[0], make_artifact(b"signed"))
    source.add_image(REPO, None, make_artifact(b"bundle", subject=image, artifact_type=SIGNATURE_TYPE))
    run([job(source, dest)])
    dest.put_log.clear()
    report = run([job(source, dest)])
    assert dest.put_log == [] and report.attachments.copied == 0


def test_attachments_of_every_child_of_a_list_copied_whole(source: MemoryStore, dest: MemoryStore) -> None:
    children = {
        arch: make_image({"arch": arch}, [make_layer({f"bin/{arch}": arch.encode()})], architecture=arch)
        for arch in ("amd64", "arm64")
    }
    for child in children.values():
        source.add_image(REPO, None, child)
    index_doc = {
        "schemaVersion": 2,
        "mediaType": mediatypes.DOCKER_MANIFEST_LIST,
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
    index = Manifest.parse(json.dumps(index_doc).encode(), mediatypes.DOCKER_MANIFEST_LIST, "t")
    source.add_manifest(REPO, TAG, index)
    for digest in (index.digest, *(child.digest for child in children.values())):
        source.add_image(REPO, cosign_tags(digest)[0], make_artifact(digest.encode()))
    report = run([job(source, dest, all_architectures=True)])
    assert report.attachments.tags == 3


def test_switched_off_nothing_but_the_image_is_copied(
    source: MemoryStore, dest: MemoryStore, image: GeneratedImage
) -> None:
    source.add_image(REPO, cosign_tags(image.digest)[0], make_artifact(b"signed"))
    source.signatures[(REPO, image.digest)] = [b"gpg signature"]
    report = run([job(source, dest)], attachments=False)
    assert report.images[0].outcome is Outcome.COPIED
    assert (REPO, cosign_tags(image.digest)[0]) not in dest.tags and not dest.signatures
    assert source.count("list_tags") == 0


def test_a_job_for_a_modification_brings_no_attachments(
    source: MemoryStore, dest: MemoryStore, image: GeneratedImage
) -> None:
    source.add_image(REPO, cosign_tags(image.digest)[0], make_artifact(b"signed"))
    report = run([job(source, dest, attachments=False)])
    assert report.attachments.copied == 0 and (REPO, cosign_tags(image.digest)[0]) not in dest.tags


def test_signatures_with_nowhere_to_go_are_a_warning_not_a_failure(
    source: MemoryStore, dest: MemoryStore, image: GeneratedImage
) -> None:
    source.signatures[(REPO, image.digest)] = [b"gpg signature"]
    dest.signature_storage = False
    report = run([job(source, dest)])
    assert report.images[0].outcome is Outcome.COPIED and not report.failed
    (warning,) = report.attachment_warnings()
    assert "signatures of src.example:5000/" in warning and "no lookaside staging" in warning
    assert report.to_dict()["attachment_problems"] == [warning]


def test_a_source_that_will_not_list_tags_still_has_its_image_copied(
    source: MemoryStore, dest: MemoryStore, image: GeneratedImage
) -> None:
    def refuse(repository: str) -> list[str]:
        from imageprep.model.errors import AuthenticationError

        raise AuthenticationError("tags/list refused (injected)")

    source.list_tags = refuse  # type: ignore[method-assign]
    report = run([job(source, dest)])
    assert report.images[0].outcome is Outcome.COPIED
    assert any("could not be listed" in line for line in report.attachment_warnings())


def test_the_attachment_questions_are_asked_deferred_and_the_image_s_own_are_not(
    source: MemoryStore, dest: MemoryStore, image: GeneratedImage
) -> None:
    """Deferred: a busy source answers the image's own questions first (see the connection pool)."""
    asked: dict[str, set[bool]] = {}

    class Watching(MemoryStore):
        def _watch(self, name: str) -> None:
            asked.setdefault(name, set()).add(is_deferred())

        def get_manifest(self, repository: str, reference: str) -> Manifest:
            self._watch("get_manifest")
            return super().get_manifest(repository, reference)

        def list_tags(self, repository: str) -> list[str]:
            self._watch("list_tags")
            return super().list_tags(repository)

        def referrers(self, repository: str, digest: str) -> list[Descriptor] | None:
            self._watch("referrers")
            return super().referrers(repository, digest)

        def read_signatures(self, repository: str, digest: str) -> list[bytes]:
            self._watch("read_signatures")
            return super().read_signatures(repository, digest)

    watching = Watching(source.location)
    watching.add_image(REPO, TAG, image)
    assert run([job(watching, dest)]).images[0].outcome is Outcome.COPIED
    assert asked == {
        "get_manifest": {False},
        "list_tags": {True},
        "referrers": {True},
        "read_signatures": {True},
    }
