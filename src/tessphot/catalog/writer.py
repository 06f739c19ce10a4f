"""Writing the catalog SQLite files.

:class:`CatalogWriter` builds a file under a temporary name in the target folder and renames
it into place only when it is complete, so a failed run never leaves a partial catalog. The
R*Tree is filled in Morton (Z-order) order of the stars' unit vectors
(:func:`spatial_order`), which keeps its nodes compact.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import astuple
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tessphot.catalog import schema, sphere
from tessphot.catalog.schema import CatalogSettings, nan_to_none
from tessphot.paths import finish_file, temporary_file

log = logging.getLogger(__name__)

#: Rows per INSERT batch.
INSERT_ROWS = 50_000
#: Bits per axis of the Morton code that orders R*Tree inserts spatially.
MORTON_BITS = 10
#: SQLite page cache while building [KiB] (negative PRAGMA cache_size means KiB).
BUILD_CACHE_KIB = 262_144


def _spread_bits(v: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Insert two zero bits between the low 10 bits of each value (for 3-D Morton codes)."""
    v = v & np.uint64(0x3FF)
    v = (v | (v << np.uint64(16))) & np.uint64(0x030000FF)
    v = (v | (v << np.uint64(8))) & np.uint64(0x0300F00F)
    v = (v | (v << np.uint64(4))) & np.uint64(0x030C30C3)
    v = (v | (v << np.uint64(2))) & np.uint64(0x09249249)
    return v


def spatial_order(xyz: NDArray[np.float64]) -> NDArray[np.intp]:
    """Indices that sort unit vectors along a 3-D Morton (Z-order) curve."""
    scale = float((1 << MORTON_BITS) - 1)
    q = np.clip((xyz + 1.0) * 0.5 * scale, 0, scale).astype(np.uint64)
    code = (
        _spread_bits(q[:, 0])
        | (_spread_bits(q[:, 1]) << np.uint64(1))
        | (_spread_bits(q[:, 2]) << np.uint64(2))
    )
    return np.argsort(code, kind="stable")


class CatalogWriter:
    """Build one catalog file atomically.

    Use as a context manager: the file appears under its name when the block ends without
    an error (after :meth:`finish`); otherwise the temporary file is removed.

    Parameters
    ----------
    path : path-like
        Final file name.
    settings : CatalogSettings
        The ``settings`` row.
    metadata : mapping of str to str
        Extra ``tessphot_metadata`` entries.
    """

    def __init__(
        self, path: str | os.PathLike, settings: CatalogSettings, metadata: Mapping[str, str]
    ) -> None:
        self.path = Path(path)
        self.settings = settings
        self.metadata = dict(metadata)
        self.n_rows = 0
        self.n_duplicates = 0
        self.tmp_path = temporary_file(self.path)
        self._done = False
        try:
            self._con = sqlite3.connect(self.tmp_path, isolation_level=None)
            con = self._con
            con.execute(f"PRAGMA page_size = {schema.PAGE_SIZE}")
            con.execute("PRAGMA foreign_keys = TRUE")
            con.execute("PRAGMA journal_mode = OFF")  # a temporary file: no rollback needed
            con.execute("PRAGMA synchronous = OFF")
            con.execute(f"PRAGMA cache_size = -{BUILD_CACHE_KIB}")
            con.execute("BEGIN")
            for ddl in (schema.SETTINGS_DDL, schema.CATALOG_DDL, schema.METADATA_DDL):
                con.execute(ddl)
        except BaseException:
            self.abort()
            raise

    def add(
        self,
        starid: ArrayLike,
        ra: ArrayLike,
        decl: ArrayLike,
        ra_j2000: ArrayLike,
        decl_j2000: ArrayLike,
        pm_ra: ArrayLike,
        pm_decl: ArrayLike,
        tmag: ArrayLike,
        teff: ArrayLike,
    ) -> None:
        """Add stars (a star already present is kept as it was and counted as duplicate)."""
        starid = np.asarray(starid, dtype=np.int64)
        if starid.size == 0:
            return
        order = np.argsort(starid, kind="stable")
        columns = [
            starid[order].tolist(),
            np.asarray(ra, float)[order].tolist(),
            np.asarray(decl, float)[order].tolist(),
            np.asarray(ra_j2000, float)[order].tolist(),
            np.asarray(decl_j2000, float)[order].tolist(),
            nan_to_none(np.asarray(pm_ra, float)[order]),
            nan_to_none(np.asarray(pm_decl, float)[order]),
            np.asarray(tmag, float)[order].tolist(),
            nan_to_none(np.asarray(teff, float)[order]),
        ]
        before = self._con.total_changes
        placeholders = ", ".join("?" * len(columns))
        self._con.executemany(
            f"INSERT OR IGNORE INTO catalog VALUES ({placeholders})", zip(*columns, strict=True)
        )
        added = self._con.total_changes - before
        self.n_rows += added
        self.n_duplicates += starid.size - added

    def finish(self) -> Path:
        """Build the indexes, write settings and metadata, and move the file into place."""
        con = self._con
        if self.n_duplicates:
            log.warning(
                "%s: %d duplicate TIC IDs ignored (first row kept)",
                self.path.name,
                self.n_duplicates,
            )
        con.execute(
            f"INSERT INTO settings VALUES ({', '.join('?' * len(schema.SETTINGS_COLUMNS))})",
            astuple(self.settings),
        )
        self._build_rtree()
        con.execute(schema.RA_DEC_INDEX_DDL)
        meta = {
            "format": "tessphot catalog",
            "format_version": str(schema.FORMAT_VERSION),
            "n_stars": str(self.n_rows),
            **self.metadata,
        }
        con.executemany("INSERT INTO tessphot_metadata VALUES (?, ?)", sorted(meta.items()))
        con.execute("COMMIT")
        con.execute("ANALYZE")
        con.execute("VACUUM")
        con.close()
        finish_file(self.tmp_path, self.path)
        self._done = True
        return self.path

    def _build_rtree(self) -> None:
        """Fill the R*Tree from the catalog, in Morton order (compact nodes, better queries)."""
        con = self._con
        con.execute(schema.RTREE_DDL)
        starid = np.empty(self.n_rows, dtype=np.int64)
        ra = np.empty(self.n_rows)
        decl = np.empty(self.n_rows)
        cur = con.execute("SELECT starid, ra, decl FROM catalog")
        n = 0
        while rows := cur.fetchmany(INSERT_ROWS):
            chunk = np.array(rows, dtype=[("starid", np.int64), ("ra", float), ("decl", float)])
            starid[n : n + len(chunk)] = chunk["starid"]
            ra[n : n + len(chunk)] = chunk["ra"]
            decl[n : n + len(chunk)] = chunk["decl"]
            n += len(chunk)
        xyz = sphere.radec_to_xyz(ra[:n], decl[:n])
        order = spatial_order(xyz)
        for start in range(0, n, INSERT_ROWS):
            part = order[start : start + INSERT_ROWS]
            x, y, z = (xyz[part, k].tolist() for k in range(3))
            con.executemany(
                "INSERT INTO catalog_rtree VALUES (?, ?, ?, ?, ?, ?, ?)",
                zip(starid[part].tolist(), x, x, y, y, z, z, strict=True),
            )

    def abort(self) -> None:
        """Drop the temporary file."""
        con = getattr(self, "_con", None)
        if con is not None:
            try:
                con.close()
            except sqlite3.Error:  # pragma: no cover - closing a broken connection
                pass
        self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> CatalogWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or not self._done:
            self.abort()
