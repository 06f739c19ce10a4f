"""JPL Horizons vector tables of TESS, read and interpolated.

The tables (target -95, centre the solar-system barycentre, ``X, Y, Z`` in AU or km, CSV)
are those MAST and Horizons publish (``YYYYMMDD_tess_ephem.csv[.gz]``) and those
downloaded into the cache (:mod:`tessphot.timing.horizons`), and the compact copy shipped
with tessphot (:mod:`tessphot.timing.shipped`). :class:`TableEphemeris` interpolates them
with cubic splines, the newest table winning where tables overlap.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline

from tessphot.timing.source import AU_KM, TESS_NAIF_ID, Ephemeris, EphemerisError

#: Longest step between two table rows that is interpolated over [d] (the tables have
#: 30- or 60-min steps; a larger step is a gap between files).
MAX_TABLE_STEP_DAYS = 0.1
#: File names of ephemeris tables: MAST's and ours (downloads).
TABLE_PATTERNS = ("*_tess_ephem.csv", "*_tess_ephem.csv.gz", "horizons_tess_*.csv")


@dataclass(frozen=True)
class EphemerisTable:
    """One Horizons vector table: times [JD, TDB] and barycentric positions [km].

    A step longer than ``max_step_days`` between two rows is a gap (not interpolated over).
    """

    path: Path
    jd: np.ndarray
    position_km: np.ndarray
    max_step_days: float = MAX_TABLE_STEP_DAYS

    @property
    def start(self) -> float:
        """The first time [JD, TDB]."""
        return float(self.jd[0])

    @property
    def stop(self) -> float:
        """The last time [JD, TDB]."""
        return float(self.jd[-1])


def _open_text(path: Path):
    with open(path, "rb") as raw:
        magic = raw.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


@lru_cache(maxsize=32)
def read_horizons_table(path: str | os.PathLike) -> EphemerisTable:
    """Read a JPL Horizons vector table of TESS (CSV format, plain or gzipped).

    The data rows lie between the ``$$SOE`` and ``$$EOE`` markers; the column names come
    from the CSV header line (``JDTDB, Calendar Date, X, Y, Z, ...``). Results are cached
    per process.

    Raises
    ------
    EphemerisError
        For a missing or unreadable file, a table that is not of TESS relative to the
        solar-system barycentre, without X, Y, Z, or with units other than AU or km.
    """
    path = Path(path)
    try:
        header, columns, rows = _read_lines(path)
    except (OSError, EOFError, UnicodeError) as err:
        raise EphemerisError(f"{path}: cannot read the ephemeris table ({err})") from None
    scale = _check_header(path, header)
    data = _table_data(path, columns, rows)
    order = np.argsort(data[:, 0], kind="stable")
    data = data[order]
    return EphemerisTable(path, data[:, 0], data[:, 1:] * scale)


def _read_lines(path: Path) -> tuple[list[str], list[str] | None, list[list[str]]]:
    """The header lines, the column names (None if absent) and the data rows of a table."""
    header: list[str] = []
    columns: list[str] | None = None
    rows: list[list[str]] = []
    inside = False
    with _open_text(path) as f:
        for raw_line in f:
            line = raw_line.strip()
            bare = line.lstrip("#").strip()
            if bare.startswith("$$SOE"):
                inside = True
                continue
            if bare.startswith("$$EOE"):
                break
            if not inside:
                header.append(bare)
                if bare.upper().startswith("JDTDB"):
                    columns = [c.strip().upper() for c in bare.split(",")]
                continue
            if not line or line.startswith("#"):
                continue
            parts = [p.strip() for p in line.split(",")]
            if parts[0].upper().startswith("JDTDB"):
                columns = [c.upper() for c in parts]
                continue
            rows.append(parts)
    return header, columns, rows


def _check_header(path: Path, header: list[str]) -> float:
    """Check that the table is of TESS relative to the barycentre; its unit [km]."""
    text = "\n".join(header)
    if "Solar System Barycenter" not in text and "(0)" not in text:
        raise EphemerisError(f"{path}: not a table relative to the solar-system barycentre")
    if "TESS" not in text and str(TESS_NAIF_ID) not in text:
        raise EphemerisError(f"{path}: not an ephemeris of TESS (-95)")
    scale = AU_KM
    for line in header:
        if line.startswith("Output units"):
            units = line.split(":", 1)[1].strip().upper()
            if units.startswith("KM"):
                scale = 1.0
            elif not units.startswith("AU"):
                raise EphemerisError(f"{path}: unsupported output units {units!r}")
    return scale


def _table_data(path: Path, columns: list[str] | None, rows: list[list[str]]) -> np.ndarray:
    """The JDTDB, X, Y, Z columns of the rows, shape (N, 4)."""
    if columns is None:
        columns = ["JDTDB", "DATE", "X", "Y", "Z"]
    try:
        ix = [columns.index(name) for name in ("JDTDB", "X", "Y", "Z")]
    except ValueError:
        raise EphemerisError(f"{path}: no JDTDB, X, Y, Z columns in {columns}") from None
    try:
        data = np.array([[float(r[i]) for i in ix] for r in rows], dtype=np.float64)
    except (ValueError, IndexError) as err:
        raise EphemerisError(f"{path}: malformed table row ({err})") from None
    if data.shape[0] < 4:
        raise EphemerisError(f"{path}: fewer than 4 rows between $$SOE and $$EOE")
    return data


class TableEphemeris(Ephemeris):
    """TESS's position from Horizons tables, interpolated with cubic splines.

    Each table is interpolated on its own (a spline never joins two tables: overlapping
    tables disagree by up to ~2000 km where an old table's prediction meets a newer one). At
    every time the last table in the list that covers it is used: give them oldest first
    (:func:`find_tables` sorts MAST's ``YYYYMMDD_tess_ephem`` tables by date, and downloads
    ``horizons_tess_*`` after them). A step longer than the table's ``max_step_days``
    between rows splits a table (times in such a gap are covered only by another table).

    Parameters
    ----------
    tables : sequence of EphemerisTable
        In increasing priority (the later wins where they overlap).

    Attributes
    ----------
    tables : tuple of EphemerisTable
        The tables, in increasing priority.
    pieces : list of (float, float, CubicSpline)
        First and last time [JD, TDB] and spline of each gap-free part of each table, in
        increasing priority.
    coverage : list of (float, float)
        The covered intervals [JD, TDB] (the union of the pieces), sorted.
    """

    def __init__(self, tables: Sequence[EphemerisTable]) -> None:
        if not tables:
            raise EphemerisError("no ephemeris table given")
        self.pieces: list[tuple[float, float, CubicSpline]] = []
        for table in tables:
            self.pieces.extend(_pieces(table))
        if not self.pieces:
            raise EphemerisError("the ephemeris tables have fewer than 4 consecutive rows")
        self.coverage = _union([(lo, hi) for lo, hi, _ in self.pieces])
        self.start = self.coverage[0][0]
        self.stop = self.coverage[-1][1]
        self.tables = tuple(tables)
        self.paths = [t.path for t in tables]
        self.name = "tables " + ", ".join(dict.fromkeys(p.name for p in self.paths))

    def covers(self, jd_min: float, jd_max: float) -> bool:
        """Whether every time in ``[jd_min, jd_max]`` [JD, TDB] is covered."""
        return any(lo <= jd_min and jd_max <= hi for lo, hi in self.coverage)

    def position_km(self, jd_tdb: np.ndarray) -> np.ndarray:
        """As :meth:`Ephemeris.position_km`, from the last piece covering each time.

        Raises
        ------
        EphemerisError
            For a finite time no table covers.
        """
        jd = np.atleast_1d(np.asarray(jd_tdb, dtype=np.float64))
        out = np.full((jd.size, 3), np.nan)
        done = ~np.isfinite(jd)
        for lo, hi, spline in reversed(self.pieces):
            sel = ~done & (jd >= lo) & (jd <= hi)
            if sel.any():
                out[sel] = spline(jd[sel])
                done |= sel
        if not done.all():
            bad = jd[~done]
            raise EphemerisError(
                f"{self.name}: no coverage for {bad.size} time(s), e.g. JD {bad[0]:.5f} "
                f"(covered: {self._coverage_text()})"
            )
        return out

    def _coverage_text(self) -> str:
        return ", ".join(f"JD {lo:.2f}-{hi:.2f}" for lo, hi in self.coverage)


def _pieces(table: EphemerisTable) -> list[tuple[float, float, CubicSpline]]:
    """The gap-free parts of a table of at least 4 rows: first, last time and spline."""
    jd, first = np.unique(table.jd, return_index=True)
    pos = table.position_km[first]
    breaks = np.flatnonzero(np.diff(jd) > table.max_step_days) + 1
    return [
        (float(jd[a]), float(jd[b - 1]), CubicSpline(jd[a:b], pos[a:b], axis=0))
        for a, b in zip(np.r_[0, breaks], np.r_[breaks, jd.size], strict=True)
        if b - a >= 4
    ]


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping or touching intervals joined, sorted."""
    joined: list[tuple[float, float]] = []
    for lo, hi in sorted(intervals):
        if joined and lo <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(joined[-1][1], hi))
        else:
            joined.append((lo, hi))
    return joined


def find_tables(locations: Iterable[str | os.PathLike]) -> list[Path]:
    """Ephemeris table files in folders (not recursive) or given directly, sorted by name."""
    found: dict[str, Path] = {}
    for location in locations:
        path = Path(location)
        if path.is_file():
            found.setdefault(str(path.resolve()), path)
        elif path.is_dir():
            for pattern in TABLE_PATTERNS:
                for p in path.glob(pattern):
                    found.setdefault(str(p.resolve()), p)
    return sorted(found.values(), key=lambda p: (p.name, str(p)))
