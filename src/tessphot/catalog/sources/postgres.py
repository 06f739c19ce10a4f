"""Catalog source 2: a PostgreSQL database holding the TIC, indexed with q3c.

This is how a survey team hosts the 1.7-billion-row TIC: one table, a q3c index on its
positions, and a polygon query per CCD (``q3c_poly_query``). The table layout is the TASOC
database's ``tic_newest`` (so ``--db-table tasoc.tic_newest`` works against a TASOC server):

.. code-block:: sql

    CREATE TABLE tic (
        starid      BIGINT PRIMARY KEY,         -- TIC ID
        ra          DOUBLE PRECISION NOT NULL,  -- J2000, epoch 2000.0 [deg]
        decl        DOUBLE PRECISION NOT NULL,  -- [deg]
        pm_ra       DOUBLE PRECISION,           -- [mas/yr], includes cos(decl)
        pm_decl     DOUBLE PRECISION,           -- [mas/yr]
        "Tmag"      DOUBLE PRECISION NOT NULL,  -- TESS magnitude
        "Teff"      DOUBLE PRECISION,           -- [K]
        disposition TEXT                        -- NULL, SPLIT, DUPLICATE, ARTIFACT
    );
    CREATE INDEX tic_q3c_idx ON tic (q3c_ang2ipix(ra, decl));
    CLUSTER tic USING tic_q3c_idx;
    ANALYZE tic;

:func:`tessphot.catalog.sources.postgres_load.load_db` (``tessphot catalog-load-db``)
creates it from TIC-like files.

Connections use libpq: a DSN (``host=... dbname=...`` or ``postgresql://...``) from
``--db`` or ``$TESSPHOT_DB``, overridden field by field by ``$TESSPHOT_DB_HOST``,
``_PORT``, ``_NAME``, ``_USER`` and ``_PASSWORD``; whatever is still unset comes from libpq's
own ``PGHOST``, ``PGPASSWORD``, ``~/.pgpass``, service files, ...
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from tessphot import env
from tessphot.catalog.errors import CatalogError
from tessphot.catalog.footprint import Footprint
from tessphot.catalog.sources.base import (
    DEFAULT_KEEP_DISPOSITIONS,
    CatalogSource,
    StarBatch,
    clean_columns,
)

log = logging.getLogger(__name__)

#: Environment variable with a libpq connection string.
DSN_ENV = env.DB
#: Environment variables overriding single connection parameters.
PARAM_ENV = {
    "host": "TESSPHOT_DB_HOST",
    "port": "TESSPHOT_DB_PORT",
    "dbname": "TESSPHOT_DB_NAME",
    "user": "TESSPHOT_DB_USER",
    "password": "TESSPHOT_DB_PASSWORD",
}
#: Default table name.
DEFAULT_TABLE = "tic"
#: Seconds to wait for a connection [s].
DEFAULT_CONNECT_TIMEOUT = 10
#: Rows fetched per round trip from the server-side cursor.
FETCH_ROWS = 50_000


def require_psycopg():
    """The ``psycopg`` module, or a clear error naming the extra to install.

    psycopg is an optional dependency, imported only when a database is used.
    """
    try:
        import psycopg
    except ImportError:
        raise CatalogError(
            "the postgres catalog source needs psycopg: pip install 'tessphot[postgres]'"
        ) from None
    return psycopg


def connection_params(dsn: str | None = None, **overrides) -> tuple[str, dict]:
    """The connection string and keyword overrides from the arguments and environment."""
    dsn = dsn if dsn is not None else env.value(DSN_ENV) or ""
    params = {}
    for key, variable in PARAM_ENV.items():
        if env.value(variable):
            params[key] = env.value(variable)
    params.update({k: v for k, v in overrides.items() if v is not None})
    return dsn, params


def describe_target(dsn: str, params: Mapping) -> str:
    """``user@host:port/dbname`` of a connection (never the password)."""
    psycopg = require_psycopg()
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn, **params)
    except psycopg.ProgrammingError as err:
        raise CatalogError(f"invalid database connection string: {err}") from None
    host = info.get("host") or env.value("PGHOST") or "local socket"
    port = info.get("port") or env.value("PGPORT") or "5432"
    user = info.get("user") or env.value("PGUSER") or ""
    dbname = info.get("dbname") or env.value("PGDATABASE") or user
    return f"{user + '@' if user else ''}{host}:{port}/{dbname}"


def connect(
    dsn: str | None = None,
    *,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    autocommit: bool = False,
    **overrides,
):
    """Open a connection to the TIC database.

    Parameters
    ----------
    dsn : str, optional
        libpq connection string or URI (default ``$TESSPHOT_DB``).
    connect_timeout : float
        Give up connecting after this long [s].
    autocommit : bool
        Passed to psycopg.
    **overrides
        libpq parameters (host, port, dbname, user, password) that take precedence.

    Raises
    ------
    CatalogError
        When the server cannot be reached or refuses the credentials.
    """
    psycopg = require_psycopg()
    dsn, params = connection_params(dsn, **overrides)
    target = describe_target(dsn, params)
    given = psycopg.conninfo.conninfo_to_dict(dsn, **params)
    if "connect_timeout" not in given:
        params["connect_timeout"] = max(1, int(round(connect_timeout)))
    if "application_name" not in given:
        params["application_name"] = "tessphot catalog"
    try:
        conn = psycopg.connect(dsn, autocommit=autocommit, **params)
    except psycopg.OperationalError as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise CatalogError(f"cannot connect to the TIC database {target}: {reason}") from None
    log.debug("Connected to %s", target)
    return conn


def table_identifier(table: str):
    """``schema.table`` as a quoted SQL identifier."""
    from psycopg import sql

    parts = [p for p in table.split(".") if p]
    if not 1 <= len(parts) <= 2:
        raise CatalogError(f"invalid table name {table!r} (use TABLE or SCHEMA.TABLE)")
    return sql.Identifier(*parts)


def _require_q3c(conn, target: str) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'q3c'")
        if cur.fetchone() is None:
            raise CatalogError(
                f"the TIC database {target} lacks the q3c extension "
                "(a superuser must run: CREATE EXTENSION q3c)"
            )


class PostgresSource(CatalogSource):
    """Stars from a PostgreSQL TIC table, selected per CCD with ``q3c_poly_query``.

    Parameters
    ----------
    dsn : str, optional
        libpq connection string (default ``$TESSPHOT_DB``; see the module notes).
    table : str
        ``TABLE`` or ``SCHEMA.TABLE`` (default ``tic``).
    keep_dispositions : sequence of str
        TIC dispositions kept besides NULL.
    connect_timeout : float
        [s].
    **overrides
        libpq connection parameters.

    Raises
    ------
    CatalogError
        When the database cannot be reached, lacks q3c, or has no such table.
    """

    name = "postgres"
    scan = False

    def __init__(
        self,
        dsn: str | None = None,
        table: str = DEFAULT_TABLE,
        keep_dispositions: Sequence[str] = DEFAULT_KEEP_DISPOSITIONS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        **overrides,
    ) -> None:
        self.table = table
        self.keep_dispositions = tuple(str(d).strip().upper() for d in keep_dispositions)
        dsn, params = connection_params(dsn, **overrides)
        self.target = describe_target(dsn, params)
        self._ident = table_identifier(table)
        self.conn = connect(dsn, connect_timeout=connect_timeout, **params)
        try:
            _require_q3c(self.conn, self.target)
            with self.conn.cursor() as cur:
                cur.execute("SELECT to_regclass(%s)", (self._ident.as_string(self.conn),))
                if cur.fetchone()[0] is None:
                    raise CatalogError(f"no table {table} in the TIC database {self.target}")
            self.conn.rollback()
        except BaseException:
            self.close()
            raise

    def describe(self) -> str:
        """The server, database and table (never the password)."""
        return f"postgresql://{self.target} table {self.table}"

    def close(self) -> None:
        """Close the connection."""
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()
            self.conn = None

    def stream(
        self, footprints: Sequence[Footprint], margin_deg: float, faint_limit: float | None
    ) -> Iterator[tuple[int, StarBatch]]:
        """Yield the stars of a q3c polygon query per footprint (:meth:`CatalogSource.stream`)."""
        from psycopg import sql

        psycopg = require_psycopg()
        for index, footprint in enumerate(footprints):
            ra, dec = footprint.query_polygon_radec(margin_deg)
            polygon = np.column_stack([ra, dec]).ravel().tolist()
            conditions = [sql.SQL("q3c_poly_query(ra, decl, %s::double precision[])")]
            args: list = [polygon]
            if faint_limit is not None:
                conditions.append(sql.SQL('"Tmag" <= %s'))
                args.append(float(faint_limit))
            conditions.append(
                sql.SQL("(disposition IS NULL OR upper(disposition::text) = ANY(%s))")
            )
            args.append(list(self.keep_dispositions))
            query = sql.SQL(
                'SELECT starid, ra, decl, pm_ra, pm_decl, "Tmag", "Teff" FROM {} WHERE {}'
            ).format(self._ident, sql.SQL(" AND ").join(conditions))
            what = f"{self.describe()} (sector {footprint.sector} camera {footprint.camera} "
            what += f"CCD {footprint.ccd})"
            log.info("Querying %s", what)
            n_rows = 0
            try:
                with self.conn.transaction(), self.conn.cursor(name="tessphot_catalog") as cur:
                    cur.execute(query, args)
                    while rows := cur.fetchmany(FETCH_ROWS):
                        n_rows += len(rows)
                        yield index, _rows_to_batch(rows, what)
            except psycopg.Error as err:
                reason = " ".join(str(err).split())
                raise CatalogError(f"query of {what} failed: {reason}") from None
            log.debug("%s: %d rows", what, n_rows)


def _rows_to_batch(rows: list[tuple], what: str) -> StarBatch:
    starid, ra, decl, pm_ra, pm_decl, tmag, teff = zip(*rows, strict=True)
    columns = {
        "starid": np.array(starid, dtype=np.int64),
        "ra": np.array(ra, dtype=float),
        "decl": np.array(decl, dtype=float),
        "pm_ra": np.array(pm_ra, dtype=float),
        "pm_decl": np.array(pm_decl, dtype=float),
        "Tmag": np.array(tmag, dtype=float),
        "Teff": np.array(teff, dtype=float),
    }
    names = {
        "starid": "starid",
        "ra": "ra",
        "dec": "decl",
        "pm_ra": "pm_ra",
        "pm_dec": "pm_decl",
        "tmag": "Tmag",
        "teff": "Teff",
    }
    return clean_columns(columns, names, what, keep_dispositions=None)
