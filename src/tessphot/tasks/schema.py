"""Layout of the task list ``todo.sqlite`` and writing a new one.

The tables ``todolist``, ``diagnostics`` and ``photometry_skipped`` and their indexes are
exactly the original TASOC pipeline's (§4.4 of the notes), so TASOC tools (the corrections
and data-validation pipelines) read our files, and we read theirs: tables and columns that
those tools add (``todolist.corr_status``, ``diagnostics_corr``, ``datavalidation_raw``, ...)
are left alone. tessphot adds one table:

``tessphot_metadata``
    ``key``/``value`` text pairs: the format version of the file, the tessphot version that
    wrote it, and the settings used to build the list.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tessphot.io.errors import FileProblem
from tessphot.paths import atomic_path
from tessphot.version import PIPELINE_NAME, __version__

#: Name of the task list in the input folder.
TODO_FILENAME = "todo.sqlite"
#: Version of this file layout (``tessphot_metadata.format_version``).
FORMAT_VERSION = 1
#: Page size of the files [bytes] (the original's).
PAGE_SIZE = 4096

#: The original's task table. ``priority`` is 1..N in order of brightness.
TODOLIST_DDL = """CREATE TABLE todolist (
    priority INTEGER PRIMARY KEY ASC NOT NULL,
    starid INTEGER NOT NULL,
    sector INTEGER NOT NULL,
    datasource TEXT NOT NULL DEFAULT 'ffi',
    camera INTEGER NOT NULL,
    ccd INTEGER NOT NULL,
    cadence INTEGER NOT NULL,
    method TEXT DEFAULT NULL,
    tmag REAL,
    status INTEGER DEFAULT NULL,
    cbv_area INTEGER NOT NULL
)"""

#: The original's indexes on ``todolist`` (the last one is created by its TaskManager).
TODOLIST_INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS unique_target_idx ON todolist "
    "(starid, datasource, sector, camera, ccd, cadence)",
    "CREATE INDEX IF NOT EXISTS status_idx ON todolist (status)",
    "CREATE INDEX IF NOT EXISTS starid_idx ON todolist (starid)",
    "CREATE INDEX IF NOT EXISTS todolist_datasource_idx ON todolist (datasource)",
)

#: The original's per-task results (written by the TaskManager).
DIAGNOSTICS_DDL = """CREATE TABLE IF NOT EXISTS diagnostics (
    priority INTEGER PRIMARY KEY ASC NOT NULL,
    lightcurve TEXT,
    method_used TEXT NOT NULL,
    elaptime REAL NOT NULL,
    worker_wait_time REAL,
    mean_flux DOUBLE,
    variance DOUBLE,
    variability DOUBLE,
    rms_hour DOUBLE,
    ptp DOUBLE,
    pos_row REAL,
    pos_column REAL,
    contamination REAL,
    mask_size INTEGER,
    edge_flux REAL,
    stamp_width INTEGER,
    stamp_height INTEGER,
    stamp_resizes INTEGER,
    prf_chi2 REAL,
    errors TEXT,
    FOREIGN KEY (priority) REFERENCES todolist(priority) ON DELETE CASCADE ON UPDATE CASCADE
)"""

#: The original's index on ``diagnostics``.
DIAGNOSTICS_INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS diagnostics_lightcurve_idx ON diagnostics (lightcurve)",
)

#: The original's record of which task's result made another task SKIPPED.
PHOTOMETRY_SKIPPED_DDL = """CREATE TABLE IF NOT EXISTS photometry_skipped (
    priority INTEGER NOT NULL,
    skipped_by INTEGER NOT NULL,
    FOREIGN KEY (priority) REFERENCES todolist(priority) ON DELETE CASCADE ON UPDATE CASCADE,
    FOREIGN KEY (skipped_by) REFERENCES todolist(priority) ON DELETE RESTRICT ON UPDATE CASCADE
)"""

#: tessphot's metadata.
METADATA_DDL = """CREATE TABLE IF NOT EXISTS tessphot_metadata (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT
)"""

#: Columns of ``todolist`` in table order.
TODOLIST_COLUMNS = (
    "priority",
    "starid",
    "sector",
    "datasource",
    "camera",
    "ccd",
    "cadence",
    "method",
    "tmag",
    "status",
    "cbv_area",
)

#: Columns of ``diagnostics`` in table order.
DIAGNOSTICS_COLUMNS = (
    "priority",
    "lightcurve",
    "method_used",
    "elaptime",
    "worker_wait_time",
    "mean_flux",
    "variance",
    "variability",
    "rms_hour",
    "ptp",
    "pos_row",
    "pos_column",
    "contamination",
    "mask_size",
    "edge_flux",
    "stamp_width",
    "stamp_height",
    "stamp_resizes",
    "prf_chi2",
    "errors",
)

#: Fields of one target row given to :func:`write_todolist` and their defaults
#: (``...``: required).
TARGET_FIELDS: dict[str, Any] = {
    "starid": ...,
    "sector": ...,
    "camera": ...,
    "ccd": ...,
    "cadence": ...,
    "datasource": "ffi",
    "method": None,
    "tmag": None,
    "cbv_area": ...,
}

#: Valid values of ``todolist.datasource``: FFI, primary TPF target, or a secondary target
#: inside the TPF of the primary target with the given TIC.
DATASOURCE_PATTERN = re.compile(r"^(ffi|tpf|tpf:\d+)$")
#: Photometry methods that may be forced in ``todolist.method`` (NULL: automatic).
METHODS = ("aperture", "halo", "psf", "linpsf")
#: Cameras and CCDs of TESS.
CAMERAS = (1, 2, 3, 4)
CCDS = (1, 2, 3, 4)

#: Radius of the area covered by one camera [deg]: half the diagonal of its 24x24 deg field.
CBV_AREA_RADIUS_DEG = math.hypot(12.0, 12.0)
#: Outer edges of the co-trending rings, as fractions of :data:`CBV_AREA_RADIUS_DEG`.
CBV_RING_EDGES = (0.25, 0.5, 0.75)


#: Inserting one target with its priority (no status: to do).
_INSERT = (
    "INSERT INTO todolist (priority, starid, sector, datasource, camera, ccd, cadence, method, "
    "tmag, status, cbv_area) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)"
)
#: Waiting for another process's lock on a todo file being extended [s].
ADD_LOCK_TIMEOUT = 10.0


class TodoFileError(FileProblem):
    """A file that cannot be used as a task list (message: ``"{path}: {problem}"``)."""


def cbv_area(camera, ccd, distance_deg):
    """Co-trending area of targets: ``100 camera + 10 ccd + ring`` (§5.7 of the notes).

    The ring (1 to 4) grows with the target's great-circle distance from the camera centre,
    relative to :data:`CBV_AREA_RADIUS_DEG`: below 0.25, 0.5, 0.75 of it, or beyond.

    Parameters
    ----------
    camera, ccd : int or array_like of int
        Camera and CCD (1-4).
    distance_deg : float or array_like
        Distance of the target from the camera centre [deg].

    Returns
    -------
    int or numpy.ndarray of int
        The area code(s), e.g. 142 for camera 1, CCD 4, second ring.

    Raises
    ------
    ValueError
        For a camera or CCD outside 1-4, or a negative or non-finite distance.
    """
    camera_arr = np.asarray(camera)
    ccd_arr = np.asarray(ccd)
    distance = np.asarray(distance_deg, dtype=float)
    if not np.all(np.isin(camera_arr, CAMERAS)):
        raise ValueError(f"invalid camera {camera}: must be one of {CAMERAS}")
    if not np.all(np.isin(ccd_arr, CCDS)):
        raise ValueError(f"invalid CCD {ccd}: must be one of {CCDS}")
    if not np.all(np.isfinite(distance)) or np.any(distance < 0):
        raise ValueError(f"invalid distance from the camera centre: {distance_deg}")
    edges = np.asarray(CBV_RING_EDGES) * CBV_AREA_RADIUS_DEG
    ring = 1 + np.searchsorted(edges, distance, side="right")
    area = 100 * camera_arr.astype(int) + 10 * ccd_arr.astype(int) + ring
    return int(area) if area.ndim == 0 else area


def create_tables(conn: sqlite3.Connection) -> None:
    """Create the tables and indexes of a todo file that do not exist yet.

    ``todolist`` itself must exist already (it is created by :func:`write_todolist`); the
    result tables, the indexes and ``tessphot_metadata`` are added if missing.
    """
    for statement in (
        *TODOLIST_INDEXES,
        DIAGNOSTICS_DDL,
        *DIAGNOSTICS_INDEXES,
        PHOTOMETRY_SKIPPED_DDL,
        METADATA_DDL,
    ):
        conn.execute(statement)


def read_metadata(conn: sqlite3.Connection) -> dict[str, str]:
    """The ``tessphot_metadata`` key/value pairs of an open todo file (empty if none)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='tessphot_metadata'"
    ).fetchone()
    if not exists:
        return {}
    return {key: value for key, value in conn.execute("SELECT key, value FROM tessphot_metadata")}


def target_limit(conn: sqlite3.Connection) -> float | None:
    """The faint limit [Tmag] the todo file's targets were chosen by (None: not recorded).

    From the ``todo_settings`` the todo stage stores; catalogued stars fainter than it are
    no targets of the file.
    """
    try:
        value = json.loads(read_metadata(conn).get("todo_settings") or "{}").get("faint_limit")
        limit = float(value)
    except (TypeError, ValueError, AttributeError):
        return None
    return limit if math.isfinite(limit) else None


def write_metadata(conn: sqlite3.Connection, metadata: Mapping[str, Any]) -> None:
    """Store key/value pairs in ``tessphot_metadata`` (non-strings as JSON)."""
    conn.execute(METADATA_DDL)
    conn.executemany(
        "INSERT OR REPLACE INTO tessphot_metadata (key, value) VALUES (?, ?)",
        [
            (str(key), value if isinstance(value, str) else json.dumps(value))
            for key, value in metadata.items()
        ],
    )


def _field(row: Any, name: str) -> Any:
    """Field ``name`` of a target row (mapping, numpy record, astropy row, ...)."""
    try:
        value = row[name]
    except (KeyError, ValueError, IndexError, TypeError):
        default = TARGET_FIELDS[name]
        if default is ...:
            raise ValueError(f"target row without the required field {name!r}: {row!r}") from None
        return default
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _target_tuple(row: Any) -> tuple:
    """Validated (starid, sector, datasource, camera, ccd, cadence, method, tmag, cbv_area)."""
    values = {name: _field(row, name) for name in TARGET_FIELDS}
    try:
        starid = int(values["starid"])
        sector = int(values["sector"])
        camera = int(values["camera"])
        ccd = int(values["ccd"])
        cadence = int(values["cadence"])
        area = int(values["cbv_area"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"invalid target row {values}: {err}") from None
    datasource = str(values["datasource"])
    method = values["method"]
    tmag = values["tmag"]
    tmag = None if tmag is None or not np.isfinite(float(tmag)) else float(tmag)
    if starid <= 0 or sector <= 0 or cadence <= 0:
        raise ValueError(f"invalid target row {values}: starid, sector, cadence must be > 0")
    if camera not in CAMERAS or ccd not in CCDS:
        raise ValueError(f"invalid target row {values}: camera and CCD must be 1-4")
    if not DATASOURCE_PATTERN.match(datasource):
        raise ValueError(
            f"invalid target row {values}: datasource must be 'ffi', 'tpf' or 'tpf:<TIC>'"
        )
    if method is not None:
        method = str(method)
        if method not in METHODS:
            raise ValueError(f"invalid target row {values}: method must be one of {METHODS}")
    return (starid, sector, datasource, camera, ccd, cadence, method, tmag, area)


def _sorted_targets(rows: Iterable[Any]) -> list[tuple]:
    """Validated target tuples (:func:`_target_tuple`), brightest first.

    Sorted by ``tmag`` (unknown last), ties by ``starid``, ``datasource``, ``sector``,
    ``camera``, ``ccd``, ``cadence``.

    Raises
    ------
    ValueError
        For an invalid row, or the same target twice.
    """
    targets = [_target_tuple(row) for row in rows]
    seen: set[tuple] = set()
    for target in targets:
        key = target[:6]
        if key in seen:
            raise ValueError(
                "the same target twice in the todo list: starid={}, sector={}, "
                "datasource={}, camera={}, ccd={}, cadence={}".format(*key)
            )
        seen.add(key)
    targets.sort(key=lambda t: (t[7] is None, t[7] or 0.0, t[0], t[2], t[1], t[3], t[4], t[5]))
    return targets


def write_todolist(
    path: str | os.PathLike[str],
    rows: Iterable[Any],
    *,
    overwrite: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write a new task list, atomically.

    The targets are sorted by brightness (``tmag`` ascending, unknown last; ties by
    ``starid``, ``datasource``, ``sector``, ``camera``, ``ccd``, ``cadence``) and numbered
    1..N in that order as ``priority``, so bright stars are processed first. The file is
    built under a temporary name in the same folder and renamed into place only when
    complete, so a crash never leaves a partial todo file.

    Parameters
    ----------
    path : str or os.PathLike
        The todo file to write (usually ``<input folder>/todo.sqlite``).
    rows : iterable
        Targets: mappings (or numpy/astropy records) with the fields ``starid``, ``sector``,
        ``camera``, ``ccd``, ``cadence`` [s], ``cbv_area``, and optionally ``datasource``
        (default ``'ffi'``), ``method`` (default None: automatic) and ``tmag``.
    overwrite : bool
        Replace an existing file (its results are lost). Otherwise an existing file is an
        error.
    metadata : mapping, optional
        Extra ``tessphot_metadata`` entries, e.g. the settings used to select the targets.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    FileExistsError
        If the file exists and ``overwrite`` is false.
    ValueError
        For an invalid row, or the same target (starid, datasource, sector, camera, ccd,
        cadence) twice.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: todo file exists (use overwrite to replace it)")
    targets = _sorted_targets(rows)

    with atomic_path(path) as tmp:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("BEGIN")
            conn.execute(TODOLIST_DDL)
            conn.executemany(
                _INSERT, [(priority, *target) for priority, target in enumerate(targets, start=1)]
            )
            create_tables(conn)
            write_metadata(
                conn,
                {
                    "format_version": str(FORMAT_VERSION),
                    "pipeline": PIPELINE_NAME,
                    "pipeline_version": __version__,
                    "created": datetime.now(UTC).isoformat(timespec="seconds"),
                    **(metadata or {}),
                },
            )
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
            conn.execute("PRAGMA journal_mode=DELETE")
        finally:
            conn.close()
    return path


def add_to_todolist(
    path: str | os.PathLike[str],
    rows: Iterable[Any],
    *,
    metadata: Mapping[str, Any] | None = None,
) -> int:
    """Add the targets not yet in a task list; the existing tasks and results stay untouched.

    A target is new when no row has its ``(starid, datasource, sector, camera, ccd,
    cadence)``. New targets get the priorities after the highest one in the file, brightest
    first among themselves; existing rows keep their priority, status, method and
    diagnostics. One transaction: the file has all new targets or none.

    Parameters
    ----------
    path : str or os.PathLike
        An existing todo file.
    rows : iterable
        Targets, as for :func:`write_todolist`.
    metadata : mapping, optional
        ``tessphot_metadata`` entries to set (replacing those of the same key).

    Returns
    -------
    int
        The number of targets added.

    Raises
    ------
    TodoFileError
        If the file is not a todo file or is held by another process.
    ValueError
        For an invalid row, or the same target twice in ``rows``.
    """
    path = Path(path)
    targets = _sorted_targets(rows)
    try:
        conn = sqlite3.connect(path, timeout=ADD_LOCK_TIMEOUT, isolation_level=None)
    except sqlite3.Error as err:
        raise TodoFileError(path, f"cannot be opened: {err}") from None
    try:
        conn.execute("BEGIN IMMEDIATE")
        existing = {
            tuple(row)
            for row in conn.execute(
                "SELECT starid, sector, datasource, camera, ccd, cadence FROM todolist"
            )
        }
        new = [t for t in targets if t[:6] not in existing]
        (last,) = conn.execute("SELECT COALESCE(MAX(priority), 0) FROM todolist").fetchone()
        conn.executemany(_INSERT, [(last + k, *t) for k, t in enumerate(new, start=1)])
        write_metadata(conn, {"updated": datetime.now(UTC).isoformat(timespec="seconds")})
        write_metadata(conn, metadata or {})
        conn.execute("COMMIT")
    except sqlite3.Error as err:
        problem = "in use by another process (locked)" if "locked" in str(err) else str(err)
        raise TodoFileError(path, f"cannot add tasks: {problem}") from None
    finally:
        conn.close()
    return len(new)
