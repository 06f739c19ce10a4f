"""The photometry stage: the task loop of ``tessphot run``.

:func:`tessphot.photometry.task.photometry_task` does one task. :func:`run_photometry` hands
out the tasks of ``todo.sqlite`` through the :class:`tessphot.tasks.TaskManager` and stores
the results, running the tasks in this process or in worker processes (local processes,
:class:`tessphot.runner.local.LocalPool`, or MPI ranks, :class:`tessphot.runner.mpi.MPIPool`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from tessphot.io.errors import TessphotError
from tessphot.paths import output_folder as default_output_folder
from tessphot.runner.config import TaskConfig
from tessphot.runner.local import LocalPool
from tessphot.runner.master import Master
from tessphot.runner.report import RunReport
from tessphot.tasks import STATUS, TODO_FILENAME, TaskManager

logger = logging.getLogger(__name__)

#: Name of the run summary in the output folder (the original's).
SUMMARY_FILENAME = "summary.json"


class NoTaskError(TessphotError):
    """No task of the todo list matches the request."""


class Pool(Protocol):
    """Worker processes that run the tasks a :class:`tessphot.runner.master.Master` hands out."""

    #: Number of workers.
    size: int

    def run(self, master: Master) -> None:
        """Run tasks until the master has none left; results go to ``master.save``."""


def _constraints(constraints: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in dict(constraints or {}).items() if v is not None and v != []}


def run_photometry(
    input_folder: str | os.PathLike,
    output_folder: str | os.PathLike | None = None,
    *,
    constraints: Mapping[str, Any] | None = None,
    run_all: bool = False,
    random: bool = False,
    method: str | None = None,
    overwrite: bool = False,
    plot: bool = False,
    version: int = 1,
    settings: Mapping[str, Any] | None = None,
    timing: Mapping[str, Any] | None = None,
    workers: int | None = None,
    pool: Pool | None = None,
    progress: bool = False,
) -> RunReport:
    """Run the photometry of the tasks of ``<input_folder>/todo.sqlite``.

    Parameters
    ----------
    input_folder : path-like
        Folder with ``todo.sqlite``, the prepared data and the catalogs.
    output_folder : path-like, optional
        Light-curve root (default ``$TESSPHOT_OUTPUT`` or ``<input>/lightcurves``).
    constraints : mapping, optional
        Task constraints (:func:`tessphot.tasks.build_constraints`): ``priority``,
        ``starid``, ``sector``, ``camera``, ``ccd``, ``cadence``, ``datasource``,
        ``tmag_min``, ``tmag_max``.
    run_all : bool
        Run every matching task. Otherwise: one random task with ``random``, else every
        task of the given ``starid``/``priority`` values, else only the first task.
    random : bool
        Pick tasks at random.
    method : str, optional
        Force a method for every task.
    overwrite : bool
        Redo tasks already done: with constraints only the matching tasks, else all of them
        (the todo list's results are reset).
    plot : bool
        Write diagnostic plots.
    version : int
        Processing version of the output.
    settings : mapping, optional
        The ``[photometry]`` settings.
    timing : mapping, optional
        The ``[timing]`` settings.
    workers : int, optional
        Run the tasks in this many local worker processes
        (:class:`tessphot.runner.local.LocalPool`); None runs them in this process, one after
        the other.
    pool : Pool, optional
        Run the tasks in these workers instead (e.g. :class:`tessphot.runner.mpi.MPIPool`).
    progress : bool
        Show a progress bar (parallel runs).

    Returns
    -------
    RunReport

    Raises
    ------
    FileNotFoundError
        When there is no todo file.
    NoTaskError
        When no task to do matches the request.
    """
    input_folder = Path(input_folder)
    output = Path(output_folder) if output_folder else default_output_folder(input_folder)
    todo = input_folder / TODO_FILENAME
    if not todo.is_file():
        raise FileNotFoundError(f"{todo}: no todo file (run 'tessphot todo' first)")
    if workers is not None and pool is None:
        pool = LocalPool(workers)
    wanted = _constraints(constraints)
    explicit = bool(wanted.get("starid") or wanted.get("priority"))
    report = RunReport(workers=pool.size if pool is not None else 0, output=output)
    config = TaskConfig(input_folder, output, method, plot, version, settings, timing)
    started = time.perf_counter()
    output.mkdir(parents=True, exist_ok=True)
    with TaskManager(
        todo,
        overwrite=overwrite and not wanted,
        cleanup_constraints=wanted,
        summary=output / SUMMARY_FILENAME,
    ) as manager:
        if overwrite and wanted:
            reset = manager.reset_tasks(**wanted)
            logger.info("%d matching task(s) reset to be done again", reset)
        numtasks = manager.get_number_tasks(**wanted)
        if numtasks == 0:
            done = manager.count_tasks(**wanted)
            if done:
                raise NoTaskError(
                    f"no task to do matches the request: the {done} matching task(s) are "
                    "done already (use -o/--overwrite to redo them)"
                )
            raise NoTaskError(f"no task in {todo} matches the request {wanted or ''}".strip())
        limit = numtasks if run_all or (explicit and not random) else 1
        logger.info("%d tasks to be run", limit)
        if pool is None:
            _run_serial(manager, config, wanted, limit, random, report)
        else:
            if limit == numtasks:
                tasks = manager.get_tasks(**wanted)
            else:
                tasks = [(manager.get_random_task if random else manager.get_task)(**wanted)]
            master = Master(
                manager,
                config,
                tasks,
                report,
                constraints=wanted if limit == numtasks else None,
                progress=progress,
            )
            with master:
                pool.run(master)
        report.summary = manager.summary
        report.left = manager.get_number_tasks(**wanted)
    report.elapsed = time.perf_counter() - started
    return report


def _run_serial(
    manager: TaskManager,
    config: TaskConfig,
    wanted: Mapping[str, Any],
    limit: int,
    random: bool,
    report: RunReport,
) -> None:
    """Run up to ``limit`` tasks in this process, picking each when the previous is done."""
    while report.tasks < limit:
        task = (manager.get_random_task if random else manager.get_task)(**wanted)
        if task is None:
            break
        manager.start_task(task)
        begun = time.perf_counter()
        try:
            result = config.run(task)
        except (KeyboardInterrupt, SystemExit):
            elapsed = time.perf_counter() - begun
            manager.save_result(
                config.failed_result(task, STATUS.ABORT, "ABORT: interrupted", elapsed)
            )
            raise
        manager.save_result(result)
        # The stored status: a result may become SKIPPED (a brighter star in its mask).
        stored = manager.get_status(task["priority"]) or STATUS(result.status)
        report.record(task, result, stored)
