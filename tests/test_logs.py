"""Progress reports: a bar on a terminal, a few log lines elsewhere."""

from __future__ import annotations

import io
import logging
import sys

import pytest
from tqdm.auto import tqdm

from tessphot import logs
from tessphot.logs import LogProgress, progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def progress_lines():
    """Messages of the progress logger during the test."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Collect()
    logs.progress_log.addHandler(handler)
    old_level = logs.progress_log.level
    logs.progress_log.setLevel(logging.INFO)
    yield lines
    logs.progress_log.removeHandler(handler)
    logs.progress_log.setLevel(old_level)


def test_away_from_a_terminal_a_line_every_ten_per_cent(monkeypatch, progress_lines):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setattr(logs, "PROGRESS_LOG_SECONDS", 1e9)  # per cent steps only
    bar = progress_bar(total=200, desc="photometry", unit="task", smoothing=0.1)
    assert isinstance(bar, LogProgress)
    bar.set_postfix_str("1 failed")
    for _ in range(200):
        bar.update()
    bar.close()
    assert len(progress_lines) == 100 // logs.PROGRESS_LOG_PERCENT
    assert progress_lines[0].startswith("photometry: 20 of 200 tasks done (10 %) in ")
    assert progress_lines[-1].startswith("photometry: 200 of 200 tasks done (100 %)")
    assert progress_lines[-1].endswith("; 1 failed")
    assert sys.stderr.getvalue() == ""  # nothing drawn


def test_iterating_and_a_last_line_at_the_end(monkeypatch, progress_lines):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setattr(logs, "PROGRESS_LOG_SECONDS", 1e9)
    assert list(progress_bar(range(5), desc="simulate", unit="frame")) == [0, 1, 2, 3, 4]
    assert progress_lines[-1].startswith("simulate: 5 of 5 frames done (100 %)")
    assert len(progress_lines) == 5  # 20 % a step: every step is a tenth or more
    progress_lines.clear()
    bar = progress_bar(total=1000, desc="prepare", unit="frame", initial=990)
    bar.update(3)
    bar.close()  # stopped before the end: the last count is logged
    assert progress_lines == [progress_lines[0]] and "993 of 1000" in progress_lines[0]


def test_a_bar_on_a_terminal_and_none_when_disabled(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Terminal())
    bar = progress_bar(total=3, desc="photometry", unit="task")
    assert isinstance(bar, tqdm) and not bar.disable
    bar.close()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    quiet = progress_bar(total=3, desc="photometry", unit="task", enabled=False)
    assert isinstance(quiet, tqdm) and quiet.disable
