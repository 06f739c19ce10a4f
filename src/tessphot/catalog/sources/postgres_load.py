"""Loading TIC-like files into a PostgreSQL table with a q3c index (``catalog-load-db``).

:func:`load_db` creates the table that :class:`tessphot.catalog.sources.postgres.PostgresSource`
queries (layout :data:`TABLE_DDL`), copies the files into it and indexes it, all in one
transaction.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from tessphot.catalog.errors import CatalogError
from tessphot.catalog.schema import nan_to_none
from tessphot.catalog.sources.base import StarBatch
from tessphot.catalog.sources.file import read_tic_file
from tessphot.catalog.sources.postgres import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_TABLE,
    connect,
    connection_params,
    describe_target,
    require_psycopg,
    table_identifier,
)

log = logging.getLogger(__name__)

#: Columns of the table, in the order loaded.
TABLE_COLUMNS = ("starid", "ra", "decl", "pm_ra", "pm_decl", "Tmag", "Teff", "disposition")
#: The table layout (``{table}`` is filled in, quoted).
TABLE_DDL = """CREATE TABLE {table} (
    starid BIGINT NOT NULL,
    ra DOUBLE PRECISION NOT NULL,
    decl DOUBLE PRECISION NOT NULL,
    pm_ra DOUBLE PRECISION,
    pm_decl DOUBLE PRECISION,
    "Tmag" DOUBLE PRECISION NOT NULL,
    "Teff" DOUBLE PRECISION,
    disposition TEXT
)"""


def load_db(
    paths: Sequence[str | os.PathLike],
    dsn: str | None = None,
    table: str = DEFAULT_TABLE,
    *,
    append: bool = False,
    replace: bool = False,
    cluster: bool = True,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    **overrides,
) -> int:
    """Load TIC-like files into a PostgreSQL table with a q3c index.

    Everything happens in one transaction: if anything fails (a bad file, a duplicate TIC ID,
    a lost connection), the database is left as it was.

    Parameters
    ----------
    paths : sequence of path-like
        CSV, ECSV, FITS or Parquet files with TIC column names (all rows are loaded, whatever
        their disposition; queries filter).
    dsn : str, optional
        libpq connection string (default ``$TESSPHOT_DB``).
    table : str
        ``TABLE`` or ``SCHEMA.TABLE``.
    append : bool
        Add to an existing table (created if missing).
    replace : bool
        Drop an existing table first.
    cluster : bool
        Order a new table physically by its q3c index (faster queries; slow for huge tables).
    connect_timeout : float
        [s].
    **overrides
        libpq connection parameters.

    Returns
    -------
    int
        Rows loaded.

    Raises
    ------
    CatalogError
        For unreadable files, duplicate IDs, a missing q3c extension, an existing table
        without ``append`` or ``replace``, or connection problems.
    """
    psycopg = require_psycopg()
    # psycopg is an optional dependency: imported once require_psycopg found it.
    from psycopg import sql

    if append and replace:
        raise CatalogError("choose either append or replace, not both")
    paths = _checked_paths(paths)
    dsn, params = connection_params(dsn, **overrides)
    target = describe_target(dsn, params)
    ident = table_identifier(table)
    conn = connect(dsn, connect_timeout=connect_timeout, **params)
    try:
        with conn.transaction(), conn.cursor() as cur:
            _create_q3c(cur, target)
            new = _prepare_table(cur, conn, ident, table, target, append=append, replace=replace)
            n_total = _copy_files(cur, ident, table, paths)
            if new:
                _index_table(cur, ident, table, cluster=cluster)
            cur.execute(sql.SQL("ANALYZE {}").format(ident))
    except psycopg.errors.UniqueViolation as err:
        detail = " ".join(str(err).split())
        raise CatalogError(f"duplicate TIC IDs; nothing loaded into {table}: {detail}") from None
    except psycopg.Error as err:
        reason = " ".join(str(err).split())
        raise CatalogError(f"loading into {table} at {target} failed: {reason}") from None
    finally:
        conn.close()
    log.info("Loaded %d rows into %s at %s", n_total, table, target)
    return n_total


def _checked_paths(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The files to load, each checked to exist."""
    paths = [Path(p).expanduser() for p in paths]
    if not paths:
        raise CatalogError("no files to load")
    for path in paths:
        if not path.is_file():
            raise CatalogError(f"{path}: catalog file not found")
    return paths


def _create_q3c(cur, target: str) -> None:
    """Create the q3c extension if missing (a clear error when this user may not)."""
    try:
        cur.execute("CREATE EXTENSION IF NOT EXISTS q3c")
    except require_psycopg().Error:
        raise CatalogError(
            f"the TIC database {target} lacks the q3c extension and this user may "
            "not create it (a superuser must run: CREATE EXTENSION q3c)"
        ) from None


def _prepare_table(
    cur, conn, ident, table: str, target: str, *, append: bool, replace: bool
) -> bool:
    """Drop or keep an existing table as asked, create a missing one; True when new."""
    from psycopg import sql

    cur.execute("SELECT to_regclass(%s)", (ident.as_string(conn),))
    exists = cur.fetchone()[0] is not None
    if exists and replace:
        cur.execute(sql.SQL("DROP TABLE {}").format(ident))
        exists = False
    elif exists and not append:
        raise CatalogError(f"table {table} exists in {target}: append to it or replace it")
    if not exists:
        cur.execute(sql.SQL(TABLE_DDL).format(table=ident))
    return not exists


def _copy_files(cur, ident, table: str, paths: Sequence[Path]) -> int:
    """COPY the rows of the files into the table; returns the rows loaded."""
    from psycopg import sql

    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
        ident, sql.SQL(", ").join(map(sql.Identifier, TABLE_COLUMNS))
    )
    n_total = 0
    for path in paths:
        log.info("Loading %s into %s", path, table)
        for batch in read_tic_file(path, keep_dispositions=None):
            with cur.copy(copy_sql) as copy:
                for row in _table_rows(batch):
                    copy.write_row(row)
            n_total += len(batch)
            log.info("%d rows loaded", n_total)
    return n_total


def _table_rows(batch: StarBatch):
    """The rows of a batch in the order of :data:`TABLE_COLUMNS` (NULL where missing)."""
    return zip(
        batch.starid.tolist(),
        batch.ra.tolist(),
        batch.dec.tolist(),
        nan_to_none(batch.pm_ra),
        nan_to_none(batch.pm_dec),
        batch.tmag.tolist(),
        nan_to_none(batch.teff),
        [d or None for d in batch.disposition.tolist()],
        strict=True,
    )


def _index_table(cur, ident, table: str, *, cluster: bool) -> None:
    """Add the primary key and the q3c index to a new table (and CLUSTER it on the index)."""
    from psycopg import sql

    index_name = sql.Identifier(f"{table.split('.')[-1]}_q3c_idx")
    log.info("Indexing %s (primary key, q3c)", table)
    cur.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (starid)").format(ident))
    cur.execute(sql.SQL("CREATE INDEX {} ON {} (q3c_ang2ipix(ra, decl))").format(index_name, ident))
    if cluster:
        cur.execute(sql.SQL("CLUSTER {} USING {}").format(ident, index_name))
