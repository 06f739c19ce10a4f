"""The task manager: handing out tasks, storing results, SKIPPED logic, summary, durability."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tessphot.tasks import (
    STATUS,
    TaskManager,
    TaskResult,
    TodoFileError,
    build_constraints,
    write_todolist,
)
from tessphot.tasks import database as database_module

#: (starid, datasource, tmag, camera, cadence) of the test targets; priorities follow tmag.
TARGETS = [
    (100, "ffi", 6.0, 1, 1800),  # 1  TIC 100 in the FFIs ...
    (100, "tpf", 6.0, 1, 120),  # 2  ... and in its own TPF (ties: by starid, then datasource)
    (200, "ffi", 7.0, 1, 1800),  # 3
    (201, "ffi", 7.5, 2, 1800),  # 4
    (300, "ffi", 9.0, 1, 1800),  # 5
    (301, "ffi", 9.0, 1, 1800),  # 6  same magnitude as 300
    (101, "tpf:100", 11.0, 1, 120),  # 7  secondaries in 100's TPF
    (102, "tpf:100", 12.0, 1, 120),  # 8
    (400, "ffi", 13.0, 1, 1800),  # 9
]


def _rows(targets=TARGETS):
    return [
        {
            "starid": s,
            "sector": 1,
            "camera": cam,
            "ccd": 1,
            "cadence": cad,
            "datasource": ds,
            "tmag": t,
            "cbv_area": 100 * cam + 11,
        }
        for s, ds, t, cam, cad in targets
    ]


@pytest.fixture
def todo(tmp_path):
    return write_todolist(tmp_path / "todo.sqlite", _rows())


def _priority(conn, starid, datasource):
    return conn.execute(
        "SELECT priority FROM todolist WHERE starid=? AND datasource=?", (starid, datasource)
    ).fetchone()[0]


def _status(path):
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT starid, datasource, status FROM todolist").fetchall()
        return {(s, d): (None if st is None else STATUS(st)) for s, d, st in rows}
    finally:
        conn.close()


def _skipped(path):
    conn = sqlite3.connect(path)
    try:
        q = (
            "SELECT a.starid, a.datasource, b.starid, b.datasource FROM photometry_skipped "
            "JOIN todolist a ON a.priority = photometry_skipped.priority "
            "JOIN todolist b ON b.priority = photometry_skipped.skipped_by"
        )
        return {((r[0], r[1]), (r[2], r[3])) for r in conn.execute(q)}
    finally:
        conn.close()


def _result(priority, status=STATUS.OK, skip=(), **details):
    details["skip_targets"] = list(skip)
    return TaskResult(
        priority=priority,
        status=status,
        method_used="aperture",
        elaptime=1.5,
        worker_wait_time=0.1,
        details=details,
    )


# ---------------------------------------------------------------------------------------------
# Input errors


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.sqlite"):
        TaskManager(tmp_path / "nothere.sqlite")
    with pytest.raises(FileNotFoundError, match="todo.sqlite"):
        TaskManager(tmp_path)  # a folder without a todo file
    text = tmp_path / "text.sqlite"
    text.write_text("this is not a database" * 100)
    with pytest.raises(TodoFileError, match=r"text\.sqlite: not an SQLite database"):
        TaskManager(text)
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE catalog (starid INTEGER)")
    conn.close()
    with pytest.raises(TodoFileError, match=r"other\.sqlite: not a todo file"):
        TaskManager(other)
    old = tmp_path / "old.sqlite"
    conn = sqlite3.connect(old)
    conn.execute(
        "CREATE TABLE todolist (priority INTEGER PRIMARY KEY, starid INTEGER, "
        "sector INTEGER, datasource TEXT, camera INTEGER, ccd INTEGER, method TEXT, "
        "tmag REAL, status INTEGER, cbv_area INTEGER)"
    )
    conn.close()
    with pytest.raises(TodoFileError, match="lacks the column.*cadence"):
        TaskManager(old)
    with pytest.raises(TypeError, match="cleanup_constraints"):
        TaskManager(old, cleanup_constraints=["status=1"])
    for bad in (0, -1, 1.5, None, True):
        with pytest.raises(ValueError, match="summary_interval"):
            TaskManager(old, summary_interval=bad)


def test_newer_format_rejected(todo):
    conn = sqlite3.connect(todo)
    conn.execute("UPDATE tessphot_metadata SET value='99' WHERE key='format_version'")
    conn.commit()
    conn.close()
    with pytest.raises(TodoFileError, match="format version 99 is newer"):
        TaskManager(todo)


def test_second_manager_is_refused(todo, monkeypatch):
    monkeypatch.setattr(database_module, "LOCK_TIMEOUT", 0.05)
    with TaskManager(todo):
        with pytest.raises(TodoFileError, match="in use by another process"):
            TaskManager(todo)
    with TaskManager(todo):  # released on close
        pass


# ---------------------------------------------------------------------------------------------
# Handing out tasks


def test_get_task_order_and_constraints(todo):
    with TaskManager(todo) as tm:
        assert tm.get_number_tasks() == len(TARGETS)
        task = tm.get_task()
        assert task == {
            "priority": 1,
            "starid": 100,
            "method": None,
            "sector": 1,
            "camera": 1,
            "ccd": 1,
            "cadence": 1800,
            "datasource": "ffi",
            "tmag": 6.0,
        }
        assert tm.get_task(datasource="ffi")["priority"] == 1
        assert tm.get_task(datasource="tpf")["priority"] == 2
        assert tm.get_task(datasource="anything")["datasource"] == "tpf"
        assert tm.get_task(camera=2)["starid"] == 201
        assert tm.get_task(camera=[2, 3])["starid"] == 201
        assert tm.get_task(starid=300, cadence=1800)["priority"] == 5
        assert tm.get_task(cadence="ffi", tmag_min=6.5)["starid"] == 200
        assert tm.get_task(priority=[7, 5])["priority"] == 5
        assert tm.get_task(cbv_area=211)["starid"] == 201
        assert tm.get_task(starid=[]) is None
        assert tm.get_number_tasks(camera=1, cadence=1800) == 5
        assert tm.get_number_tasks(sector=2) == 0
        # Magnitude window: secondaries travel with their primary (Tmag 6).
        got = set()
        while (task := tm.get_task(tmag_max=6.5)) is not None:
            tm.start_task(task)
            got.add((task["starid"], task["datasource"]))
        assert got == {(100, "tpf"), (100, "ffi"), (101, "tpf:100"), (102, "tpf:100")}
        assert tm.get_number_tasks(tmag_min=10.5) == 1  # only 400: 101/102 go by 100's Tmag
        assert tm.get_number_tasks(tmag_min=8, tmag_max=9) == 2
        for _ in range(20):
            task = tm.get_random_task(cadence=1800)
            assert task["cadence"] == 1800 and task["starid"] != 100  # 100 (FFI) started
        assert tm.get_random_task(starid=101) is None  # already started
        with pytest.raises(TypeError, match="unknown task constraint"):
            tm.get_task(tmag=5)


def test_tasks_carry_the_faint_limit_of_the_targets(tmp_path):
    """The todo stage's faint limit travels with every task: catalogued stars fainter than
    it have no task (nor a light curve to lose to another star's aperture)."""
    path = write_todolist(
        tmp_path / "todo.sqlite",
        _rows(),
        metadata={"todo_settings": {"faint_limit": 13.5, "halo_tmag_limit": 2.0}},
    )
    with TaskManager(path) as tm:
        assert tm.target_limit == 13.5
        assert tm.get_task()["target_limit"] == 13.5
        assert tm.get_random_task()["target_limit"] == 13.5
        assert {t["target_limit"] for t in tm.get_tasks()} == {13.5}
    # Not recorded, or unreadable: no limit, and the tasks do not carry one.
    for settings in ('{"faint_limit": null}', "not json", '["a list"]'):
        path = write_todolist(
            tmp_path / "todo.sqlite", _rows(), overwrite=True, metadata={"todo_settings": settings}
        )
        with TaskManager(path) as tm:
            assert tm.target_limit is None and "target_limit" not in tm.get_task()


def test_build_constraints():
    where, params = build_constraints(starid=5, camera=[1, 2], datasource="ffi")
    assert (
        where
        == "todolist.starid IN (?) AND todolist.camera IN (?,?) AND todolist.datasource = 'ffi'"
    )
    assert params == [5, 1, 2]
    assert build_constraints() == ("1", [])
    assert build_constraints(starid=None) == ("1", [])
    with pytest.raises(ValueError, match="cadence"):
        build_constraints(cadence="tpf")


def test_start_task(todo):
    with TaskManager(todo) as tm:
        tm.start_task(3)
        assert _status_of(tm, 3) == STATUS.STARTED
        assert tm.get_number_tasks() == len(TARGETS) - 1
        with pytest.raises(ValueError, match="not waiting to be done.*STARTED"):
            tm.start_task({"priority": 3})
        tm.save_result(_result(3))
        with pytest.raises(ValueError, match="not waiting to be done.*OK"):
            tm.start_task(3)
        with pytest.raises(ValueError, match="no task with priority 999"):
            tm.start_task(999)


def _status_of(tm, priority):
    row = tm._conn.execute("SELECT status FROM todolist WHERE priority=?", (priority,)).fetchone()
    return None if row[0] is None else STATUS(row[0])


# ---------------------------------------------------------------------------------------------
# Results


def test_save_result_diagnostics(todo):
    details = {
        "filepath_lightcurve": "c1800/00000/tess00000000300-s001-1-1-c1800-dr01-v01-tasoc_lc.fits",
        "mean_flux": np.float32(1234.5),
        "variance": 1e-6,
        "variability": np.nan,
        "rms_hour": 2e-4,
        "ptp": 1e-4,
        "pos_row": 10.25,
        "pos_column": np.float64(20.5),
        "contamination": 0.01,
        "mask_size": np.int64(12),
        "edge_flux": None,
        "stamp": (0, 15, 5, 22),
        "errors": ["WARNING: first", "ERROR: second"],
    }
    with TaskManager(todo) as tm:
        tm.start_task(4)
        tm.save_result(_result(4, STATUS.WARNING, **details))
        row = dict(tm._conn.execute("SELECT * FROM diagnostics WHERE priority=4").fetchone())
        assert _status_of(tm, 4) == STATUS.WARNING
    assert row == {
        "priority": 4,
        "lightcurve": details["filepath_lightcurve"],
        "method_used": "aperture",
        "elaptime": 1.5,
        "worker_wait_time": 0.1,
        "mean_flux": 1234.5,
        "variance": 1e-6,
        "variability": None,
        "rms_hour": 2e-4,
        "ptp": 1e-4,
        "pos_row": 10.25,
        "pos_column": 20.5,
        "contamination": 0.01,
        "mask_size": 12,
        "edge_flux": None,
        "stamp_width": 17,
        "stamp_height": 15,
        "stamp_resizes": 0,
        "prf_chi2": None,
        "errors": "WARNING: first\nERROR: second",
    }
    with TaskManager(todo) as tm:  # OK results are kept; a new result replaces the old one
        assert _status_of(tm, 4) == STATUS.WARNING
        tm.save_result(TaskResult(priority=4, status=1, method_used="halo", elaptime=2.0))
        row = dict(tm._conn.execute("SELECT * FROM diagnostics WHERE priority=4").fetchone())
        assert row["method_used"] == "halo" and row["errors"] is None and row["elaptime"] == 2.0
        with pytest.raises(ValueError, match="no task with priority 77"):
            tm.save_result(_result(77))


def test_invalid_status_becomes_error(todo):
    with TaskManager(todo) as tm:
        for priority, status in ((2, STATUS.UNKNOWN), (3, None), (4, 42), (5, STATUS.STARTED)):
            tm.save_result(_result(priority, status))
            assert _status_of(tm, priority) == STATUS.ERROR
        errors = tm._conn.execute("SELECT errors FROM diagnostics WHERE priority=4").fetchone()[0]
        assert "invalid status 42" in errors
        assert tm.summary["last_error"] == "ERROR: invalid status STARTED returned for the task"


def test_reset_at_start(todo):
    with TaskManager(todo) as tm:
        for priority, status in (
            (1, STATUS.OK),
            (2, STATUS.ERROR),
            (4, STATUS.ABORT),
            (3, STATUS.WARNING),
        ):
            tm.save_result(_result(priority, status))
        tm.start_task(5)
        tm.start_task(8)
    with TaskManager(todo, cleanup_constraints={"camera": 2}) as tm:  # only camera 2 (task 4)
        assert [_status_of(tm, p) for p in (1, 2, 3, 4, 5, 8)] == [
            STATUS.OK,
            STATUS.ERROR,
            STATUS.WARNING,
            None,
            STATUS.STARTED,
            STATUS.STARTED,
        ]
        count = tm._conn.execute("SELECT COUNT(*) FROM diagnostics WHERE priority=4").fetchone()
        assert count[0] == 0
    with TaskManager(todo) as tm:
        assert [_status_of(tm, p) for p in (1, 2, 3, 4, 5, 8)] == [
            STATUS.OK,
            None,
            STATUS.WARNING,
            None,
            None,
            None,
        ]
        priorities = [r[0] for r in tm._conn.execute("SELECT priority FROM diagnostics")]
        assert sorted(priorities) == [1, 3]
    with TaskManager(todo, overwrite=True) as tm:
        assert tm.get_number_tasks() == len(TARGETS)
        assert tm._conn.execute("SELECT COUNT(*) FROM diagnostics").fetchone()[0] == 0


# ---------------------------------------------------------------------------------------------
# SKIPPED logic (§6.2)


def test_bright_target_skips_fainter_neighbours(todo):
    with TaskManager(todo) as tm:
        p200, p300, p301 = (_priority(tm._conn, s, "ffi") for s in (200, 300, 301))
        tm.save_result(_result(p200, skip=[300, 301, 999]))  # 999 is not in the list
        # A skipped one may still come back with a result (it was running in parallel):
        # it stays SKIPPED, as in a serial run, where it would not have run.
        tm.save_result(_result(p300))
    status = _status(todo)
    assert status[(200, "ffi")] == STATUS.OK
    assert status[(301, "ffi")] == STATUS.SKIPPED
    assert status[(300, "ffi")] == STATUS.SKIPPED
    assert _skipped(todo) == {((301, "ffi"), (200, "ffi")), ((300, "ffi"), (200, "ffi"))}
    del p300, p301


def test_target_skipped_while_running_stays_skipped_even_if_it_fails(todo):
    """In a parallel run a faint target may fail (e.g. its mask is the bright star's) while
    the bright star's result makes it SKIPPED: it stays SKIPPED, as in a serial run."""
    with TaskManager(todo) as tm:
        p200, p300 = (_priority(tm._conn, s, "ffi") for s in (200, 300))
        tm.start_task(p300)
        tm.save_result(_result(p200, skip=[300]))
        tm.save_result(_result(p300, STATUS.ERROR))
        assert _status_of(tm, p300) == STATUS.SKIPPED
    assert ((300, "ffi"), (200, "ffi")) in _skipped(todo)


def test_faint_target_first_is_skipped_by_brighter(todo):
    with TaskManager(todo) as tm:
        p200, p400 = _priority(tm._conn, 200, "ffi"), _priority(tm._conn, 400, "ffi")
        tm.save_result(_result(p400, skip=[200, 300]))
        assert _status_of(tm, p400) == STATUS.SKIPPED
        assert _status_of(tm, p200) is None  # the brighter one still runs
        tm.save_result(_result(p200, skip=[400]))  # and confirms the skip
        assert _status_of(tm, p200) == STATUS.OK
    assert _skipped(todo) == {((400, "ffi"), (200, "ffi"))}


def test_equal_magnitudes_skip_only_one(todo):
    with TaskManager(todo) as tm:
        p300, p301 = _priority(tm._conn, 300, "ffi"), _priority(tm._conn, 301, "ffi")
        tm.save_result(_result(p301, skip=[300]))  # the later one first: skipped by 300
        tm.save_result(_result(p300, skip=[301]))
    status = _status(todo)
    assert (status[(300, "ffi")], status[(301, "ffi")]) == (STATUS.OK, STATUS.SKIPPED)
    assert _skipped(todo) == {((301, "ffi"), (300, "ffi"))}


def test_other_datasource_and_group_not_skipped(todo):
    with TaskManager(todo) as tm:
        p200 = _priority(tm._conn, 200, "ffi")
        # 100 (FFI, camera 1) is brighter: 200 is skipped by it (not by 100's TPF task);
        # 201 is on camera 2, so it is not affected.
        tm.save_result(_result(p200, skip=[100, 201]))
        assert _status_of(tm, p200) == STATUS.SKIPPED
    assert _skipped(todo) == {((200, "ffi"), (100, "ffi"))}
    assert _status(todo)[(201, "ffi")] is None


def test_secondary_targets(todo):
    with TaskManager(todo) as tm:
        p100 = _priority(tm._conn, 100, "tpf")
        p101 = _priority(tm._conn, 101, "tpf:100")
        p102 = _priority(tm._conn, 102, "tpf:100")
        # A secondary inside its primary's mask is SKIPPED by the primary.
        tm.save_result(_result(p102, skip=[100]))
        assert _status_of(tm, p102) == STATUS.SKIPPED
        # The primary TPF target skips its secondaries.
        tm.save_result(_result(p100, skip=[101, 300]))
        assert _status_of(tm, p101) == STATUS.SKIPPED
        assert _status_of(tm, 5) is None  # 300 is an FFI target: not touched
    assert _skipped(todo) == {((102, "tpf:100"), (100, "tpf")), ((101, "tpf:100"), (100, "tpf"))}


def test_secondary_without_primary(tmp_path):
    todo = write_todolist(tmp_path / "todo.sqlite", _rows([(101, "tpf:100", 11.0, 1, 120)]))
    with TaskManager(todo) as tm:
        tm.save_result(_result(1, skip=[100]))
        assert _status_of(tm, 1) == STATUS.OK
        errors = tm._conn.execute("SELECT errors FROM diagnostics").fetchone()[0]
    assert errors == "TargetNotFoundError: Could not find primary TPF target (TIC 100)"


def test_failed_task_releases_and_does_not_skip(todo):
    with TaskManager(todo) as tm:
        p200, p300, p400 = (_priority(tm._conn, s, "ffi") for s in (200, 300, 400))
        tm.save_result(_result(p400, skip=[200]))
        assert _status_of(tm, p400) == STATUS.SKIPPED
        tm.save_result(_result(p200, STATUS.ERROR, skip=[300, 400]))
        # The failed bright star skips nobody and releases 400.
        assert _status_of(tm, p300) is None
        assert _status_of(tm, p400) is None
        assert tm._conn.execute("SELECT COUNT(*) FROM photometry_skipped").fetchone()[0] == 0
        # 400 again: its brighter neighbour failed, so it keeps its own light curve.
        tm.save_result(_result(p400, skip=[200]))
        assert _status_of(tm, p400) == STATUS.OK
    with TaskManager(todo) as tm:  # 200 is retried, succeeds, and skips 400 after all
        assert _status_of(tm, p200) is None
        tm.save_result(_result(p200, skip=[400]))
        assert _status_of(tm, p400) == STATUS.SKIPPED
    assert _skipped(todo) == {((400, "ffi"), (200, "ffi"))}


# ---------------------------------------------------------------------------------------------
# Summary, durability, foreign files


def test_summary(todo, tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    summary_file = tmp_path / "out" / "summary.json"
    with TaskManager(todo, summary=summary_file, summary_interval=2) as tm:
        first = json.loads(summary_file.read_text())
        assert first["numtasks"] == len(TARGETS) and first["tasks_run"] == 0
        tm.start_task(1)
        tm.save_result(
            TaskResult(priority=1, status=STATUS.OK, elaptime=3.14, worker_wait_time=1.0)
        )
        assert json.loads(summary_file.read_text()) == first  # not yet: interval 2
        tm.start_task(2)
        tm.save_result(
            TaskResult(
                priority=2, status=STATUS.ERROR, elaptime=6.14, details={"errors": ["ERROR: boom"]}
            )
        )
        summary = json.loads(summary_file.read_text())
        tm.start_task(3)
    assert summary == {
        "slurm_jobid": "4242",
        "numtasks": len(TARGETS),
        "tasks_run": 2,
        "last_error": "ERROR: boom",
        "mean_elaptime": pytest.approx(3.44),
        "mean_worker_waittime": 1.0,
        "UNKNOWN": 0,
        "OK": 1,
        "ERROR": 1,
        "WARNING": 0,
        "ABORT": 0,
        "SKIPPED": 0,
        "STARTED": 0,
    }
    final = json.loads(summary_file.read_text())  # written on close
    assert final["STARTED"] == 1
    assert sorted(p.name for p in summary_file.parent.iterdir()) == ["summary.json"]


def test_file_mode_and_no_wal_left(todo):
    with TaskManager(todo) as tm:
        assert tm._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tm.save_result(_result(1))
    assert tm.closed
    tm.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        tm.get_task()
    assert sorted(p.name for p in todo.parent.iterdir()) == ["todo.sqlite"]
    conn = sqlite3.connect(todo)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


def test_results_survive_a_killed_process(todo):
    script = textwrap.dedent(
        f"""
        import os
        from tessphot.tasks import TaskManager, TaskResult, STATUS
        tm = TaskManager({str(todo)!r})
        tm.start_task(1)
        tm.save_result(TaskResult(priority=1, status=STATUS.OK, elaptime=1.0))
        tm.start_task(2)
        os._exit(1)  # dies without closing anything
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    conn = sqlite3.connect(todo)
    statuses = dict(conn.execute("SELECT priority, status FROM todolist WHERE priority <= 2"))
    conn.close()
    assert statuses == {1: STATUS.OK, 2: STATUS.STARTED}
    with TaskManager(todo) as tm:  # the interrupted task is handed out again
        assert tm.get_task()["priority"] == 2
        assert _status_of(tm, 1) == STATUS.OK


def test_foreign_tables_and_legacy_diagnostics(tmp_path):
    todo = write_todolist(tmp_path / "todo.sqlite", _rows())
    conn = sqlite3.connect(todo)
    conn.executescript(
        """
        ALTER TABLE todolist ADD COLUMN corr_status INTEGER DEFAULT NULL;
        CREATE INDEX corr_status_idx ON todolist (corr_status);
        CREATE TABLE diagnostics_corr (priority INTEGER PRIMARY KEY NOT NULL, lightcurve TEXT,
            elaptime REAL, worker_wait_time REAL, variance DOUBLE, rms_hour DOUBLE, ptp DOUBLE,
            errors TEXT, FOREIGN KEY (priority) REFERENCES todolist(priority));
        INSERT INTO diagnostics_corr (priority, elaptime) VALUES (1, 9.0);
        UPDATE todolist SET corr_status = 1 WHERE priority = 1;
        DROP TABLE diagnostics;
        CREATE TABLE diagnostics (priority INTEGER PRIMARY KEY ASC NOT NULL, starid INTEGER,
            lightcurve TEXT, elaptime REAL NOT NULL, mean_flux DOUBLE, variance DOUBLE,
            variability DOUBLE, rms_hour DOUBLE, ptp DOUBLE, pos_row REAL, pos_column REAL,
            contamination REAL, mask_size INTEGER, stamp_width INTEGER, stamp_height INTEGER,
            stamp_resizes INTEGER, errors TEXT);
        INSERT INTO diagnostics (priority, starid, elaptime, errors) VALUES
            (1, 100, 1.0, NULL), (2, 200, 1.0, 'Automatically switched to Halo photometry');
        UPDATE todolist SET status = 1 WHERE priority IN (1, 2);
        DROP TABLE tessphot_metadata;
        """
    )
    conn.close()
    with TaskManager(todo) as tm:
        tm.save_result(_result(3))
    conn = sqlite3.connect(todo)
    conn.row_factory = sqlite3.Row
    columns = [r[1] for r in conn.execute("PRAGMA table_info(diagnostics)")]
    assert "starid" not in columns
    assert {"edge_flux", "worker_wait_time", "method_used"} <= set(columns)
    used = dict(conn.execute("SELECT priority, method_used FROM diagnostics"))
    assert used == {1: "aperture", 2: "halo", 3: "aperture"}
    assert conn.execute("SELECT corr_status FROM todolist WHERE priority=1").fetchone()[0] == 1
    assert conn.execute("SELECT elaptime FROM diagnostics_corr").fetchone()[0] == 9.0
    conn.close()


def test_ema_with_missing_values(todo):
    with TaskManager(todo) as tm:
        tm.save_result(TaskResult(priority=1, status=1))
        assert tm.summary["mean_elaptime"] is None
        tm.save_result(TaskResult(priority=2, status=1, elaptime=2.0, worker_wait_time=math.nan))
        assert tm.summary["mean_elaptime"] == 2.0
        assert tm.summary["mean_worker_waittime"] is None


def test_reset_count_and_status_of_tasks(tmp_path):
    """reset_tasks makes matching tasks to-do again (releasing what they made SKIPPED);
    count_tasks counts whatever the status; get_status reads one."""

    rows = [
        {
            "starid": s,
            "sector": 1,
            "camera": 1,
            "ccd": 4,
            "cadence": 1800,
            "tmag": m,
            "cbv_area": 141,
        }
        for s, m in ((10, 8.0), (11, 12.0), (12, 13.0))
    ]
    path = write_todolist(tmp_path / "todo.sqlite", rows)
    with TaskManager(path) as manager:
        task = manager.get_task()
        manager.start_task(task)
        manager.save_result(
            TaskResult(task["priority"], STATUS.OK, details={"skip_targets": [11]}, task=task)
        )
        assert manager.get_status(1) == STATUS.OK and manager.get_status(2) == STATUS.SKIPPED
        assert manager.get_status(3) is None
        assert manager.count_tasks(starid=[10, 11]) == 2 and manager.get_number_tasks() == 1
        assert manager.reset_tasks(starid=10) == 1
        assert manager.get_status(1) is None and manager.get_status(2) is None
        assert manager.get_number_tasks() == 3
        with pytest.raises(ValueError, match="no task"):
            manager.get_status(99)
