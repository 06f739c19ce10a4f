"""The photometry stage: the task loop of ``tessphot run``.

:func:`tessphot.photometry.task.photometry_task` does one task. :func:`run_photometry` hands
out the tasks of ``todo.sqlite`` through the
:class:`tessphot.tasks.TaskManager` and stores the results, running the tasks in this
process or in worker processes (:mod:`tessphot.parallel`: local processes or MPI ranks).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tessphot.io.errors import TessphotError
from tessphot.paths import output_folder as default_output_folder
from tessphot.photometry.task import photometry_task
from tessphot.tasks import STATUS, TODO_FILENAME, TaskManager

if TYPE_CHECKING:
    from tessphot.parallel import Master

logger = logging.getLogger(__name__)

#: Name of the run summary in the output folder (the original's).
SUMMARY_FILENAME = "summary.json"
#: Level of the log line of each finished task of a serial run (parallel runs show a progress
#: bar instead: DEBUG, and WARNING for failures).
RESULT_LOG_LEVEL = logging.INFO


class NoTaskError(TessphotError):
    """No task of the todo list matches the request."""


@dataclass(frozen=True)
class TaskConfig:
    """Everything a worker needs besides the task itself (picklable: sent to worker processes
    and MPI ranks)."""

    #: Folder with the prepared data and catalogs.
    input_folder: Path
    #: Root of the light-curve folders.
    output_folder: Path
    #: Method forced for every task (None: the task's own, else automatic).
    method: str | None = None
    #: Write the diagnostic plots.
    plot: bool = False
    #: Processing version of the output.
    version: int = 1
    #: The ``[photometry]`` settings.
    settings: Mapping[str, Any] | None = None
    #: The ``[timing]`` settings.
    timing: Mapping[str, Any] | None = None

    def run(self, task: Mapping[str, Any]) -> dict[str, Any]:
        """The result of one task (:func:`photometry_task`)."""
        return photometry_task(
            task,
            self.input_folder,
            self.output_folder,
            method=self.method,
            plot=self.plot,
            version=self.version,
            settings=self.settings,
            timing=self.timing,
        )

    def failed_result(
        self, task: Mapping[str, Any], status: STATUS, error: str, elapsed: float = 0.0
    ) -> dict[str, Any]:
        """The result of a task that did not finish (interrupted, or its worker died)."""
        return {
            **dict(task),
            "status": status,
            "method_used": self.method or task.get("method") or "aperture",
            "time": elapsed,
            "details": {"errors": [error]},
        }


@dataclass
class RunReport:
    """What a run did."""

    #: Tasks run in this call.
    tasks: int = 0
    #: Count per status name of the tasks run.
    counts: dict[str, int] = field(default_factory=dict)
    #: Status counts of the whole todo list after the run (TaskManager summary).
    summary: dict[str, Any] = field(default_factory=dict)
    #: Wall-clock time [s].
    elapsed: float = 0.0
    #: Matching tasks still to do after the run.
    left: int = 0
    #: One entry per task: ``(priority, starid, status name, seconds, first error)``.
    results: list[tuple[int, int, str, float, str]] = field(default_factory=list)
    #: Worker processes (0: the tasks ran in this process).
    workers: int = 0
    #: Seconds the workers spent on tasks, summed over the workers.
    busy_time: float = 0.0
    #: Seconds the workers spent waiting for a task from the master, summed.
    wait_time: float = 0.0

    @property
    def failed(self) -> int:
        """Tasks that ended in ERROR or ABORT."""
        return self.counts.get("ERROR", 0) + self.counts.get("ABORT", 0)

    @property
    def wait_fraction(self) -> float:
        """Fraction of the workers' time spent waiting on the master (0 when nothing ran)."""
        total = self.busy_time + self.wait_time
        return self.wait_time / total if total > 0 else 0.0

    def record(self, task: Mapping[str, Any], result: Mapping[str, Any], stored: STATUS) -> None:
        """Count a saved result (``stored``: its status in the todo list) and log it."""
        name = stored.name
        self.tasks += 1
        self.counts[name] = self.counts.get(name, 0) + 1
        elapsed = float(result.get("time") or 0.0)
        self.busy_time += elapsed
        self.wait_time += float(result.get("worker_wait_time") or 0.0)
        errors = (result.get("details") or {}).get("errors") or []
        self.results.append(
            (int(task["priority"]), int(task["starid"]), name, elapsed, errors[0] if errors else "")
        )
        level = RESULT_LOG_LEVEL
        if self.workers:  # a progress bar shows the run: log only the failures
            level = logging.WARNING if name in ("ERROR", "ABORT") else logging.DEBUG
        logger.log(
            level,
            "TIC %d (priority %d, Tmag %.2f): %s in %.2f s",
            task["starid"],
            task["priority"],
            task["tmag"] if task.get("tmag") is not None else float("nan"),
            name,
            elapsed,
        )


class Pool(Protocol):
    """Worker processes that run the tasks a :class:`tessphot.parallel.Master` hands out."""

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
        (:class:`tessphot.parallel.LocalPool`); None runs them in this process, one after
        the other.
    pool : Pool, optional
        Run the tasks in these workers instead (e.g. :class:`tessphot.parallel.MPIPool`).
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
        from tessphot.parallel import LocalPool

        pool = LocalPool(workers)
    wanted = _constraints(constraints)
    explicit = bool(wanted.get("starid") or wanted.get("priority"))
    report = RunReport(workers=pool.size if pool is not None else 0)
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
            from tessphot.parallel import Master

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
        stored = manager.get_status(task["priority"]) or STATUS(result["status"])
        report.record(task, result, stored)


def format_summary(report: RunReport) -> str:
    """A short text summary of a run (tasks run and the status counts of the todo list)."""
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items())) or "none"
    lines = [f"Ran {report.tasks} task(s) in {report.elapsed:.1f} s: {counts}"]
    if report.workers:
        rate = report.tasks / report.elapsed if report.elapsed > 0 else 0.0
        busy = report.busy_time / report.elapsed if report.elapsed > 0 else 0.0
        lines.append(
            f"{report.workers} worker(s): {rate:.1f} tasks/s, {busy:.2f} workers busy on "
            f"average; the workers waited {100 * report.wait_fraction:.1f} % of their time "
            "for the master"
        )
    summary = report.summary
    if summary:
        names = [s.name for s in STATUS if summary.get(s.name)]
        totals = ", ".join(f"{n} {summary[n]}" for n in names)
        lines.append(f"Todo list: {totals}; {report.left} matching task(s) left to do")
    failed = [r for r in report.results if r[2] in ("ERROR", "ABORT")]
    for priority, starid, name, _, error in failed[:10]:
        lines.append(f"  {name} TIC {starid} (priority {priority}): {error}")
    if len(failed) > 10:
        lines.append(f"  ... and {len(failed) - 10} more (see diagnostics.errors in todo.sqlite)")
    return "\n".join(lines)
