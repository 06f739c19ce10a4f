"""The SKIPPED logic (§6.2 of the notes): a target inside a brighter target's mask is skipped.

Targets are compared by ``(tmag, priority)``, so that of two equally bright targets exactly
one is SKIPPED. A target is SKIPPED because of a brighter target only while that one has not
failed; when a task fails, the targets it had made SKIPPED are released (status NULL) so that
they are processed themselves. A target made SKIPPED while it was running stays SKIPPED when
its result comes (:mod:`tessphot.tasks.store`), so that parallel runs give the serial run's
statuses. The table ``photometry_skipped`` records who skipped whom.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable
from typing import Any

from tessphot.tasks.status import STATUS

#: Statuses of failed tasks: they do not make other targets SKIPPED.
FAILED = frozenset({STATUS.ERROR, STATUS.ABORT})


def _failed(status: int | None) -> bool:
    """Whether a stored status is one of :data:`FAILED`."""
    return status is not None and int(status) in {int(s) for s in FAILED}


def _brightness(tmag: float | None, priority: int) -> tuple[float, int]:
    """Sort key: brighter first, ties (and unknown magnitudes) by priority."""
    return (math.inf if tmag is None else float(tmag), int(priority))


def skipped_by(
    conn: sqlite3.Connection, task: sqlite3.Row, skip_targets: Iterable[Any], errors: list[str]
) -> int | None:
    """Apply §6.2 to a task with a light curve and the other stars in its mask.

    Fainter targets among ``skip_targets`` become SKIPPED by this task.

    Parameters
    ----------
    conn : sqlite3.Connection
        The todo file, inside a transaction.
    task : sqlite3.Row
        The task's ``todolist`` row.
    skip_targets : iterable of int
        TIC numbers of the stars in the task's mask.
    errors : list of str
        The task's errors; a missing primary TPF target is added to it.

    Returns
    -------
    int or None
        The priority of the task that makes this one SKIPPED, if any.
    """
    skip = {int(s) for s in skip_targets} - {int(task["starid"])}
    if not skip:
        return None
    datasource = task["datasource"]
    if datasource.startswith("tpf:") and int(datasource[4:]) in skip:
        return _primary_target(conn, task, int(datasource[4:]), errors)
    datasources = ("tpf", f"tpf:{task['starid']}") if datasource == "tpf" else (datasource,)
    stars = sorted(skip)
    rows = conn.execute(
        f"SELECT priority, tmag, status FROM todolist "
        f"WHERE starid IN ({','.join('?' * len(stars))}) "
        f"AND datasource IN ({','.join('?' * len(datasources))}) "
        f"AND sector = ? AND camera = ? AND ccd = ? AND cadence = ? AND priority != ?",
        (*stars, *datasources, *_group(task), task["priority"]),
    ).fetchall()
    mine = _brightness(task["tmag"], task["priority"])
    brighter = [
        row
        for row in rows
        if _brightness(row["tmag"], row["priority"]) < mine and not _failed(row["status"])
    ]
    if brighter:
        brightest = min(brighter, key=lambda r: _brightness(r["tmag"], r["priority"]))
        return int(brightest["priority"])
    fainter = [
        int(row["priority"]) for row in rows if _brightness(row["tmag"], row["priority"]) > mine
    ]
    if fainter:
        _skip(conn, fainter, by=task["priority"])
    return None


def _group(task: sqlite3.Row) -> tuple[Any, Any, Any, Any]:
    """The task's ``(sector, camera, ccd, cadence)``: only targets in it can skip each other."""
    return (task["sector"], task["camera"], task["ccd"], task["cadence"])


def _primary_target(
    conn: sqlite3.Connection, task: sqlite3.Row, primary: int, errors: list[str]
) -> int | None:
    """A secondary target inside the mask of its own primary target: skipped by it."""
    row = conn.execute(
        "SELECT priority, status FROM todolist WHERE starid = ? AND datasource = 'tpf' "
        "AND sector = ? AND camera = ? AND ccd = ? AND cadence = ?",
        (primary, *_group(task)),
    ).fetchone()
    if row is None:
        errors.append(f"TargetNotFoundError: Could not find primary TPF target (TIC {primary})")
        return None
    if _failed(row["status"]):
        return None
    return int(row["priority"])


def _skip(conn: sqlite3.Connection, priorities: list[int], *, by: int) -> None:
    """Mark the tasks SKIPPED by the task ``by``."""
    marks = ",".join("?" * len(priorities))
    conn.execute(
        f"UPDATE todolist SET status = ? WHERE priority IN ({marks})",
        (int(STATUS.SKIPPED), *priorities),
    )
    conn.execute(f"DELETE FROM photometry_skipped WHERE priority IN ({marks})", priorities)
    conn.executemany(
        "INSERT INTO photometry_skipped (priority, skipped_by) VALUES (?, ?)",
        [(p, by) for p in priorities],
    )


def release_skipped(conn: sqlite3.Connection, priority: int) -> None:
    """Targets made SKIPPED by a task that has now failed are to be done again."""
    conn.execute(
        "UPDATE todolist SET status = NULL WHERE status = ? AND priority IN "
        "(SELECT priority FROM photometry_skipped WHERE skipped_by = ?)",
        (int(STATUS.SKIPPED), priority),
    )
    conn.execute("DELETE FROM photometry_skipped WHERE skipped_by = ?", (priority,))
