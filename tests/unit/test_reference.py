"""Image references parse and print themselves by the distribution rules."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from imageprep.model.errors import InvalidReferenceError
from imageprep.model.reference import ImageReference, looks_like_registry_host


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "registry", "repository"),
    [
        (
            "mylocal/centos-binary-nova-api:myhotfix",
            "",
            "mylocal/centos-binary-nova-api",
            "myhotfix",
            "docker.io",
            "mylocal/centos-binary-nova-api",
        ),
        (
            "docker.io/tripleomaster/nova-api:x",
            "docker.io",
            "tripleomaster/nova-api",
            "x",
            "docker.io",
            "tripleomaster/nova-api",
        ),
        ("192.168.24.1:8787/t/a", "192.168.24.1:8787", "t/a", None, "192.168.24.1:8787", "t/a"),
        ("localhost/foo:1", "localhost", "foo", "1", "localhost", "foo"),
        ("ubuntu", "", "ubuntu", None, "docker.io", "library/ubuntu"),
        ("localhost:5000", "", "localhost", "5000", "docker.io", "library/localhost"),
        ("[::1]:5000/a/b:c", "[::1]:5000", "a/b", "c", "[::1]:5000", "a/b"),
        ("docker://quay.io/ceph/daemon:v4", "quay.io", "ceph/daemon", "v4", "quay.io", "ceph/daemon"),
    ],
)
def test_parse(text: str, domain: str, path: str, tag: str | None, registry: str, repository: str) -> None:
    reference = ImageReference.parse(text)
    assert (reference.domain, reference.path, reference.tag) == (domain, path, tag)
    assert (reference.registry, reference.repository) == (registry, repository)


@pytest.mark.parametrize(
    "text", ["", "Upper/case", "a//b", "a/b:", "a/b:-bad", "a@sha256:short", "-a/b", "a/b c", "host:port:x/a"]
)
def test_invalid_references_are_refused(text: str) -> None:
    with pytest.raises(InvalidReferenceError):
        ImageReference.parse(text)


def test_push_destination_rewrite_keeps_the_namespace() -> None:
    reference = ImageReference.parse("mylocal/centos-binary-nova-api:myhotfix")
    assert str(reference.with_registry("192.168.24.1:8787")) == (
        "192.168.24.1:8787/mylocal/centos-binary-nova-api:myhotfix"
    )


component = st.from_regex(r"[a-z0-9]{1,4}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,4}){0,2}", fullmatch=True)
hosts = st.one_of(
    st.just(""),
    st.just("localhost"),
    st.from_regex(r"[a-z][a-z0-9-]{0,5}[a-z0-9]\.[a-z]{2,4}", fullmatch=True),
    st.builds(lambda a, b: f"127.0.{a}.{b}", st.integers(0, 255), st.integers(0, 255)),
)
ports = st.one_of(st.just(""), st.integers(1, 65535).map(lambda port: f":{port}"))
tags = st.one_of(st.none(), st.from_regex(r"[\w][\w.-]{0,20}", fullmatch=True))
digests = st.one_of(st.none(), st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True))


@given(
    host=hosts, port=ports, components=st.lists(component, min_size=1, max_size=3), tag=tags, digest=digests
)
def test_printing_then_parsing_round_trips(
    host: str, port: str, components: list[str], tag: str | None, digest: str | None
) -> None:
    domain = f"{host}{port}" if host else ""
    # Without a host, a first component that looks like one would be read as the host.
    assume(domain or not looks_like_registry_host(components[0]))
    reference = ImageReference(domain=domain, path="/".join(components), tag=tag, digest=digest)
    assert ImageReference.parse(str(reference)) == reference
    assert str(ImageReference.parse(str(reference))) == str(reference)
