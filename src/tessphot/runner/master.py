"""The master of a parallel run: owns ``todo.sqlite``, hands out tasks, saves results.

Only the master opens the todo file (the :class:`~tessphot.tasks.TaskManager` holds an
exclusive lock on it); workers get tasks and send back results through a
:class:`~tessphot.runner.loop.Pool` (local processes or MPI ranks). Every result is
committed as it arrives, so a master killed at any moment loses only the tasks being worked
on, which a rerun does again.

A worker may be given a second task before it finishes the first (:data:`PREFETCH`), so that
it never waits for the master between two tasks; it works through its tasks in the order it
got them, so when it dies the oldest is the one that killed it.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import deque
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from tessphot import env
from tessphot.logs import progress_bar
from tessphot.runner.config import TaskConfig
from tessphot.runner.report import RunReport
from tessphot.runner.schedule import TileScheduler, task_tiles
from tessphot.tasks import STATUS, TaskManager
from tessphot.tasks.result import TaskResult

logger = logging.getLogger(__name__)

#: Tasks a worker holds at most: the one it works on and the next ones, so that it need not
#: wait for the master between two tasks.
PREFETCH = 2
#: A task whose worker died this many times is stored as ERROR instead of being retried.
MAX_TASK_KILLS = 2
#: Seconds between two summary files (besides every ``summary_interval`` results).
SUMMARY_SECONDS = 5.0
#: Environment variable of a test hook: the master kills itself (SIGKILL) right after
#: saving this many results. For the tests of resuming after a crash only.
KILL_MASTER_ENV = env.KILL_MASTER_AFTER


class Master:
    """Hands out tasks to workers and saves their results.

    Parameters
    ----------
    manager : TaskManager
        The open todo file (owned by this process).
    config : TaskConfig
        What the workers need to run a task.
    tasks : sequence of mapping
        The tasks to run (:meth:`TaskManager.get_tasks`).
    report : RunReport
        Filled with the results.
    constraints : mapping, optional
        When given, tasks matching them that are still to do once the list is worked through
        (targets released by a failed task that had made them SKIPPED) are run too.
    progress : bool
        Show the progress with the rate and the time left: a bar on a terminal, else a log
        line every few per cent (:func:`tessphot.logs.progress_bar`).

    Notes
    -----
    Use it as a context manager: leaving the block closes the progress bar, and when it is
    left by an exception (e.g. KeyboardInterrupt) the tasks being worked on are stored as
    ABORT.
    """

    def __init__(
        self,
        manager: TaskManager,
        config: TaskConfig,
        tasks: Sequence[Mapping[str, Any]],
        report: RunReport,
        *,
        constraints: Mapping[str, Any] | None = None,
        progress: bool = False,
    ) -> None:
        self.manager = manager
        self.config = config
        self.report = report
        self._constraints = None if constraints is None else dict(constraints)
        began = time.perf_counter()
        self._scheduler = TileScheduler(tasks, task_tiles(config.input_folder, tasks))
        logger.debug(
            "%d tasks in %d tiles scheduled in %.2f s",
            len(tasks),
            self._scheduler.tiles,
            time.perf_counter() - began,
        )
        #: Tasks handed to each worker and not finished, oldest (the one it works on) first.
        self._held: dict[Hashable, deque[dict[str, Any]]] = {}
        #: Times a worker died while working on a task, by priority.
        self.kills: dict[int, int] = {}
        self._last_summary = time.monotonic()
        self._kill_after = _kill_after()
        self._bar = progress_bar(
            total=len(tasks), unit="task", desc="photometry", enabled=progress, smoothing=0.1
        )

    # ----------------------------------------------------------------------------------------
    @property
    def in_progress(self) -> int:
        """Tasks handed out and not finished."""
        return sum(len(held) for held in self._held.values())

    def held(self, worker: Hashable) -> int:
        """Tasks a worker holds."""
        return len(self._held.get(worker, ()))

    @property
    def finished(self) -> bool:
        """Whether every task is done (nothing to hand out, nothing being worked on)."""
        if len(self._scheduler) or self.in_progress:
            return False
        self._refill()
        return not len(self._scheduler)

    def next_task(self, worker: Hashable) -> dict[str, Any] | None:
        """The next task for a worker, marked STARTED.

        None when there is none for now (there may be later: see :attr:`finished`).
        """
        while True:
            task = self._scheduler.pop(worker)
            if task is None:
                return None
            try:
                self.manager.start_task(task)
            except ValueError:  # made SKIPPED by a brighter star's result meanwhile
                self._bar.total -= 1
                self._bar.refresh()
                continue
            self._held.setdefault(worker, deque()).append(task)
            return task

    def save(self, worker: Hashable, result: TaskResult) -> None:
        """Store the result of a worker's oldest task."""
        held = self._held.get(worker)
        if not held or int(held[0]["priority"]) != int(result.priority):
            raise RuntimeError(
                f"worker {worker} sent the result of task {result.priority}, which it "
                "was not working on"
            )
        task = held.popleft()
        self._store(task, result)

    def worker_lost(self, worker: Hashable, reason: str, blame_task: bool = True) -> None:
        """A worker died: its tasks go back to the queue.

        The one it was working on is an ERROR instead when it is the second worker that task
        killed.

        Parameters
        ----------
        worker : hashable
            The worker.
        reason : str
            How it died (e.g. ``"killed by signal SIGKILL"``, ``"exit code 1"``).
        blame_task : bool
            Whether it died working on its oldest task (False: it died before it started
            working, and no task is to blame).
        """
        held = self._held.pop(worker, deque())
        self._scheduler.release(worker)
        for position, task in enumerate(held):
            priority = int(task["priority"])
            if self.manager.get_status(priority) != STATUS.STARTED:
                continue  # made SKIPPED by a brighter star's result meanwhile
            if position == 0 and blame_task:  # the task it was working on
                self.kills[priority] = self.kills.get(priority, 0) + 1
                if self.kills[priority] >= MAX_TASK_KILLS:
                    message = (
                        f"ERROR: the task killed its worker process {self.kills[priority]} "
                        f"times (last: {reason})"
                    )
                    self._store(task, self.config.failed_result(task, STATUS.ERROR, message))
                    continue
                logger.warning(
                    "Worker %s died (%s) while working on TIC %s (priority %d): task queued again",
                    worker,
                    reason,
                    task["starid"],
                    priority,
                )
            self.manager.reset_tasks(priority=priority)
            self._scheduler.push(task)

    def abort(self, reason: str) -> None:
        """Store every task being worked on as ABORT (the run is being stopped)."""
        for worker in list(self._held):
            held = self._held.pop(worker)
            for task in held:
                if self.manager.get_status(int(task["priority"])) == STATUS.STARTED:
                    self._store(task, self.config.failed_result(task, STATUS.ABORT, reason))

    def close(self) -> None:
        """Close the progress bar and write the summary."""
        self._bar.close()
        self.manager.write_summary()

    def __enter__(self) -> Master:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        try:
            if exc_type is not None and not self.manager.closed:
                self.abort(f"ABORT: the run was stopped ({exc_type.__name__})")
        finally:
            self.close()

    # ----------------------------------------------------------------------------------------
    def _store(self, task: Mapping[str, Any], result: TaskResult) -> None:
        self.manager.save_result(result)
        # The stored status: a result may become SKIPPED (a brighter star in its mask).
        stored = self.manager.get_status(int(task["priority"])) or STATUS(result.status)
        self.report.record(task, result, stored)
        self._bar.update()
        if self.report.failed:
            self._bar.set_postfix_str(f"{self.report.failed} failed", refresh=False)
        now = time.monotonic()
        if now - self._last_summary >= SUMMARY_SECONDS:
            self.manager.write_summary()
            self._last_summary = now
        if self._kill_after is not None and self.report.tasks >= self._kill_after:
            _kill_self()

    def _refill(self) -> None:
        """Queue the matching tasks that became to do again (released SKIPPED targets)."""
        if self._constraints is None:
            return
        tasks = self.manager.get_tasks(**self._constraints)
        if tasks:
            logger.info("%d task(s) released by failed tasks queued", len(tasks))
            for task in tasks:
                self._scheduler.push(task)
            self._bar.total += len(tasks)
            self._bar.refresh()


def _kill_after() -> int | None:
    value = env.value(KILL_MASTER_ENV)
    return int(value) if value else None


def _kill_self() -> None:
    logger.warning("%s is set: the master kills itself (test hook)", KILL_MASTER_ENV)
    os.kill(os.getpid(), signal.SIGKILL)
