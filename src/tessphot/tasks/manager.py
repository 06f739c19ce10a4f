"""The task manager: hands out photometry tasks from ``todo.sqlite`` and stores the results.

Unlike the original (which copied the whole database into memory and backed it up every
10 000 results), the manager works on the file itself in write-ahead-log mode with one
transaction per result: a result is on disk as soon as :meth:`TaskManager.save_result`
returns, so killing the process loses nothing but the tasks that were running. Those are
``STARTED`` in the file and are handed out again by the next manager, as are failed tasks.

The file is opened with an exclusive lock (as the original did), so a second manager on the
same file fails at once with a clear error instead of handing out the same tasks twice.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tessphot import env
from tessphot.paths import atomic_path
from tessphot.tasks.constraints import build_constraints
from tessphot.tasks.result import TaskResult
from tessphot.tasks.schema import (
    DIAGNOSTICS_COLUMNS,
    FORMAT_VERSION,
    TODO_FILENAME,
    TODOLIST_COLUMNS,
    TodoFileError,
    create_tables,
    read_metadata,
)
from tessphot.tasks.status import HAS_LIGHTCURVE, RETRIED, STATUS

logger = logging.getLogger(__name__)

#: How long to wait for a lock held by another process before giving up [s].
LOCK_TIMEOUT = 2.0
#: Weight of the newest value in the moving averages of the summary.
EMA_ALPHA = 0.1
#: Default number of results between two summary files.
DEFAULT_SUMMARY_INTERVAL = 200
#: Statuses of failed tasks: they do not make other targets SKIPPED.
FAILED = frozenset({STATUS.ERROR, STATUS.ABORT})
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
#: Columns added to ``diagnostics`` by later versions of the original; added to old files.
_DIAGNOSTICS_MIGRATIONS = {"edge_flux": "REAL", "worker_wait_time": "REAL"}
#: Error text recording an automatic switch of method (the original's, for Halo photometry).
SWITCH_TEXT = "Automatically switched to {} photometry"
HALO_SWITCH_TEXT = SWITCH_TEXT.format("Halo")


def _sql_value(value: Any) -> Any:
    """A value sqlite3 can bind (numpy scalars to Python, non-finite floats to NULL)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _failed(status: int | None) -> bool:
    """Whether a stored status is one of :data:`FAILED`."""
    return status is not None and int(status) in {int(s) for s in FAILED}


def _brightness(tmag: float | None, priority: int) -> tuple[float, int]:
    """Sort key: brighter first, ties (and unknown magnitudes) by priority."""
    return (math.inf if tmag is None else float(tmag), int(priority))


class TaskManager:
    """Hands out the tasks of a todo file and stores their results.

    Parameters
    ----------
    todo_file : str or os.PathLike
        The ``todo.sqlite`` file, or the folder containing it.
    overwrite : bool
        Forget all results: every status is reset to "to do" and the ``diagnostics`` and
        ``photometry_skipped`` tables are emptied.
    cleanup_constraints : mapping, optional
        Restrict the reset of ``STARTED``, ``ERROR`` and ``ABORT`` tasks done at start (see
        :func:`build_constraints`); by default all of them are reset, so failures are retried.
    summary : str or os.PathLike, optional
        Where to write the JSON summary of the run (every ``summary_interval`` results, at
        start and on close). None: no summary.
    summary_interval : int
        Results between two summary files.

    Raises
    ------
    FileNotFoundError
        If the todo file does not exist.
    TodoFileError
        If it is not an SQLite database, not a todo file, written by a newer tessphot, or in
        use by another process.

    Notes
    -----
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        todo_file: str | os.PathLike[str],
        overwrite: bool = False,
        cleanup_constraints: Mapping[str, Any] | None = None,
        summary: str | os.PathLike[str] | None = None,
        summary_interval: int = DEFAULT_SUMMARY_INTERVAL,
    ) -> None:
        path = Path(todo_file)
        if path.is_dir():
            path = path / TODO_FILENAME
        if not path.is_file():
            raise FileNotFoundError(errno.ENOENT, f"todo file not found: {path}", str(path))
        if cleanup_constraints is not None and not isinstance(cleanup_constraints, Mapping):
            raise TypeError("cleanup_constraints should be a mapping of task constraints")
        if (
            isinstance(summary_interval, bool)
            or not isinstance(summary_interval, int | np.integer)
            or summary_interval < 1
        ):
            raise ValueError(f"summary_interval must be a positive integer: {summary_interval!r}")
        self.path = path
        self.summary_file = Path(summary) if summary is not None else None
        self.summary_interval = int(summary_interval)
        self._conn: sqlite3.Connection | None = None
        self._conn = self._open(path)
        try:
            self._prepare(overwrite, cleanup_constraints or {})
        except sqlite3.DatabaseError as err:
            self._conn.close()
            self._conn = None
            if "locked" in str(err) or "busy" in str(err):
                raise TodoFileError(path, "in use by another process (locked)") from err
            raise TodoFileError(path, f"cannot be used as a todo file: {err}") from err
        except BaseException:
            self._conn.close()
            self._conn = None
            raise
        self._results_since_summary = 0
        self._session = {
            "numtasks": self.get_number_tasks(),
            "tasks_run": 0,
            "last_error": None,
            "mean_elaptime": None,
            "mean_worker_waittime": None,
        }
        self.write_summary()

    # ----------------------------------------------------------------------------------------
    # Opening

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=LOCK_TIMEOUT, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            conn.execute("PRAGMA temp_store=MEMORY")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            # In WAL mode a commit survives the death of the process; NORMAL only risks the
            # last commits on a power failure (the file stays consistent).
            conn.execute("PRAGMA synchronous=NORMAL")
            tables = {
                row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.OperationalError as err:
            conn.close()
            if "locked" in str(err) or "busy" in str(err):
                raise TodoFileError(path, "in use by another process (locked)") from err
            raise TodoFileError(path, f"cannot be opened: {err}") from err
        except sqlite3.DatabaseError as err:
            conn.close()
            raise TodoFileError(path, f"not an SQLite database ({err})") from err
        if mode.lower() != "wal":
            logger.warning("%s: journal mode WAL not available, using %s", path, mode)
        if "todolist" not in tables:
            conn.close()
            raise TodoFileError(path, "not a todo file (no table 'todolist')")
        columns = {row["name"] for row in conn.execute("PRAGMA table_info(todolist)")}
        missing = [column for column in TODOLIST_COLUMNS if column not in columns]
        if missing:
            conn.close()
            raise TodoFileError(
                path,
                f"table 'todolist' lacks the column(s) {', '.join(missing)}: written by an old "
                "or foreign tool; recreate it with 'tessphot todo'",
            )
        version = read_metadata(conn).get("format_version")
        if version is not None and int(version) > FORMAT_VERSION:
            conn.close()
            raise TodoFileError(
                path, f"format version {version} is newer than this tessphot's {FORMAT_VERSION}"
            )
        return conn

    def _prepare(self, overwrite: bool, cleanup_constraints: Mapping[str, Any]) -> None:
        conn = self._require()
        with self._transaction():
            if overwrite:
                conn.execute("UPDATE todolist SET status = NULL WHERE status IS NOT NULL")
                conn.execute("DROP TABLE IF EXISTS diagnostics")
                conn.execute("DROP TABLE IF EXISTS photometry_skipped")
            self._migrate_diagnostics()
            create_tables(conn)
            retried = ",".join(str(int(s)) for s in sorted(RETRIED))
            where, params = build_constraints("todolist", **cleanup_constraints)
            selection = f"SELECT priority FROM todolist WHERE status IN ({retried}) AND {where}"
            conn.execute(f"DELETE FROM diagnostics WHERE priority IN ({selection})", params)
            reset = conn.execute(
                f"UPDATE todolist SET status = NULL WHERE priority IN ({selection})", params
            ).rowcount
            if reset:
                logger.info("%s: %d started, failed or aborted task(s) reset", self.path, reset)
        if overwrite:
            conn.execute("VACUUM")
        conn.execute("ANALYZE")

    def _migrate_diagnostics(self) -> None:
        """Bring a ``diagnostics`` table of an old TASOC file up to date (§4.4)."""
        conn = self._require()
        columns = {row["name"] for row in conn.execute("PRAGMA table_info(diagnostics)")}
        if not columns:
            return
        for column, sqltype in _DIAGNOSTICS_MIGRATIONS.items():
            if column not in columns:
                conn.execute(f"ALTER TABLE diagnostics ADD COLUMN {column} {sqltype}")
        if "method_used" not in columns:
            conn.execute(
                "ALTER TABLE diagnostics ADD COLUMN method_used TEXT NOT NULL DEFAULT 'aperture'"
            )
            conn.execute(
                "UPDATE diagnostics SET method_used = (SELECT method FROM todolist "
                "WHERE todolist.priority = diagnostics.priority) WHERE priority IN "
                "(SELECT priority FROM todolist WHERE method IS NOT NULL)"
            )
            conn.execute(
                "UPDATE diagnostics SET method_used = 'halo' WHERE errors LIKE ?",
                (f"%{HALO_SWITCH_TEXT}%",),
            )
        if "starid" in columns:
            conn.execute("DROP INDEX IF EXISTS diagnostics_starid_idx")
            conn.execute("ALTER TABLE diagnostics DROP COLUMN starid")

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"{self.path}: the task manager is closed")
        return self._conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._require()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # ----------------------------------------------------------------------------------------
    # Handing out tasks

    def get_number_tasks(self, **constraints: Any) -> int:
        """Number of tasks still to do (status NULL) that match the constraints."""
        where, params = build_constraints("todolist", **constraints)
        row = (
            self._require()
            .execute(f"SELECT COUNT(*) FROM todolist WHERE status IS NULL AND {where}", params)
            .fetchone()
        )
        return int(row[0])

    def get_status(self, priority: int) -> STATUS | None:
        """The stored status of a task (None: still to do).

        Raises
        ------
        ValueError
            If there is no task with this priority.
        """
        row = (
            self._require()
            .execute("SELECT status FROM todolist WHERE priority = ?", (int(priority),))
            .fetchone()
        )
        if row is None:
            raise ValueError(f"{self.path}: no task with priority {priority}")
        return None if row[0] is None else STATUS(row[0])

    def count_tasks(self, **constraints: Any) -> int:
        """Number of tasks matching the constraints, whatever their status."""
        where, params = build_constraints("todolist", **constraints)
        row = (
            self._require()
            .execute(f"SELECT COUNT(*) FROM todolist WHERE {where}", params)
            .fetchone()
        )
        return int(row[0])

    def reset_tasks(self, **constraints: Any) -> int:
        """Make the matching tasks to be done again, in one transaction.

        Their status becomes NULL and their diagnostics are deleted; targets they had made
        SKIPPED are released (to be done), and so are their own ``photometry_skipped`` rows.
        Without constraints every task is reset.

        Returns
        -------
        int
            Number of tasks reset.
        """
        conn = self._require()
        where, params = build_constraints("todolist", **constraints)
        selection = f"SELECT priority FROM todolist WHERE {where}"
        with self._transaction():
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
            reset = conn.execute(
                f"UPDATE todolist SET status = NULL WHERE status IS NOT NULL AND {where}", params
            ).rowcount
        return int(reset)

    def get_task(self, **constraints: Any) -> dict[str, Any] | None:
        """The next task to do: the lowest priority (brightest) with status NULL.

        Parameters
        ----------
        **constraints
            See :func:`build_constraints`.

        Returns
        -------
        dict or None
            ``priority``, ``starid``, ``method``, ``sector``, ``camera``, ``ccd``,
            ``cadence``, ``datasource``, ``tmag``; None when nothing is left.
        """
        return self._select_task("ORDER BY todolist.priority", constraints)

    def get_tasks(self, **constraints: Any) -> list[dict[str, Any]]:
        """Every task still to do that matches the constraints, by priority.

        Same fields and constraints as :meth:`get_task`; used by the parallel runners, which
        schedule the tasks themselves.
        """
        where, params = build_constraints("todolist", **constraints)
        columns = ", ".join(f"todolist.{c}" for c in TASK_COLUMNS)
        rows = (
            self._require()
            .execute(
                f"SELECT {columns} FROM todolist WHERE status IS NULL AND {where} "
                "ORDER BY todolist.priority",
                params,
            )
            .fetchall()
        )
        return [dict(zip(TASK_COLUMNS, row, strict=True)) for row in rows]

    def get_random_task(self, **constraints: Any) -> dict[str, Any] | None:
        """A random task still to do (same fields and constraints as :meth:`get_task`)."""
        return self._select_task("ORDER BY RANDOM()", constraints)

    def _select_task(self, order: str, constraints: Mapping[str, Any]) -> dict[str, Any] | None:
        where, params = build_constraints("todolist", **constraints)
        columns = ", ".join(f"todolist.{c}" for c in TASK_COLUMNS)
        row = (
            self._require()
            .execute(
                f"SELECT {columns} FROM todolist WHERE status IS NULL AND {where} {order} LIMIT 1",
                params,
            )
            .fetchone()
        )
        return None if row is None else dict(zip(TASK_COLUMNS, row, strict=True))

    def start_task(self, task: int | Mapping[str, Any]) -> None:
        """Mark a task as handed to a worker (``STARTED``), committed at once.

        Parameters
        ----------
        task : int or mapping
            The task's priority, or the task as returned by :meth:`get_task`.

        Raises
        ------
        ValueError
            If there is no such task, or it is not waiting to be done.
        """
        priority = int(task["priority"] if isinstance(task, Mapping) else task)
        conn = self._require()
        updated = conn.execute(
            "UPDATE todolist SET status = ? WHERE priority = ? AND status IS NULL",
            (int(STATUS.STARTED), priority),
        ).rowcount
        if updated != 1:
            row = conn.execute("SELECT status FROM todolist WHERE priority = ?", (priority,))
            current = row.fetchone()
            if current is None:
                raise ValueError(f"{self.path}: no task with priority {priority}")
            raise ValueError(
                f"{self.path}: task {priority} is not waiting to be done "
                f"(status {STATUS(current[0]).name})"
            )

    # ----------------------------------------------------------------------------------------
    # Results

    def save_result(self, result: TaskResult) -> None:
        """Store the result of a task, in one transaction.

        Sets the task's status, stores its diagnostics (replacing earlier ones) and applies
        the SKIPPED logic of §6.2 of the notes to the other targets in its mask.

        Parameters
        ----------
        result : TaskResult
            The task's priority, status, method, time spent and diagnostics.

        Notes
        -----
        Targets are compared by ``(tmag, priority)``, so that of two equally bright targets
        exactly one is SKIPPED. A target is SKIPPED because of a brighter target only while
        that one has not failed; when a task fails, the targets it had made SKIPPED are
        released (status NULL) so that they are processed themselves. A status that is not a
        final one (UNKNOWN, STARTED, or not a status at all) is stored as ERROR, with an
        error message saying so. A SKIPPED status returned by the photometry is stored as it
        is, without touching ``photometry_skipped``.

        Raises
        ------
        ValueError
            If there is no task with the given priority.
        """
        conn = self._require()
        priority = int(result.priority)
        task = conn.execute("SELECT * FROM todolist WHERE priority = ?", (priority,)).fetchone()
        if task is None:
            raise ValueError(f"{self.path}: no task with priority {priority}")
        details = dict(result.details or {})
        errors = details.get("errors") or []
        errors = [errors] if isinstance(errors, str) else [str(e) for e in errors]
        try:
            status = STATUS(int(result.status))
        except (TypeError, ValueError):
            status = STATUS.UNKNOWN
        if status in (STATUS.UNKNOWN, STATUS.STARTED):
            raw = result.status
            name = raw.name if isinstance(raw, STATUS) else repr(raw)
            errors.append(f"ERROR: invalid status {name} returned for the task")
            status = STATUS.ERROR

        with self._transaction():
            skipped_by = None
            if status in HAS_LIGHTCURVE:
                skipped_by = self._skip_logic(task, details.get("skip_targets") or (), errors)
                if skipped_by is not None:
                    status = STATUS.SKIPPED
            elif status in FAILED:
                self._release_skipped(priority)
            conn.execute(
                "UPDATE todolist SET status = ? WHERE priority = ?", (int(status), priority)
            )
            if status != STATUS.SKIPPED or skipped_by is not None:
                conn.execute("DELETE FROM photometry_skipped WHERE priority = ?", (priority,))
            if skipped_by is not None:
                conn.execute(
                    "INSERT INTO photometry_skipped (priority, skipped_by) VALUES (?, ?)",
                    (priority, skipped_by),
                )
            row = self._diagnostics_row(task, result, details, errors)
            conn.execute(
                f"INSERT OR REPLACE INTO diagnostics ({', '.join(row)}) "
                f"VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )

        self._update_session(status, result, errors)
        self._results_since_summary += 1
        if self._results_since_summary >= self.summary_interval:
            self.write_summary()

    def _skip_logic(
        self, task: sqlite3.Row, skip_targets: Iterable[Any], errors: list[str]
    ) -> int | None:
        """Apply §6.2; returns the priority of the task that makes this one SKIPPED, if any."""
        conn = self._require()
        skip = {int(s) for s in skip_targets} - {int(task["starid"])}
        if not skip:
            return None
        group = (task["sector"], task["camera"], task["ccd"], task["cadence"])
        datasource = task["datasource"]
        if datasource.startswith("tpf:") and int(datasource[4:]) in skip:
            # A secondary target inside the mask of its own primary target.
            primary = int(datasource[4:])
            row = conn.execute(
                "SELECT priority, status FROM todolist WHERE starid = ? AND datasource = 'tpf' "
                "AND sector = ? AND camera = ? AND ccd = ? AND cadence = ?",
                (primary, *group),
            ).fetchone()
            if row is None:
                errors.append(
                    f"TargetNotFoundError: Could not find primary TPF target (TIC {primary})"
                )
                return None
            if _failed(row["status"]):
                return None
            return int(row["priority"])

        datasources = ("tpf", f"tpf:{task['starid']}") if datasource == "tpf" else (datasource,)
        stars = sorted(skip)
        rows = conn.execute(
            f"SELECT priority, tmag, status FROM todolist "
            f"WHERE starid IN ({','.join('?' * len(stars))}) "
            f"AND datasource IN ({','.join('?' * len(datasources))}) "
            f"AND sector = ? AND camera = ? AND ccd = ? AND cadence = ? AND priority != ?",
            (*stars, *datasources, *group, task["priority"]),
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
            marks = ",".join("?" * len(fainter))
            conn.execute(
                f"UPDATE todolist SET status = ? WHERE priority IN ({marks})",
                (int(STATUS.SKIPPED), *fainter),
            )
            conn.execute(f"DELETE FROM photometry_skipped WHERE priority IN ({marks})", fainter)
            conn.executemany(
                "INSERT INTO photometry_skipped (priority, skipped_by) VALUES (?, ?)",
                [(p, task["priority"]) for p in fainter],
            )
        return None

    def _release_skipped(self, priority: int) -> None:
        """Targets made SKIPPED by a task that has now failed are to be done again."""
        conn = self._require()
        conn.execute(
            "UPDATE todolist SET status = NULL WHERE status = ? AND priority IN "
            "(SELECT priority FROM photometry_skipped WHERE skipped_by = ?)",
            (int(STATUS.SKIPPED), priority),
        )
        conn.execute("DELETE FROM photometry_skipped WHERE skipped_by = ?", (priority,))

    @staticmethod
    def _diagnostics_row(
        task: sqlite3.Row, result: TaskResult, details: Mapping[str, Any], errors: list[str]
    ) -> dict[str, Any]:
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
            "errors": "\n".join(errors) if errors else None,
        }
        if row["lightcurve"] is not None:
            row["lightcurve"] = os.fspath(row["lightcurve"])
        return {key: _sql_value(row[key]) for key in DIAGNOSTICS_COLUMNS}

    def _update_session(self, status: STATUS, result: TaskResult, errors: list[str]) -> None:
        session = self._session
        session["tasks_run"] += 1
        if status == STATUS.ERROR and errors:
            session["last_error"] = "\n".join(errors)
        for key, value in (
            ("mean_elaptime", result.elaptime),
            ("mean_worker_waittime", result.worker_wait_time),
        ):
            if value is None or not math.isfinite(float(value)):
                continue
            old = session[key]
            session[key] = float(value) if old is None else old + EMA_ALPHA * (float(value) - old)

    # ----------------------------------------------------------------------------------------
    # Summary and closing

    @property
    def summary(self) -> dict[str, Any]:
        """The run summary (§4.6 of the notes).

        ``numtasks`` is the number of tasks to do when the manager was opened, ``tasks_run``
        the number of results saved since, ``last_error`` the errors of the last failed task,
        ``mean_elaptime`` and ``mean_worker_waittime`` exponential moving averages (weight
        :data:`EMA_ALPHA`) [s], and one count per :class:`STATUS` name of the tasks in the
        file with that status. ``slurm_jobid`` is ``$SLURM_JOB_ID`` (or None).
        """
        counts = dict.fromkeys((s.name for s in STATUS), 0)
        for status, count in self._require().execute(
            "SELECT status, COUNT(*) FROM todolist WHERE status IS NOT NULL GROUP BY status"
        ):
            try:
                counts[STATUS(status).name] += count
            except ValueError:
                logger.warning("%s: %d task(s) with unknown status %r", self.path, count, status)
        return {"slurm_jobid": env.value(env.SLURM_JOB_ID), **self._session, **counts}

    def write_summary(self) -> None:
        """Write the summary file now (atomically), if one was asked for."""
        self._results_since_summary = 0
        if self.summary_file is None:
            return
        text = json.dumps(self.summary, indent=2)
        with atomic_path(self.summary_file) as tmp:
            tmp.write_text(text + "\n")

    def close(self) -> None:
        """Write the summary and close the file (it leaves WAL mode). Safe to call twice."""
        conn = self._conn
        if conn is None:
            return
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.write_summary()
            conn.execute("PRAGMA optimize")
            conn.execute("PRAGMA journal_mode=DELETE")
        finally:
            conn.close()
            self._conn = None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._conn is None

    def __enter__(self) -> TaskManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TaskManager({os.fspath(self.path)!r}{', closed' if self.closed else ''})"
