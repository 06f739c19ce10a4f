"""The corrections' tables in todo.sqlite."""

from __future__ import annotations

import sqlite3

import pytest

from tessphot.correct.store import (
    CorrectionResult,
    lightcurve_tasks,
    open_corrections,
    save_results,
    status_counts,
)
from tessphot.tasks import STATUS
from tessphot.tasks.schema import TodoFileError


def _columns(path, table):
    with sqlite3.connect(path) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def test_tables_of_tasoc_corrections_are_added(run_copy):
    todo = run_copy / "todo.sqlite"
    with open_corrections(todo) as conn:
        tasks = lightcurve_tasks(conn)
        assert tasks and all(t.to_do for t in tasks)
        assert status_counts(conn) == {"TODO": len(tasks)}
    assert "corr_status" in _columns(todo, "todolist")
    # TASOC's columns first, in their order.
    assert _columns(todo, "diagnostics_corr")[:8] == [
        "priority",
        "lightcurve",
        "elaptime",
        "worker_wait_time",
        "variance",
        "rms_hour",
        "ptp",
        "errors",
    ]
    with sqlite3.connect(todo) as conn:
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(todolist)")}
    assert "corr_status_idx" in indexes


def test_results_saved_failures_retried_overwrite_forgets(run_copy):
    todo = run_copy / "todo.sqlite"
    with open_corrections(todo) as conn:
        a, b, *_ = lightcurve_tasks(conn)
        save_results(
            conn,
            [
                CorrectionResult(a.priority, STATUS.OK, a.lightcurve, rms_hour=100.0),
                CorrectionResult(b.priority, STATUS.ERROR, b.lightcurve, errors=["ERROR: x"]),
            ],
        )
        assert status_counts(conn)["OK"] == 1 and status_counts(conn)["ERROR"] == 1
    with open_corrections(todo) as conn:  # the failure is retried, the success kept
        todo_now = {t.priority for t in lightcurve_tasks(conn) if t.to_do}
        assert a.priority not in todo_now and b.priority in todo_now
        row = conn.execute(
            "SELECT rms_hour FROM diagnostics_corr WHERE priority = ?", (a.priority,)
        ).fetchone()
        assert row[0] == 100.0
    with open_corrections(todo, overwrite=True) as conn:
        assert all(t.to_do for t in lightcurve_tasks(conn))
        assert conn.execute("SELECT COUNT(*) FROM diagnostics_corr").fetchone()[0] == 0


def test_selection_brings_its_whole_group(run_copy):
    with open_corrections(run_copy / "todo.sqlite") as conn:
        every = lightcurve_tasks(conn)
        one = every[3]
        chosen = lightcurve_tasks(conn, {"starid": [one.starid]})
    group = [t for t in every if t.cbv_area == one.cbv_area and t.cadence == one.cadence]
    assert {t.priority for t in chosen} == {t.priority for t in group}
    assert [t.priority for t in chosen if t.to_do] == [one.priority]


def test_missing_todo_file_is_a_clear_error_and_no_run_means_nothing_to_do(tmp_path, sector_copy):
    with pytest.raises(TodoFileError, match="no such file"), open_corrections(tmp_path / "x"):
        pass
    with open_corrections(sector_copy / "todo.sqlite") as conn:
        assert lightcurve_tasks(conn) == []
