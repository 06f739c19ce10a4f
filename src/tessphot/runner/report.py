"""What a run did (:class:`RunReport`) and its text summary (:func:`format_summary`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tessphot.tasks import STATUS
from tessphot.tasks.result import TaskResult

logger = logging.getLogger(__name__)

#: Level of the log line of each finished task of a serial run (parallel runs show a progress
#: bar instead: DEBUG, and WARNING for failures).
RESULT_LOG_LEVEL = logging.INFO
#: Most failed tasks listed, with their reasons, in a run's summary.
MAX_FAILURES_LISTED = 10


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
    #: One entry per task: ``(priority, starid, status name, seconds, reason)``, the reason
    #: from :func:`status_reason`.
    results: list[tuple[int, int, str, float, str]] = field(default_factory=list)
    #: Worker processes (0: the tasks ran in this process).
    workers: int = 0
    #: Seconds the workers spent on tasks, summed over the workers.
    busy_time: float = 0.0
    #: Seconds the workers spent waiting for a task from the master, summed.
    wait_time: float = 0.0
    #: Where the light curves were written.
    output: Path | None = None

    @property
    def failed(self) -> int:
        """Tasks that ended in ERROR or ABORT."""
        return self.counts.get("ERROR", 0) + self.counts.get("ABORT", 0)

    @property
    def wait_fraction(self) -> float:
        """Fraction of the workers' time spent waiting on the master (0 when nothing ran)."""
        total = self.busy_time + self.wait_time
        return self.wait_time / total if total > 0 else 0.0

    def record(self, task: Mapping[str, Any], result: TaskResult, stored: STATUS) -> None:
        """Count a saved result (``stored``: its status in the todo list) and log it."""
        name = stored.name
        self.tasks += 1
        self.counts[name] = self.counts.get(name, 0) + 1
        elapsed = float(result.elaptime or 0.0)
        self.busy_time += elapsed
        self.wait_time += float(result.worker_wait_time or 0.0)
        reason = status_reason(result.errors, name)
        self.results.append((int(task["priority"]), int(task["starid"]), name, elapsed, reason))
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


def status_reason(errors: Sequence[str], status: str) -> str:
    """The message that explains a task's status.

    The task's messages are ``"LEVEL: text"`` in the order they came: the first one at the
    status's own level (an ``ERROR`` task's first ``ERROR:``), else the first ``ERROR:``,
    else the first message ("" when there is none). A warning logged before the error is
    thus not given as the reason of a failure.
    """
    for level in (status, "ERROR"):
        for message in errors:
            if message.startswith(f"{level}:"):
                return message
    return errors[0] if errors else ""


def _status_counts(counts: Mapping[str, int]) -> str:
    """``"OK 3, WARNING 1, ERROR 1"``: counts in the order of :class:`STATUS`, zeros left out."""
    order = {s.name: int(s) for s in STATUS}
    names = sorted((n for n, v in counts.items() if v), key=lambda n: order.get(n, len(order)))
    return ", ".join(f"{name} {counts[name]}" for name in names) or "none"


def format_summary(report: RunReport) -> str:
    """A short text summary of a run.

    The tasks run and their statuses, the reason of each failure (up to
    :data:`MAX_FAILURES_LISTED`), the status counts of the whole todo list and, last, where
    the light curves are.
    """
    lines = [
        f"Ran {report.tasks} task(s) in {report.elapsed:.1f} s: {_status_counts(report.counts)}"
    ]
    if report.workers:
        rate = report.tasks / report.elapsed if report.elapsed > 0 else 0.0
        busy = report.busy_time / report.elapsed if report.elapsed > 0 else 0.0
        lines.append(
            f"{report.workers} worker(s): {rate:.1f} tasks/s, {busy:.2f} workers busy on "
            f"average; the workers waited {100 * report.wait_fraction:.1f} % of their time "
            "for the master"
        )
    failed = [r for r in report.results if r[2] in ("ERROR", "ABORT")]
    for priority, starid, name, _, reason in failed[:MAX_FAILURES_LISTED]:
        lines.append(f"  {name} TIC {starid} (priority {priority}): {reason}")
    if len(failed) > MAX_FAILURES_LISTED:
        lines.append(
            f"  ... and {len(failed) - MAX_FAILURES_LISTED} more (see diagnostics.errors in "
            "todo.sqlite)"
        )
    if report.summary:
        totals = _status_counts({s.name: report.summary.get(s.name, 0) for s in STATUS})
        lines.append(f"Todo list: {totals}; {report.left} matching task(s) left to do")
    if report.output is not None:
        lines.append(f"Light curves in {report.output}")
    return "\n".join(lines)
