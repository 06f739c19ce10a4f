"""The corrections' tables in todo.sqlite: ``todolist.corr_status`` and ``diagnostics_corr``.

The layout of TASOC's corrections pipeline, so that its tools read ours:
``todolist.corr_status`` (a :class:`~tessphot.tasks.STATUS`, NULL: not corrected yet) with
the index ``corr_status_idx``, and ``diagnostics_corr (priority, lightcurve, elaptime,
worker_wait_time, variance, rms_hour, ptp, errors)``; tessphot adds the corrector, the
number of vectors and the goodness metrics as further columns.

Each result is committed as soon as its light curve is written, so a killed run redoes
nothing it saved.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tessphot.tasks import STATUS
from tessphot.tasks.constraints import build_constraints
from tessphot.tasks.database import LOCK_TIMEOUT, transaction
from tessphot.tasks.schema import TodoFileError

#: TASOC's table of the corrections' results, with tessphot's further columns.
DIAGNOSTICS_CORR_DDL = """CREATE TABLE IF NOT EXISTS diagnostics_corr (
    priority INTEGER PRIMARY KEY ASC NOT NULL,
    lightcurve TEXT,
    elaptime REAL,
    worker_wait_time REAL,
    variance DOUBLE,
    rms_hour DOUBLE,
    ptp DOUBLE,
    errors TEXT,
    method TEXT,
    cbv_num INTEGER,
    noise_added REAL,
    variability_removed REAL,
    FOREIGN KEY (priority) REFERENCES todolist(priority) ON DELETE CASCADE ON UPDATE CASCADE
)"""
#: Columns of ``diagnostics_corr`` in table order.
DIAGNOSTICS_CORR_COLUMNS = (
    "priority",
    "lightcurve",
    "elaptime",
    "worker_wait_time",
    "variance",
    "rms_hour",
    "ptp",
    "errors",
    "method",
    "cbv_num",
    "noise_added",
    "variability_removed",
)
#: Photometry statuses whose light curves are corrected.
CORRECTED_STATUSES = (int(STATUS.OK), int(STATUS.WARNING))
#: Correction statuses redone when a run starts (failed or interrupted).
RETRIED_STATUSES = (int(STATUS.ERROR), int(STATUS.ABORT), int(STATUS.STARTED))


@dataclass(frozen=True)
class CorrectionTask:
    """A light curve to correct: a photometry task with a light curve."""

    priority: int
    starid: int
    sector: int
    camera: int
    ccd: int
    cadence: int
    cbv_area: int
    tmag: float
    #: The light curve's path relative to the output folder (``diagnostics.lightcurve``).
    lightcurve: str
    #: The target's position on the CCD (``diagnostics.pos_row``, ``pos_column``) [px].
    row: float
    column: float
    #: The photometry's fraction of the flux from other stars (``diagnostics``).
    contamination: float
    #: Whether it still needs correcting (else it is only a CBV star or prior neighbour).
    to_do: bool = True


@dataclass
class CorrectionResult:
    """The outcome of one light curve's correction (a row of ``diagnostics_corr``)."""

    priority: int
    status: STATUS
    lightcurve: str | None = None
    elaptime: float = 0.0
    variance: float | None = None
    rms_hour: float | None = None
    ptp: float | None = None
    method: str | None = None
    cbv_num: int | None = None
    noise_added: float | None = None
    variability_removed: float | None = None
    errors: list[str] = field(default_factory=list)


@contextlib.contextmanager
def open_corrections(path: Path, *, overwrite: bool = False) -> Iterator[sqlite3.Connection]:
    """Open a todo file for the corrections: its tables made ready, failures reset.

    Parameters
    ----------
    path : Path
        The ``todo.sqlite`` file (of a photometry run).
    overwrite : bool
        Forget every correction result (redo all).

    Raises
    ------
    TodoFileError
        If the file is missing, not a todo file, has no photometry results, or is in use.
    """
    if not path.is_file():
        raise TodoFileError(path, "no such file (run 'tessphot todo' and 'tessphot run' first)")
    try:
        conn = sqlite3.connect(path, timeout=LOCK_TIMEOUT, isolation_level=None)
    except sqlite3.Error as err:
        raise TodoFileError(path, f"cannot be opened: {err}") from err
    conn.row_factory = sqlite3.Row
    try:
        try:
            conn.execute("PRAGMA foreign_keys=ON")
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if "todolist" not in tables:
                raise TodoFileError(path, "not a todo file (no table 'todolist')")
            if "diagnostics" not in tables:
                raise TodoFileError(path, "no photometry results (run 'tessphot run' first)")
            with transaction(conn):
                _prepare(conn, overwrite=overwrite)
        except sqlite3.DatabaseError as err:
            if "locked" in str(err) or "busy" in str(err):
                raise TodoFileError(path, "in use by another process (locked)") from err
            raise TodoFileError(path, f"cannot be used as a todo file: {err}") from err
        yield conn
    finally:
        conn.close()


def _prepare(conn: sqlite3.Connection, *, overwrite: bool) -> None:
    """Add the corrections' column and table; reset failed results (all, with overwrite)."""
    columns = {row["name"] for row in conn.execute("PRAGMA table_info(todolist)")}
    if "corr_status" not in columns:
        conn.execute("ALTER TABLE todolist ADD COLUMN corr_status INTEGER DEFAULT NULL")
    conn.execute("CREATE INDEX IF NOT EXISTS corr_status_idx ON todolist (corr_status)")
    conn.execute(DIAGNOSTICS_CORR_DDL)
    have = {row["name"] for row in conn.execute("PRAGMA table_info(diagnostics_corr)")}
    for column in DIAGNOSTICS_CORR_COLUMNS[8:]:
        if column not in have:  # a TASOC table: tessphot's columns added
            kind = "TEXT" if column == "method" else "REAL"
            conn.execute(f"ALTER TABLE diagnostics_corr ADD COLUMN {column} {kind}")
    if overwrite:
        conn.execute("UPDATE todolist SET corr_status = NULL WHERE corr_status IS NOT NULL")
        conn.execute("DELETE FROM diagnostics_corr")
        return
    retried = ",".join(str(s) for s in RETRIED_STATUSES)
    selection = f"SELECT priority FROM todolist WHERE corr_status IN ({retried})"
    conn.execute(f"DELETE FROM diagnostics_corr WHERE priority IN ({selection})")
    conn.execute(f"UPDATE todolist SET corr_status = NULL WHERE corr_status IN ({retried})")


def lightcurve_tasks(
    conn: sqlite3.Connection,
    constraints: Mapping[str, Any] | None = None,
    *,
    by_area: bool = True,
) -> list[CorrectionTask]:
    """Every photometry task with a light curve, in the groups that the selection touches.

    The corrections of one sector, camera, CCD, cadence and CBV area are made together
    (their CBVs and priors come from all their light curves): every task of a group that
    holds a selected task is returned, ``to_do`` for the selected tasks not yet corrected.

    Parameters
    ----------
    conn : sqlite3.Connection
    constraints : mapping, optional
        Task constraints (:func:`~tessphot.tasks.constraints.build_constraints`).
    by_area : bool
        Groups are per CBV area (else per CCD: the ensemble corrector's neighbours).
    """
    where, params = build_constraints("t", **dict(constraints or {}))
    statuses = ",".join(str(s) for s in CORRECTED_STATUSES)
    query = (
        "SELECT t.priority, t.starid, t.sector, t.camera, t.ccd, t.cadence, t.cbv_area, "
        "t.tmag, t.corr_status, d.lightcurve, d.pos_row, d.pos_column, d.contamination, "
        "({where}) AS selected "
        "FROM todolist t JOIN diagnostics d ON d.priority = t.priority "
        f"WHERE t.status IN ({statuses}) AND d.lightcurve IS NOT NULL "
        "ORDER BY t.sector, t.camera, t.ccd, t.cadence, t.cbv_area, t.priority"
    )
    rows = conn.execute(query.format(where=where), params).fetchall()
    selected = {_group(r, by_area) for r in rows if r["selected"]}
    return [
        CorrectionTask(
            priority=int(r["priority"]),
            starid=int(r["starid"]),
            sector=int(r["sector"]),
            camera=int(r["camera"]),
            ccd=int(r["ccd"]),
            cadence=int(r["cadence"]),
            cbv_area=int(r["cbv_area"]),
            tmag=float(r["tmag"]),
            lightcurve=str(r["lightcurve"]),
            row=_float(r["pos_row"]),
            column=_float(r["pos_column"]),
            contamination=_float(r["contamination"]),
            to_do=bool(r["selected"]) and r["corr_status"] is None,
        )
        for r in rows
        if _group(r, by_area) in selected
    ]


def group_key(task: CorrectionTask, *, by_area: bool = True) -> tuple[int, int, int, int, int]:
    """``(sector, camera, ccd, cadence, cbv_area)`` of a task's group (area 0: per CCD)."""
    area = task.cbv_area if by_area else 0
    return (task.sector, task.camera, task.ccd, task.cadence, area)


def _group(row: Mapping[str, Any], by_area: bool) -> tuple[int, ...]:
    keys = ("sector", "camera", "ccd", "cadence", "cbv_area")
    return tuple(int(row[k]) for k in keys[: 5 if by_area else 4])


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def save_results(conn: sqlite3.Connection, results: Sequence[CorrectionResult]) -> None:
    """Store results (status and diagnostics) in one transaction."""
    with transaction(conn):
        for result in results:
            conn.execute(
                "UPDATE todolist SET corr_status = ? WHERE priority = ?",
                (int(result.status), result.priority),
            )
            values = (
                result.priority,
                result.lightcurve,
                result.elaptime,
                None,
                result.variance,
                result.rms_hour,
                result.ptp,
                "\n".join(result.errors) or None,
                result.method,
                result.cbv_num,
                result.noise_added,
                result.variability_removed,
            )
            conn.execute(
                f"INSERT OR REPLACE INTO diagnostics_corr ({','.join(DIAGNOSTICS_CORR_COLUMNS)}) "
                f"VALUES ({','.join('?' * len(DIAGNOSTICS_CORR_COLUMNS))})",
                values,
            )


def status_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Number of light curves per correction status (``"TODO"``: not corrected yet)."""
    statuses = ",".join(str(s) for s in CORRECTED_STATUSES)
    counts: dict[str, int] = {}
    for row in conn.execute(
        f"SELECT corr_status, COUNT(*) AS n FROM todolist WHERE status IN ({statuses}) "
        "GROUP BY corr_status"
    ):
        name = "TODO" if row["corr_status"] is None else STATUS(row["corr_status"]).name
        counts[name] = int(row["n"])
    return counts
