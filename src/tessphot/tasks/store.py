"""Storing the result of a task: its final status, its diagnostics and the targets it skips."""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tessphot.tasks.database import transaction
from tessphot.tasks.result import TaskResult
from tessphot.tasks.schema import DIAGNOSTICS_COLUMNS
from tessphot.tasks.skipping import FAILED, release_skipped, skipped_by
from tessphot.tasks.status import HAS_LIGHTCURVE, STATUS


def _sql_value(value: Any) -> Any:
    """A value sqlite3 can bind (numpy scalars to Python, non-finite floats to NULL)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _final_status(result: TaskResult, errors: list[str]) -> STATUS:
    """The status to store: anything but a final status becomes ERROR, with a message."""
    try:
        status = STATUS(int(result.status))
    except (TypeError, ValueError):
        status = STATUS.UNKNOWN
    if status in (STATUS.UNKNOWN, STATUS.STARTED):
        raw = result.status
        name = raw.name if isinstance(raw, STATUS) else repr(raw)
        errors.append(f"ERROR: invalid status {name} returned for the task")
        status = STATUS.ERROR
    return status


def _skipped_meanwhile(conn: sqlite3.Connection, task: sqlite3.Row) -> int | None:
    """The brighter task that made this one SKIPPED while it ran (in parallel runs), if any.

    Its result, an error included, stays SKIPPED, as in a serial run, where it would not
    have run at all.
    """
    if task["status"] is None or int(task["status"]) != STATUS.SKIPPED:
        return None
    row = conn.execute(
        "SELECT s.skipped_by, t.status FROM photometry_skipped s "
        "JOIN todolist t ON t.priority = s.skipped_by WHERE s.priority = ?",
        (task["priority"],),
    ).fetchone()
    if row is None or (row[1] is not None and STATUS(int(row[1])) in FAILED):
        return None
    return int(row[0])


def store_result(
    conn: sqlite3.Connection, path: Path, result: TaskResult
) -> tuple[STATUS, list[str]]:
    """Store the result of a task in one transaction (see ``TaskManager.save_result``).

    Parameters
    ----------
    conn : sqlite3.Connection
        The todo file.
    path : Path
        The todo file's path, for error messages.
    result : TaskResult
        The task's result.

    Returns
    -------
    status : STATUS
        The status stored.
    errors : list of str
        The errors stored with the diagnostics.

    Raises
    ------
    ValueError
        If there is no task with the given priority.
    """
    priority = int(result.priority)
    task = conn.execute("SELECT * FROM todolist WHERE priority = ?", (priority,)).fetchone()
    if task is None:
        raise ValueError(f"{path}: no task with priority {priority}")
    details = dict(result.details or {})
    errors = details.get("errors") or []
    errors = [errors] if isinstance(errors, str) else [str(e) for e in errors]
    status = _final_status(result, errors)

    with transaction(conn):
        # Made SKIPPED while it ran: it stays so, whatever its result (a serial run would
        # not have run it), and its own result skips nobody.
        skipper = _skipped_meanwhile(conn, task)
        if skipper is not None:
            status = STATUS.SKIPPED
        elif status in HAS_LIGHTCURVE:
            skipper = skipped_by(conn, task, details.get("skip_targets") or (), errors)
            if skipper is not None:
                status = STATUS.SKIPPED
        elif status in FAILED:
            release_skipped(conn, priority)
        conn.execute("UPDATE todolist SET status = ? WHERE priority = ?", (int(status), priority))
        if status != STATUS.SKIPPED or skipper is not None:
            conn.execute("DELETE FROM photometry_skipped WHERE priority = ?", (priority,))
        if skipper is not None:
            conn.execute(
                "INSERT INTO photometry_skipped (priority, skipped_by) VALUES (?, ?)",
                (priority, skipper),
            )
        row = _diagnostics_row(task, result, details, errors)
        conn.execute(
            f"INSERT OR REPLACE INTO diagnostics ({', '.join(row)}) "
            f"VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )
    return status, errors


def _diagnostics_row(
    task: sqlite3.Row, result: TaskResult, details: Mapping[str, Any], errors: list[str]
) -> dict[str, Any]:
    """The task's row of the ``diagnostics`` table, values ready to bind."""
    stamp = details.get("stamp")
    width = height = None
    if stamp is not None:
        row_min, row_max, col_min, col_max = (int(v) for v in stamp)
        width, height = col_max - col_min, row_max - row_min
    elaptime = result.elaptime
    row = {
        "priority": int(task["priority"]),
        "lightcurve": details.get("filepath_lightcurve"),
        "method_used": result.method_used or task["method"] or "unknown",
        "elaptime": 0.0 if elaptime is None else float(elaptime),
        "worker_wait_time": result.worker_wait_time,
        "mean_flux": details.get("mean_flux"),
        "variance": details.get("variance"),
        "variability": details.get("variability"),
        "rms_hour": details.get("rms_hour"),
        "ptp": details.get("ptp"),
        "pos_row": details.get("pos_row"),
        "pos_column": details.get("pos_column"),
        "contamination": details.get("contamination"),
        "mask_size": details.get("mask_size"),
        "edge_flux": details.get("edge_flux"),
        "stamp_width": width,
        "stamp_height": height,
        "stamp_resizes": details.get("stamp_resizes", 0),
        "prf_chi2": details.get("prf_chi2"),
        "errors": "\n".join(errors) if errors else None,
    }
    if row["lightcurve"] is not None:
        row["lightcurve"] = os.fspath(row["lightcurve"])
    return {key: _sql_value(row[key]) for key in DIAGNOSTICS_COLUMNS}
