"""The listeners people see: log lines and the rich progress display."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console

from imageprep.transfer import BlobPolicy, CopyJob, copy_images
from imageprep.transfer.progress import LoggingListener
from imageprep.transfer.richprogress import RichProgressListener
from tests.support.imagegen import make_image, random_layer
from tests.support.memory_store import MemoryStore

TAG = "current-tripleo"


def jobs() -> list[CopyJob]:
    source, dest = MemoryStore("src.example:5000"), MemoryStore("127.0.0.1:8787")
    base = random_layer(20_000, "base")
    for name in ("tripleomaster/a", "tripleomaster/b"):
        source.add_image(name, TAG, make_image({"n": name}, [base]))
    return [
        CopyJob(source, n, TAG, dest, n, TAG)
        for n in ("tripleomaster/a", "tripleomaster/b", "tripleomaster/x")
    ]


def test_logging_listener_logs_each_outcome_and_the_summary(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="imageprep.transfer"):
        report = copy_images(jobs(), listener=LoggingListener(), policy=BlobPolicy())

    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == "copying 3 images"
    assert sum(m.startswith("copied src.example:5000/tripleomaster/") for m in messages) == 2
    assert any(m.startswith("failed src.example:5000/tripleomaster/x:current-tripleo") for m in messages)
    assert messages[-1] == report.summary()
    # each failure at DEBUG (-v): by default the run's one error line tells it, not a log line too
    assert [r.levelno for r in caplog.records if r.getMessage().startswith("failed")] == [logging.DEBUG]


def test_logging_listener_says_only_the_summary_by_default(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="imageprep.transfer"):
        report = copy_images(jobs(), listener=LoggingListener(), policy=BlobPolicy())

    assert [record.getMessage() for record in caplog.records] == [report.summary()]


def test_rich_listener_counts_failures_on_the_bar_and_shows_the_summary() -> None:
    output = io.StringIO()
    console = Console(file=output, force_terminal=False, width=200)

    with RichProgressListener(console) as listener:
        report = copy_images(jobs(), listener=listener, policy=BlobPolicy())

    text = output.getvalue()
    assert "failed src.example:5000/tripleomaster/x:current-tripleo" not in text  # said once, by the error
    assert report.summary() in text
    assert "3/3 images, 1 failed" in text
