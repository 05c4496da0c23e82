"""Dockerfile.modified: rebased on the image being modified, labelled, ending as the original user."""

from __future__ import annotations

from imageprep.modify.dockerfile import modified_dockerfile

SOURCE = "192.168.24.1:8787/tripleomaster/centos-binary-nova-compute:current-tripleo"


def test_from_is_replaced_and_the_label_follows_it() -> None:
    text = "FROM docker.io/tripleomaster/centos-binary-nova-compute:latest\nRUN true\n"
    assert modified_dockerfile(text, SOURCE, "-hotfix", "nova").splitlines() == [
        f"FROM {SOURCE}",
        'LABEL modified_append_tag="-hotfix"',
        "RUN true",
        "USER nova",
    ]


def test_the_seed_example_switches_back_to_the_original_user() -> None:
    text = 'FROM base\n\nUSER root\n\nCOPY customize.sh /tmp/\nRUN /tmp/customize.sh\n\nUSER "nova"\n'
    lines = modified_dockerfile(text, SOURCE, "-hotfix", "nova").splitlines()
    assert lines[0] == f"FROM {SOURCE}"
    assert lines[-1] == "USER nova"


def test_only_the_last_stage_is_rebased_and_its_alias_kept() -> None:
    text = "FROM golang AS build\nRUN make\nfrom   example/base:1 as final\nCOPY --from=build /x /x\n"
    lines = modified_dockerfile(text, SOURCE, "-m", "").splitlines()
    assert lines[0] == "FROM golang AS build"
    assert lines[2] == f"FROM {SOURCE} as final"
    assert lines[3] == 'LABEL modified_append_tag="-m"'


def test_platform_flag_is_dropped_with_the_old_base() -> None:
    lines = modified_dockerfile("FROM --platform=linux/amd64 base\n", SOURCE, "-m", "").splitlines()
    assert lines == [f"FROM {SOURCE}", 'LABEL modified_append_tag="-m"']


def test_a_file_without_from_gets_one() -> None:
    lines = modified_dockerfile("RUN true\n", SOURCE, "-m", "").splitlines()
    assert lines[:3] == [f"FROM {SOURCE}", 'LABEL modified_append_tag="-m"', "RUN true"]


def test_an_image_without_a_user_ends_as_root_only_when_the_file_changed_users() -> None:
    assert modified_dockerfile("FROM x\nRUN true\n", SOURCE, "-m", "").splitlines()[-1] == "RUN true"
    assert modified_dockerfile("FROM x\nUSER nova\n", SOURCE, "-m", "").splitlines()[-1] == "USER root"
