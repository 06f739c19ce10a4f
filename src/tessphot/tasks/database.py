"""Opening a todo file: the connection, its checks, the migration of old files, transactions.

The file is opened in write-ahead-log mode with an exclusive lock (as the original did), so
a second task manager on the same file fails at once with a clear error instead of handing
out the same tasks twice.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tessphot.tasks.constraints import build_constraints
from tessphot.tasks.result import HALO_SWITCH_TEXT
from tessphot.tasks.schema import (
    FORMAT_VERSION,
    TODOLIST_COLUMNS,
    TodoFileError,
    create_tables,
    read_metadata,
)
from tessphot.tasks.status import RETRIED

logger = logging.getLogger(__name__)

#: How long to wait for a lock held by another process before giving up [s].
LOCK_TIMEOUT = 2.0
#: Columns added to ``diagnostics`` by later versions of the original; added to old files.
_DIAGNOSTICS_MIGRATIONS = {"edge_flux": "REAL", "worker_wait_time": "REAL", "prf_chi2": "REAL"}


def _locked(err: sqlite3.DatabaseError) -> bool:
    """Whether an SQLite error means that another process holds the file."""
    return "locked" in str(err) or "busy" in str(err)


def open_todo(
    path: Path, *, overwrite: bool, cleanup_constraints: Mapping[str, Any]
) -> sqlite3.Connection:
    """Open a todo file for a task manager and make it ready to hand out tasks.

    Parameters
    ----------
    path : Path
        The ``todo.sqlite`` file.
    overwrite : bool
        Forget all results (see :class:`~tessphot.tasks.manager.TaskManager`).
    cleanup_constraints : mapping
        Which ``STARTED``, ``ERROR`` and ``ABORT`` tasks to reset (see
        :func:`build_constraints`).

    Returns
    -------
    sqlite3.Connection
        The connection, in autocommit mode, holding the exclusive lock.

    Raises
    ------
    TodoFileError
        If the file is not an SQLite database, not a todo file, written by a newer tessphot,
        or in use by another process.
    """
    conn = _connect(path)
    try:
        _prepare(conn, path, overwrite, cleanup_constraints)
    except sqlite3.DatabaseError as err:
        conn.close()
        if _locked(err):
            raise TodoFileError(path, "in use by another process (locked)") from err
        raise TodoFileError(path, f"cannot be used as a todo file: {err}") from err
    except BaseException:
        conn.close()
        raise
    return conn


def _connect(path: Path) -> sqlite3.Connection:
    """Connect to the file with its pragmas, and check that it is a todo file we can use."""
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
        if _locked(err):
            raise TodoFileError(path, "in use by another process (locked)") from err
        raise TodoFileError(path, f"cannot be opened: {err}") from err
    except sqlite3.DatabaseError as err:
        conn.close()
        raise TodoFileError(path, f"not an SQLite database ({err})") from err
    if mode.lower() != "wal":
        logger.warning("%s: journal mode WAL not available, using %s", path, mode)
    try:
        _check_layout(conn, path, tables)
    except TodoFileError:
        conn.close()
        raise
    return conn


def _check_layout(conn: sqlite3.Connection, path: Path, tables: set[str]) -> None:
    """Refuse a file that is not a todo file, lacks columns or is of a newer format."""
    if "todolist" not in tables:
        raise TodoFileError(path, "not a todo file (no table 'todolist')")
    columns = {row["name"] for row in conn.execute("PRAGMA table_info(todolist)")}
    missing = [column for column in TODOLIST_COLUMNS if column not in columns]
    if missing:
        raise TodoFileError(
            path,
            f"table 'todolist' lacks the column(s) {', '.join(missing)}: written by an old "
            "or foreign tool; recreate it with 'tessphot todo'",
        )
    version = read_metadata(conn).get("format_version")
    if version is not None and int(version) > FORMAT_VERSION:
        raise TodoFileError(
            path, f"format version {version} is newer than this tessphot's {FORMAT_VERSION}"
        )


def _prepare(
    conn: sqlite3.Connection,
    path: Path,
    overwrite: bool,
    cleanup_constraints: Mapping[str, Any],
) -> None:
    """Create missing tables, forget results if asked, and reset started or failed tasks."""
    with transaction(conn):
        if overwrite:
            conn.execute("UPDATE todolist SET status = NULL WHERE status IS NOT NULL")
            conn.execute("DROP TABLE IF EXISTS diagnostics")
            conn.execute("DROP TABLE IF EXISTS photometry_skipped")
        _migrate_diagnostics(conn)
        create_tables(conn)
        retried = ",".join(str(int(s)) for s in sorted(RETRIED))
        where, params = build_constraints("todolist", **cleanup_constraints)
        selection = f"SELECT priority FROM todolist WHERE status IN ({retried}) AND {where}"
        conn.execute(f"DELETE FROM diagnostics WHERE priority IN ({selection})", params)
        reset = conn.execute(
            f"UPDATE todolist SET status = NULL WHERE priority IN ({selection})", params
        ).rowcount
        if reset:
            logger.info("%s: %d started, failed or aborted task(s) reset", path, reset)
    if overwrite:
        conn.execute("VACUUM")
    conn.execute("ANALYZE")


def _migrate_diagnostics(conn: sqlite3.Connection) -> None:
    """Bring a ``diagnostics`` table of an old TASOC file up to date (§4.4)."""
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


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the body in one ``BEGIN IMMEDIATE`` transaction, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
