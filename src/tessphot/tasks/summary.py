"""The run summary of a task manager (§4.6 of the notes), written as a JSON file."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sqlite3
from pathlib import Path
from typing import Any

from tessphot import env
from tessphot.paths import atomic_path
from tessphot.tasks.result import TaskResult
from tessphot.tasks.status import STATUS

logger = logging.getLogger(__name__)

#: Weight of the newest value in the moving averages of the summary.
EMA_ALPHA = 0.1
#: Default number of results between two summary files.
DEFAULT_SUMMARY_INTERVAL = 200


@dataclasses.dataclass
class Session:
    """What a task manager has seen since it was opened.

    Attributes
    ----------
    numtasks : int
        Tasks to do when the manager was opened.
    tasks_run : int
        Results saved since.
    last_error : str, optional
        The errors of the last failed task.
    mean_elaptime, mean_worker_waittime : float, optional
        Exponential moving averages (weight :data:`EMA_ALPHA`) [s].
    """

    numtasks: int
    tasks_run: int = 0
    last_error: str | None = None
    mean_elaptime: float | None = None
    mean_worker_waittime: float | None = None

    def record(self, status: STATUS, result: TaskResult, errors: list[str]) -> None:
        """Count a saved result and update the averages with its times."""
        self.tasks_run += 1
        if status == STATUS.ERROR and errors:
            self.last_error = "\n".join(errors)
        for key, value in (
            ("mean_elaptime", result.elaptime),
            ("mean_worker_waittime", result.worker_wait_time),
        ):
            if value is None or not math.isfinite(float(value)):
                continue
            old = getattr(self, key)
            new = float(value) if old is None else old + EMA_ALPHA * (float(value) - old)
            setattr(self, key, new)


def run_summary(conn: sqlite3.Connection, path: Path, session: Session) -> dict[str, Any]:
    """The summary: ``slurm_jobid``, the session, and one count per :class:`STATUS` name."""
    counts = dict.fromkeys((s.name for s in STATUS), 0)
    for status, count in conn.execute(
        "SELECT status, COUNT(*) FROM todolist WHERE status IS NOT NULL GROUP BY status"
    ):
        try:
            counts[STATUS(status).name] += count
        except ValueError:
            logger.warning("%s: %d task(s) with unknown status %r", path, count, status)
    return {"slurm_jobid": env.value(env.SLURM_JOB_ID), **dataclasses.asdict(session), **counts}


def write_summary_file(path: Path, summary: dict[str, Any]) -> None:
    """Write the summary as JSON, atomically."""
    text = json.dumps(summary, indent=2)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
