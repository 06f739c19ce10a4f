"""Reading the catalog SQLite files.

:class:`CatalogDB` reads one (:class:`tessphot.catalog.writer.CatalogWriter` writes them);
its :meth:`CatalogDB.stars_in_box` finds the stars of a pixel stamp (the query later stages
make for every target) through the R*Tree in well under a millisecond.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tessphot.catalog import schema, sphere
from tessphot.catalog.errors import CatalogError
from tessphot.catalog.schema import CatalogSettings
from tessphot.geometry import sector_geometry

#: Memory map of a catalog opened for reading [bytes].
READ_MMAP_BYTES = 1 << 30
#: Spacing of the sky points sampled along the edges of a pixel box [px] (the great-circle
#: chords between them stay within 0.003 px of the distorted edge).
BOX_EDGE_STEP_PX = 32.0
#: Columns returned by the queries and the dtype of their results (NULL -> NaN).
STAR_DTYPE = np.dtype(
    [
        ("starid", np.int64),
        ("ra", np.float64),
        ("decl", np.float64),
        ("ra_J2000", np.float64),
        ("decl_J2000", np.float64),
        ("pm_ra", np.float64),
        ("pm_decl", np.float64),
        ("tmag", np.float64),
        ("teff", np.float64),
    ]
)
_SELECT = ", ".join(f"c.{name}" for name in schema.CATALOG_COLUMNS)


class CatalogDB:
    """A catalog file opened for reading.

    Parameters
    ----------
    path : path-like
        The ``catalog_sector*_camera*_ccd*.sqlite`` file.

    Raises
    ------
    CatalogError
        When the file does not exist or is not a catalog.

    Examples
    --------
    >>> with CatalogDB("catalog_sector001_camera1_ccd4.sqlite") as cat:  # doctest: +SKIP
    ...     stars = cat.stars_in_box(1000, 1020, 500, 520, tmag_max=15)
    ...     stars["starid"], stars["tmag"]
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise CatalogError(f"{self.path}: catalog file not found")
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        try:
            self._con = sqlite3.connect(uri, uri=True)
            self._con.execute(f"PRAGMA mmap_size = {READ_MMAP_BYTES}")
            self._con.execute("PRAGMA query_only = TRUE")
            tables = {
                row[0]
                for row in self._con.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
                )
            }
            if not {"settings", "catalog"} <= tables:
                raise CatalogError(f"{self.path}: not a catalog (no settings/catalog tables)")
            cur = self._con.execute(
                f"SELECT {', '.join(schema.SETTINGS_COLUMNS)} FROM settings LIMIT 1"
            )
            row = cur.fetchone()
            if row is None:
                raise CatalogError(f"{self.path}: empty settings table")
            self.settings = CatalogSettings(*row)
            self.has_rtree = "catalog_rtree" in tables
            self.metadata: dict[str, str] = (
                dict(self._con.execute("SELECT key, value FROM tessphot_metadata"))
                if "tessphot_metadata" in tables
                else {}
            )
        except sqlite3.DatabaseError as err:
            self.close()
            raise CatalogError(f"{self.path}: cannot read catalog: {err}") from None
        except BaseException:
            self.close()
            raise
        self._wcs = None

    # -- housekeeping ----------------------------------------------------------------------
    def close(self) -> None:
        """Close the file."""
        con = getattr(self, "_con", None)
        if con is not None:
            con.close()
            self._con = None

    def __enter__(self) -> CatalogDB:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return int(self._con.execute("SELECT COUNT(*) FROM catalog").fetchone()[0])

    @property
    def wcs(self):
        """Default WCS for pixel queries: the sector/camera/CCD's science-area WCS (tesswcs)."""
        if self._wcs is None:
            s = self.settings
            self._wcs = sector_geometry(s.sector, s.camera, s.ccd).science_wcs
        return self._wcs

    # -- queries -------------------------------------------------------------------------
    def _rows(self, sql: str, args: tuple) -> NDArray:
        rows = self._con.execute(sql, args).fetchall()
        return np.array(rows, dtype=STAR_DTYPE) if rows else np.empty(0, dtype=STAR_DTYPE)

    def stars(self, tmag_max: float | None = None) -> NDArray:
        """All stars (optionally only those with ``tmag <= tmag_max``), by TIC ID."""
        where, args = ("WHERE c.tmag <= ?", (tmag_max,)) if tmag_max is not None else ("", ())
        return self._rows(f"SELECT {_SELECT} FROM catalog AS c {where} ORDER BY c.starid", args)

    def star(self, starid: int) -> NDArray | None:
        """One star by TIC ID (a record of :data:`STAR_DTYPE`), or None."""
        rows = self._rows(f"SELECT {_SELECT} FROM catalog AS c WHERE c.starid = ?", (starid,))
        return rows[0] if rows.size else None

    def _candidates(
        self, lo: NDArray, hi: NDArray, centre: NDArray, radius: float, tmag_max: float | None
    ) -> NDArray:
        """Stars whose unit vector may lie in the box [lo, hi] (cap ``centre``, ``radius``)."""
        mag = " AND c.tmag <= ?" if tmag_max is not None else ""
        extra = (tmag_max,) if tmag_max is not None else ()
        if self.has_rtree:
            sql = (
                f"SELECT {_SELECT} FROM catalog_rtree AS r JOIN catalog AS c "
                "ON c.starid = r.starid WHERE r.xmax >= ? AND r.xmin <= ? AND r.ymax >= ? "
                f"AND r.ymin <= ? AND r.zmax >= ? AND r.zmin <= ?{mag}"
            )
            args = (lo[0], hi[0], lo[1], hi[1], lo[2], hi[2], *extra)
            return self._rows(sql, args)
        # A catalog without the R*Tree (e.g. made by the original pipeline): the (ra, decl)
        # index with a box around the cap, minding the poles and the RA wrap.
        ra_c, dec_c = (float(v) for v in sphere.xyz_to_radec(centre))
        r_deg = float(np.degrees(radius))
        dec_lo, dec_hi = dec_c - r_deg, dec_c + r_deg
        base = f"SELECT {_SELECT} FROM catalog AS c WHERE c.decl BETWEEN ? AND ?{mag}"
        if dec_hi >= 90.0 or dec_lo <= -90.0:  # the cap holds a pole: all RA
            return self._rows(base, (max(dec_lo, -90.0), min(dec_hi, 90.0), *extra))
        # RA half-width of the cap (r < 90 - |dec| here, so the ratio is below 1).
        half = float(np.degrees(np.arcsin(np.sin(radius) / np.cos(np.radians(dec_c)))))
        ra_lo, ra_hi = ra_c - half, ra_c + half
        if ra_lo < 0.0 or ra_hi >= 360.0:  # across RA 0
            sql = base + " AND (c.ra >= ? OR c.ra <= ?)"
            return self._rows(sql, (dec_lo, dec_hi, *extra, ra_lo % 360.0, ra_hi % 360.0))
        sql = base + " AND c.ra BETWEEN ? AND ?"
        return self._rows(sql, (dec_lo, dec_hi, *extra, ra_lo, ra_hi))

    def stars_in_polygon(
        self, ra: ArrayLike, dec: ArrayLike, *, tmag_max: float | None = None
    ) -> NDArray:
        """Stars inside a sky polygon (vertices [deg] joined by great circles).

        Parameters
        ----------
        ra, dec : array_like
            Vertices in order [deg]; the polygon must be smaller than a hemisphere.
        tmag_max : float, optional
            Only stars with ``tmag <= tmag_max``.

        Returns
        -------
        ndarray of :data:`STAR_DTYPE`
            Positions ``ra``/``decl`` at the sector epoch, sorted by Tmag.
        """
        vertices = sphere.radec_to_xyz(ra, dec)
        if vertices.ndim != 2 or len(vertices) < 3:
            raise ValueError("a polygon needs at least three vertices")
        return self._in_polygon(vertices, tmag_max)

    def _in_polygon(self, vertices: NDArray, tmag_max: float | None) -> NDArray:
        centre = sphere.polygon_centre(vertices)
        radius = float(np.arccos(np.clip(np.min(vertices @ centre), -1.0, 1.0)))
        lo, hi = sphere.polygon_bbox(vertices, centre)
        stars = self._candidates(lo, hi, centre, radius, tmag_max)
        if stars.size:
            xyz = sphere.radec_to_xyz(stars["ra"], stars["decl"])
            normals = sphere.convex_polygon_normals(vertices)
            if normals is not None:
                inside = np.all(xyz @ normals.T >= 0.0, axis=1)
            else:
                inside = sphere.polygon_contains(xyz, vertices, centre)
            stars = stars[inside]
        return _by_magnitude(stars)

    def stars_in_cone(
        self, ra: float, dec: float, radius_deg: float, *, tmag_max: float | None = None
    ) -> NDArray:
        """Stars within ``radius_deg`` of (``ra``, ``dec``) [deg], sorted by Tmag."""
        centre = sphere.radec_to_xyz(ra, dec)
        radius = float(np.radians(radius_deg))
        lo, hi = sphere.cap_bbox(centre, radius)
        stars = self._candidates(lo, hi, centre, radius, tmag_max)
        if stars.size:
            xyz = sphere.radec_to_xyz(stars["ra"], stars["decl"])
            stars = stars[xyz @ centre >= np.cos(radius)]
        return _by_magnitude(stars)

    def stars_in_box(
        self,
        row0: float,
        row1: float,
        col0: float,
        col1: float,
        *,
        wcs=None,
        margin: float = 0.0,
        tmag_max: float | None = None,
    ) -> NDArray:
        """Stars on a pixel stamp: rows ``row0:row1``, columns ``col0:col1``.

        The bounds are half-open, 0-based science-area pixel indices, as a numpy slice of
        the image.
        A star belongs to the stamp when its position at the sector epoch falls on one of
        its pixels: ``row0 - 0.5 <= row < row1 - 0.5`` (pixel centres are integers) and the
        same for columns, grown by ``margin`` pixels on every side.

        Parameters
        ----------
        row0, row1, col0, col1 : float
            The stamp.
        wcs : astropy.wcs.WCS, optional
            Science-area WCS (pixel x = column, y = row). Default: :attr:`wcs`, the
            sector/camera/CCD's WCS from tesswcs; stages that have the FFIs' WCS pass it.
        margin : float
            Grow the stamp by this many pixels [px].
        tmag_max : float, optional
            Only stars with ``tmag <= tmag_max``.

        Returns
        -------
        ndarray of :data:`STAR_DTYPE`
            Sorted by Tmag.
        """
        wcs = self.wcs if wcs is None else wcs
        r_lo, r_hi = row0 - 0.5 - margin, row1 - 0.5 + margin
        c_lo, c_hi = col0 - 0.5 - margin, col1 - 0.5 + margin
        if not (r_hi > r_lo and c_hi > c_lo):
            return np.empty(0, dtype=STAR_DTYPE)
        cols, rows = _box_outline(r_lo, r_hi, c_lo, c_hi)
        ra, dec = wcs.all_pix2world(cols, rows, 0)
        return self._in_polygon(sphere.radec_to_xyz(ra, dec), tmag_max)


def _by_magnitude(stars: NDArray) -> NDArray:
    """Stars sorted by Tmag (then TIC ID)."""
    return stars[np.lexsort((stars["starid"], stars["tmag"]))] if stars.size > 1 else stars


def _box_outline(r_lo: float, r_hi: float, c_lo: float, c_hi: float) -> tuple[NDArray, NDArray]:
    """Columns and rows around a pixel box, counter-clockwise, at most BOX_EDGE_STEP_PX apart."""
    n_r = max(1, int(np.ceil((r_hi - r_lo) / BOX_EDGE_STEP_PX)))
    n_c = max(1, int(np.ceil((c_hi - c_lo) / BOX_EDGE_STEP_PX)))
    fr = np.arange(n_r) / n_r
    fc = np.arange(n_c) / n_c
    cols = np.concatenate(
        [
            c_lo + (c_hi - c_lo) * fc,
            np.full(n_r, c_hi),
            c_hi - (c_hi - c_lo) * fc,
            np.full(n_r, c_lo),
        ]
    )
    rows = np.concatenate(
        [
            np.full(n_c, r_lo),
            r_lo + (r_hi - r_lo) * fr,
            np.full(n_c, r_hi),
            r_hi - (r_hi - r_lo) * fr,
        ]
    )
    return cols, rows


__all__ = ["STAR_DTYPE", "CatalogDB"]
