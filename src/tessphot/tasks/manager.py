"""The task manager: hands out photometry tasks from ``todo.sqlite`` and stores the results.

Unlike the original (which copied the whole database into memory and backed it up every
10 000 results), the manager works on the file itself in write-ahead-log mode with one
transaction per result: a result is on disk as soon as :meth:`TaskManager.save_result`
returns, so killing the process loses nothing but the tasks that were running. Those are
``STARTED`` in the file and are handed out again by the next manager, as are failed tasks.

The file is opened with an exclusive lock (as the original did), so a second manager on the
same file fails at once with a clear error instead of handing out the same tasks twice.
The work is done by :mod:`~tessphot.tasks.database` (opening), :mod:`~tessphot.tasks.pending`
(handing out), :mod:`~tessphot.tasks.store` and :mod:`~tessphot.tasks.skipping` (results)
and :mod:`~tessphot.tasks.summary`.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tessphot.tasks.database import open_todo
from tessphot.tasks.pending import count_tasks, reset_tasks, select_tasks, start_task, task_status
from tessphot.tasks.result import SWITCH_TEXT, TaskResult
from tessphot.tasks.schema import TODO_FILENAME, target_limit
from tessphot.tasks.status import STATUS
from tessphot.tasks.store import store_result
from tessphot.tasks.summary import (
    DEFAULT_SUMMARY_INTERVAL,
    Session,
    run_summary,
    write_summary_file,
)

#: Re-exported for the code that imports it from here (use :mod:`tessphot.tasks.result`).
__all__ = ["SWITCH_TEXT", "TaskManager"]


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
        :func:`~tessphot.tasks.constraints.build_constraints`); by default all of them are
        reset, so failures are retried.
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
        self._conn = open_todo(
            path, overwrite=overwrite, cleanup_constraints=cleanup_constraints or {}
        )
        #: The faint limit of the file's targets [Tmag] (None: not recorded), handed out
        #: with every task as ``target_limit``.
        self.target_limit = target_limit(self._conn)
        self._results_since_summary = 0
        self._session = Session(numtasks=self.get_number_tasks())
        self.write_summary()

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"{self.path}: the task manager is closed")
        return self._conn

    # ----------------------------------------------------------------------------------------
    # Handing out tasks

    def get_number_tasks(self, **constraints: Any) -> int:
        """Number of tasks still to do (status NULL) that match the constraints."""
        return count_tasks(self._require(), constraints, todo=True)

    def get_status(self, priority: int) -> STATUS | None:
        """The stored status of a task (None: still to do).

        Raises
        ------
        ValueError
            If there is no task with this priority.
        """
        return task_status(self._require(), self.path, priority)

    def count_tasks(self, **constraints: Any) -> int:
        """Number of tasks matching the constraints, whatever their status."""
        return count_tasks(self._require(), constraints, todo=False)

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
        return reset_tasks(self._require(), constraints)

    def get_task(self, **constraints: Any) -> dict[str, Any] | None:
        """The next task to do: the lowest priority (brightest) with status NULL.

        Parameters
        ----------
        **constraints
            See :func:`~tessphot.tasks.constraints.build_constraints`.

        Returns
        -------
        dict or None
            ``priority``, ``starid``, ``method``, ``sector``, ``camera``, ``ccd``,
            ``cadence``, ``datasource``, ``tmag`` and, when the file records it,
            ``target_limit`` (the faint limit of its targets: catalogued stars fainter than
            it have no task, and so no light curve to lose to another star's aperture);
            None when nothing is left.
        """
        tasks = self._select(constraints, order="ORDER BY todolist.priority", limit=1)
        return tasks[0] if tasks else None

    def get_tasks(self, **constraints: Any) -> list[dict[str, Any]]:
        """Every task still to do that matches the constraints, by priority.

        Same fields and constraints as :meth:`get_task`; used by the parallel runners, which
        schedule the tasks themselves.
        """
        return self._select(constraints, order="ORDER BY todolist.priority", limit=None)

    def _select(
        self, constraints: Mapping[str, Any], *, order: str, limit: int | None
    ) -> list[dict[str, Any]]:
        tasks = select_tasks(self._require(), constraints, order=order, limit=limit)
        if self.target_limit is not None:
            for task in tasks:
                task["target_limit"] = self.target_limit
        return tasks

    def get_random_task(self, **constraints: Any) -> dict[str, Any] | None:
        """A random task still to do (same fields and constraints as :meth:`get_task`)."""
        tasks = self._select(constraints, order="ORDER BY RANDOM()", limit=1)
        return tasks[0] if tasks else None

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
        start_task(self._require(), self.path, priority)

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
        released (status NULL) so that they are processed themselves. A target made SKIPPED
        while it was running (in a parallel run) stays SKIPPED when its result comes, as in a
        serial run, where it would not have run. A status that is not a
        final one (UNKNOWN, STARTED, or not a status at all) is stored as ERROR, with an
        error message saying so. A SKIPPED status returned by the photometry is stored as it
        is, without touching ``photometry_skipped``.

        Raises
        ------
        ValueError
            If there is no task with the given priority.
        """
        status, errors = store_result(self._require(), self.path, result)
        self._session.record(status, result, errors)
        self._results_since_summary += 1
        if self._results_since_summary >= self.summary_interval:
            self.write_summary()

    # ----------------------------------------------------------------------------------------
    # Summary and closing

    @property
    def summary(self) -> dict[str, Any]:
        """The run summary (§4.6 of the notes).

        ``numtasks`` is the number of tasks to do when the manager was opened, ``tasks_run``
        the number of results saved since, ``last_error`` the errors of the last failed task,
        ``mean_elaptime`` and ``mean_worker_waittime`` exponential moving averages (weight
        :data:`~tessphot.tasks.summary.EMA_ALPHA`) [s], and one count per :class:`STATUS`
        name of the tasks in the file with that status. ``slurm_jobid`` is ``$SLURM_JOB_ID``
        (or None).
        """
        return run_summary(self._require(), self.path, self._session)

    def write_summary(self) -> None:
        """Write the summary file now (atomically), if one was asked for."""
        self._results_since_summary = 0
        if self.summary_file is None:
            return
        write_summary_file(self.summary_file, self.summary)

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
