"""What a new user meets in the first hour: each of these once went wrong, and must not again.

Everything here stays on loopback: sources and destinations are 127.0.0.1 ports where nothing
listens (connections are refused at once), or the tests' own servers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import Run
from tests.support.faultproxy import fault_proxy
from tests.support.registry_server import plain_registry_server, registry_available

NOWHERE = "127.0.0.1:1"  # nothing listens: refused at once


def _environment(path: Path, source: str, destination: str | None = None, **entry: object) -> Path:
    item: dict[str, object] = {
        "includes": ["centos-binary-nova-", "centos-binary-keystone"],
        "set": {
            "namespace": f"{source}/tripleomaster",
            "name_prefix": "centos-binary-",
            "tag": "current-tripleo",
        },
        **entry,
    }
    if destination is not None:
        item["push_destination"] = destination
    path.write_text(yaml.safe_dump({"parameter_defaults": {"ContainerImagePrepare": [item]}}))
    return path


@pytest.mark.skipif(not registry_available(), reason="needs docker-registry")
@pytest.mark.parametrize("option", ["--output-env-file", "--report", "--log-file"])
def test_every_output_is_checked_before_any_registry_is_contacted(
    imageprep: Run, tmp_path: Path, option: str
) -> None:
    with plain_registry_server(tmp_path / "registry") as registry, fault_proxy(registry.host) as counted:
        env = _environment(tmp_path / "env.yaml", counted.host, counted.host, tag_from_label="rdo_version")
        done = imageprep("prepare", "-e", str(env), option, "nodir/out.file")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: nodir/out.file: directory nodir does not exist"
    assert counted.requests == []  # not even the probe


def test_an_output_that_is_a_directory_is_refused_at_once(imageprep: Run, tmp_path: Path) -> None:
    env = _environment(tmp_path / "env.yaml", NOWHERE, NOWHERE)
    (tmp_path / "out").mkdir()
    done = imageprep("prepare", "-e", str(env), "--output-env-file", "out")
    assert done.returncode == 2 and "out: is a directory, not a file" in done.stderr


@pytest.mark.parametrize(("typed", "meant"), [("prepar", "prepare"), ("lst", "list"), ("shwo", "show")])
def test_only_full_command_names_run_and_a_near_miss_gets_suggestions(
    imageprep: Run, typed: str, meant: str
) -> None:
    done = imageprep(typed)
    assert done.returncode == 2
    assert done.stdout == ""  # nothing ran
    assert f"error: '{typed}' is not an imageprep command" in done.stderr
    assert f"'{meant}'" in done.stderr


def test_no_command_shows_the_help_and_exits_2(imageprep: Run) -> None:
    done = imageprep()
    assert done.returncode == 2 and "Commands:" in done.stdout
    assert imageprep("--help").returncode == 0


def test_an_unreachable_registry_is_said_to_be_unreachable(imageprep: Run) -> None:
    done = imageprep("list", "--registry-url", NOWHERE)
    assert done.returncode == 4
    assert "Connection refused" in done.stderr
    assert "does not list its repositories" not in done.stderr


def test_many_images_failing_for_one_cause_are_one_error(imageprep: Run, tmp_path: Path) -> None:
    env = _environment(tmp_path / "env.yaml", NOWHERE, "127.0.0.1:2")
    done = imageprep("prepare", "-e", str(env), "--output-env-file", "out.yaml")
    assert done.returncode == 5
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert f"registry {NOWHERE}: connection failed" in errors[0] and " images: " in errors[0]
    assert "failed 127.0.0.1" not in done.stderr  # no line per image by default
    assert not (tmp_path / "out.yaml").exists()


def test_messages_name_the_problem_not_the_code(imageprep: Run) -> None:
    concurrency = imageprep("prepare", "--concurrency", "abc")
    assert (
        concurrency.returncode == 2
        and "argument --concurrency: not a whole number: 'abc'" in concurrency.stderr
    )
    assert "_positive_int" not in concurrency.stderr


def test_an_empty_container_image_prepare_says_the_defaults_are_used(imageprep: Run, tmp_path: Path) -> None:
    env = tmp_path / "env.yaml"
    env.write_text("parameter_defaults:\n  ContainerImagePrepare: []\n")
    done = imageprep("prepare", "-e", str(env), "--dry-run", "--offline")
    assert done.returncode == 0, done.stderr
    assert f"WARNING: {env}: ContainerImagePrepare is an empty list; using the default entries" in done.stderr
    assert "not defined" not in done.stderr


def test_an_append_tag_may_start_with_a_dash() -> None:
    from imageprep.cli.push import Push

    parser = Push(None, None).get_parser("imageprep push")  # type: ignore[arg-type]
    parsed = parser.parse_args(["docker.io/a/b:1", "--append-tag", "-pushed", "--dry-run"])
    assert parsed.append_tag == "-pushed" and parsed.dry_run
    joined = parser.parse_args(["docker.io/a/b:1", "--append-tag=-modified-1"])
    assert joined.append_tag == "-modified-1"
    with pytest.raises(SystemExit):  # an option of the command is not taken for the tag
        parser.parse_args(["docker.io/a/b:1", "--append-tag", "--dry-run"])


@pytest.mark.skipif(not registry_available(), reason="needs docker-registry and skopeo")
def test_the_local_registry_has_one_name_everywhere(
    imageprep: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.imagegen import make_image, random_layer
    from tests.support.seeding import seed_image

    image = make_image({"name": "keystone"}, [random_layer(1000, "one-name", oci=True)], oci=True)
    monkeypatch.setenv("IMAGEPREP_IMAGE_SERVE_ROOT", str(tmp_path / "tree"))
    with plain_registry_server(tmp_path / "source") as source:
        seed_image(source, "tripleomaster/centos-binary-keystone", "current-tripleo", image)
        env = tmp_path / "env.yaml"
        entry = {
            "push_destination": True,
            "includes": ["centos-binary-keystone"],
            "set": {
                "namespace": f"{source.host}/tripleomaster",
                "name_prefix": "centos-binary-",
                "tag": "current-tripleo",
            },
        }
        env.write_text(
            yaml.safe_dump(
                {
                    "parameter_defaults": {
                        "LocalContainerRegistry": "127.0.0.9",
                        "ContainerImagePrepare": [entry],
                    }
                }
            )
        )
        imageprep("prepare", "-e", str(env), "--output-env-file", "out.yaml", check=True)
    parameters = yaml.safe_load((tmp_path / "out.yaml").read_text())["parameter_defaults"]
    name = parameters["ContainerKeystoneImage"]
    assert name == "127.0.0.9:8787/tripleomaster/centos-binary-keystone:current-tripleo"
    listed = imageprep("list", "-f", "value", "-c", "Image Name", check=True)
    assert listed.stdout.split() == [name]  # as the parameters name it, not localhost:8787
    # Pasted from the parameters: read from the tree (nothing serves 127.0.0.9:8787)
    shown = imageprep("show", name, "-f", "value", "-c", "Digest", check=True)
    assert shown.stdout.strip() == image.digest
    alias = imageprep(
        "show",
        "localhost:8787/tripleomaster/centos-binary-keystone:current-tripleo",
        "-f",
        "value",
        "-c",
        "Name",
        check=True,
    )
    assert alias.stdout.strip() == name
    deleted = imageprep("delete", name, "-y", check=True)
    assert deleted.stdout.startswith(f"deleted {name}")


def test_a_first_run_does_not_scan_the_installed_packages(imageprep: Run, tmp_path: Path) -> None:
    # cliff's command-hook lookup would scan every installed entry point and cache the scan in
    # ~/.cache on a first run (most of a tenth of a second); imageprep's own program has no hooks.
    env = tmp_path / "env.yaml"
    env.write_text("parameter_defaults:\n  ContainerImagePrepare: []\n")
    done = imageprep("prepare", "-e", str(env), "--dry-run", "--offline")
    assert done.returncode == 0, done.stderr
    cache = tmp_path / "home" / ".cache"
    assert sorted(path.name for path in cache.iterdir()) == ["imageprep"]  # its own, and only that
