"""What every command shares: shell completion, a log file, and output formats."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Run


def test_bash_completion_knows_every_command(imageprep: Run) -> None:
    done = imageprep("complete", check=True)
    for word in ("prepare", "hotfix", "push", "serve", "list", "show", "delete"):
        assert word in done.stdout


def test_log_file_receives_the_log_lines(imageprep: Run, tmp_path: Path) -> None:
    (tmp_path / "env.yaml").write_text(
        "parameter_defaults:\n  ContainerImagePrepare:\n  - set: {namespace: 192.168.24.1:8787/t, tag: l}\n"
        "    tag_from_label: rdo_version\n"
    )
    imageprep(
        "--log-file", "imageprep.log", "prepare", "-e", "env.yaml", "--dry-run", "--offline", check=True
    )
    assert "tag_from_label 'rdo_version' is not evaluated" in (tmp_path / "imageprep.log").read_text()


def test_quiet_keeps_only_warnings_and_errors(imageprep: Run, tmp_path: Path) -> None:
    (tmp_path / "env.yaml").write_text(
        "parameter_defaults:\n  ContainerImagePrepare:\n  - set: {namespace: 192.168.24.1:8787/t, tag: l}\n"
        "    tag_from_label: rdo_version\n"
    )
    quiet = imageprep("-q", "prepare", "-e", "env.yaml", "--dry-run", "--offline", check=True)
    assert quiet.stderr.startswith("WARNING: ") and len(quiet.stderr.splitlines()) == 1
    (tmp_path / "bad.yaml").write_text("parameter_defaults:\n  ContainerImagePrepare: 7\n")
    failed = imageprep("-q", "prepare", "-e", "bad.yaml", "--dry-run")
    assert failed.returncode == 2 and failed.stderr.startswith("error: ")
