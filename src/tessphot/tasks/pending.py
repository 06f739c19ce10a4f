"""Handing out tasks: counting, selecting, starting and resetting the tasks of a todo file.

Every function works on the connection of a task manager (see :mod:`tessphot.tasks.database`);
``path`` only names the file in error messages.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tessphot.tasks.constraints import build_constraints
from tessphot.tasks.database import transaction
from tessphot.tasks.status import STATUS

#: Columns of a task as returned by :meth:`TaskManager.get_task`.
TASK_COLUMNS = (
    "priority",
    "starid",
    "method",
    "sector",
    "camera",
    "ccd",
    "cadence",
    "datasource",
    "tmag",
)


def count_tasks(conn: sqlite3.Connection, constraints: Mapping[str, Any], *, todo: bool) -> int:
    """Number of tasks matching the constraints (``todo``: only those with status NULL)."""
    where, params = build_constraints("todolist", **constraints)
    pending = "status IS NULL AND " if todo else ""
    row = conn.execute(f"SELECT COUNT(*) FROM todolist WHERE {pending}{where}", params).fetchone()
    return int(row[0])


def task_status(conn: sqlite3.Connection, path: Path, priority: int) -> STATUS | None:
    """The stored status of a task (None: still to do); ValueError if there is no such task."""
    row = conn.execute("SELECT status FROM todolist WHERE priority = ?", (int(priority),))
    found = row.fetchone()
    if found is None:
        raise ValueError(f"{path}: no task with priority {priority}")
    return None if found[0] is None else STATUS(found[0])


def select_tasks(
    conn: sqlite3.Connection, constraints: Mapping[str, Any], *, order: str, limit: int | None
) -> list[dict[str, Any]]:
    """The tasks still to do matching the constraints, in ``order``, at most ``limit``."""
    where, params = build_constraints("todolist", **constraints)
    columns = ", ".join(f"todolist.{c}" for c in TASK_COLUMNS)
    tail = "" if limit is None else f" LIMIT {int(limit)}"
    rows = conn.execute(
        f"SELECT {columns} FROM todolist WHERE status IS NULL AND {where} {order}{tail}",
        params,
    ).fetchall()
    return [dict(zip(TASK_COLUMNS, row, strict=True)) for row in rows]


def start_task(conn: sqlite3.Connection, path: Path, priority: int) -> None:
    """Mark a task ``STARTED``; ValueError if there is no such task or it is not to do."""
    updated = conn.execute(
        "UPDATE todolist SET status = ? WHERE priority = ? AND status IS NULL",
        (int(STATUS.STARTED), priority),
    ).rowcount
    if updated != 1:
        row = conn.execute("SELECT status FROM todolist WHERE priority = ?", (priority,))
        current = row.fetchone()
        if current is None:
            raise ValueError(f"{path}: no task with priority {priority}")
        raise ValueError(
            f"{path}: task {priority} is not waiting to be done (status {STATUS(current[0]).name})"
        )


def reset_tasks(conn: sqlite3.Connection, constraints: Mapping[str, Any]) -> int:
    """Make the matching tasks to be done again, in one transaction; the number reset."""
    where, params = build_constraints("todolist", **constraints)
    selection = f"SELECT priority FROM todolist WHERE {where}"
    with transaction(conn):
        conn.execute(
            "UPDATE todolist SET status = NULL WHERE status = ? AND priority IN "
            f"(SELECT priority FROM photometry_skipped WHERE skipped_by IN ({selection}))",
            (int(STATUS.SKIPPED), *params),
        )
        conn.execute(
            f"DELETE FROM photometry_skipped WHERE skipped_by IN ({selection}) "
            f"OR priority IN ({selection})",
            (*params, *params),
        )
        conn.execute(f"DELETE FROM diagnostics WHERE priority IN ({selection})", params)
        done = conn.execute(
            f"UPDATE todolist SET status = NULL WHERE status IS NOT NULL AND {where}", params
        ).rowcount
    return int(done)
