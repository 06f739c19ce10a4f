"""Where TESS is: its barycentric position versus time.

Three sources, all giving the position of the observer relative to the solar-system
barycentre in the ICRF [km] at barycentric dynamical times (TDB, as Julian dates):

:class:`TableEphemeris`
    JPL Horizons vector tables of TESS (target -95, centre the solar-system barycentre,
    ``X, Y, Z`` in AU or km, CSV), as MAST and Horizons publish them
    (``YYYYMMDD_tess_ephem.csv[.gz]``), interpolated with a cubic spline. Tables sampled
    every 30-60 min reproduce TESS's 13.7-d orbit to better than a metre.
:class:`SpiceEphemeris`
    SPICE kernels (optional: needs ``spiceypy``), for users who have TESS's SPK kernels
    (and a planetary ephemeris when they are relative to the Earth).
:class:`GeocentreEphemeris`
    The Earth's centre (astropy's built-in ephemeris): the observer of simulated data,
    whose ``BARYCORR`` is computed for the geocentre.

:func:`spacecraft_ephemeris` picks the first source that covers the requested times:
SPICE kernels when configured, then tables in the configured folders and the cache, then
(when allowed) a table downloaded from JPL Horizons into the cache
(:func:`download_horizons`). :class:`TimingSettings` says where to look.
"""

from __future__ import annotations

import gzip
import logging
import os
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline

from tessphot import env
from tessphot.config.timing import TimingSettings
from tessphot.io.errors import TessphotError
from tessphot.paths import atomic_path

log = logging.getLogger(__name__)

#: Astronomical unit [km] (IAU 2012).
AU_KM = 149_597_870.7
#: Seconds per day.
SECONDS_PER_DAY = 86400.0
#: Julian date of J2000.0 (TDB), the origin of SPICE ephemeris time [d].
J2000_JD = 2451545.0
#: NAIF ID of TESS.
TESS_NAIF_ID = -95
#: Horizons' code of the solar-system barycentre as centre.
HORIZONS_CENTRE = "500@0"
#: Sampling of downloaded tables (Horizons' step).
HORIZONS_STEP = "30 m"
#: Horizons API endpoint (the documented public interface of JPL's Horizons system).
HORIZONS_URL = "https://ssd.jpl.nasa.gov/api/horizons.api"
#: Seconds to wait for Horizons.
HORIZONS_TIMEOUT = 120.0
#: Margin added on both sides of a downloaded table [d].
DOWNLOAD_MARGIN_DAYS = 2.0
#: Longest step between two table rows that is interpolated over [d] (the tables have
#: 30- or 60-min steps; a larger step is a gap between files).
MAX_TABLE_STEP_DAYS = 0.1
#: File names of ephemeris tables: MAST's and ours (downloads).
TABLE_PATTERNS = ("*_tess_ephem.csv", "*_tess_ephem.csv.gz", "horizons_tess_*.csv")
#: Environment variables: folders of ephemeris tables (``os.pathsep``-separated), the folder
#: of SPICE kernels (the original pipeline's variable), the download cache.
EPHEMERIS_ENV = env.EPHEMERIS
SPICE_ENV = env.SPICE_KERNELS
CACHE_ENV = env.EPHEMERIS_CACHE


class EphemerisError(TessphotError):
    """No usable position of TESS (the message says why and what to do)."""


# --------------------------------------------------------------------------------------------
# Sources


class Ephemeris:
    """Barycentric position of an observer (base class).

    Attributes
    ----------
    name : str
        What the positions come from (written into the light-curve headers).
    start, stop : float
        Covered interval [JD, TDB].
    """

    name = "ephemeris"
    start = -np.inf
    stop = np.inf

    def covers(self, jd_min: float, jd_max: float) -> bool:
        """Whether every time in ``[jd_min, jd_max]`` [JD, TDB] is covered."""
        return bool(self.start <= jd_min and jd_max <= self.stop)

    def position_km(self, jd_tdb: np.ndarray) -> np.ndarray:
        """Barycentric ICRF position [km] at times ``jd_tdb`` [JD, TDB], shape (N, 3).

        Raises
        ------
        EphemerisError
            For a finite time outside the coverage. Non-finite times give NaN.
        """
        jd = np.atleast_1d(np.asarray(jd_tdb, dtype=np.float64))
        out = np.full((jd.size, 3), np.nan)
        ok = np.isfinite(jd)
        if ok.any():
            lo, hi = float(jd[ok].min()), float(jd[ok].max())
            if not self.covers(lo, hi):
                raise EphemerisError(
                    f"{self.name}: covers JD {self.start:.3f}-{self.stop:.3f}, not the "
                    f"requested JD {lo:.3f}-{hi:.3f}"
                )
            out[ok] = self._position(jd[ok])
        return out

    def _position(self, jd: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class EphemerisTable:
    """One Horizons vector table: times [JD, TDB] and barycentric positions [km]."""

    path: Path
    jd: np.ndarray
    position_km: np.ndarray

    @property
    def start(self) -> float:
        return float(self.jd[0])

    @property
    def stop(self) -> float:
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
    header: list[str] = []
    columns: list[str] | None = None
    rows: list[list[float]] = []
    inside = False
    try:
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
    except (OSError, EOFError, UnicodeError) as err:
        raise EphemerisError(f"{path}: cannot read the ephemeris table ({err})") from None
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
    order = np.argsort(data[:, 0], kind="stable")
    data = data[order]
    return EphemerisTable(path, data[:, 0], data[:, 1:] * scale)


class TableEphemeris(Ephemeris):
    """TESS's position from Horizons tables, interpolated with cubic splines.

    Overlapping tables are merged (rows at the same time kept once); a step longer than
    :data:`MAX_TABLE_STEP_DAYS` between rows splits the coverage (times in such a gap are
    not covered).

    Parameters
    ----------
    tables : sequence of EphemerisTable
    """

    def __init__(self, tables: Sequence[EphemerisTable]) -> None:
        if not tables:
            raise EphemerisError("no ephemeris table given")
        jd = np.concatenate([t.jd for t in tables])
        pos = np.concatenate([t.position_km for t in tables])
        jd, first = np.unique(jd, return_index=True)
        pos = pos[first]
        breaks = np.flatnonzero(np.diff(jd) > MAX_TABLE_STEP_DAYS) + 1
        self.segments: list[tuple[float, float, CubicSpline]] = []
        for a, b in zip(np.r_[0, breaks], np.r_[breaks, jd.size], strict=True):
            if b - a >= 4:
                self.segments.append((jd[a], jd[b - 1], CubicSpline(jd[a:b], pos[a:b], axis=0)))
        if not self.segments:
            raise EphemerisError("the ephemeris tables have fewer than 4 consecutive rows")
        self.start = float(self.segments[0][0])
        self.stop = float(self.segments[-1][1])
        self.paths = [t.path for t in tables]
        self.name = "tables " + ", ".join(p.name for p in self.paths)

    def covers(self, jd_min: float, jd_max: float) -> bool:
        return any(lo <= jd_min and jd_max <= hi for lo, hi, _ in self.segments)

    def covers_all(self, jd: np.ndarray) -> bool:
        """Whether every finite time of ``jd`` lies in a segment (gaps allowed between)."""
        jd = np.asarray(jd, dtype=float)
        jd = jd[np.isfinite(jd)]
        inside = np.zeros(jd.size, dtype=bool)
        for lo, hi, _ in self.segments:
            inside |= (jd >= lo) & (jd <= hi)
        return bool(inside.all())

    def position_km(self, jd_tdb: np.ndarray) -> np.ndarray:
        jd = np.atleast_1d(np.asarray(jd_tdb, dtype=np.float64))
        out = np.full((jd.size, 3), np.nan)
        done = ~np.isfinite(jd)
        for lo, hi, spline in self.segments:
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
        return ", ".join(f"JD {lo:.2f}-{hi:.2f}" for lo, hi, _ in self.segments)


class SpiceEphemeris(Ephemeris):
    """TESS's position from SPICE kernels (needs ``spiceypy``).

    Every kernel file in the folder (``*.bsp``, ``*.tls``, ``*.tpc``, ``*.tf``, ``*.tsc``)
    is loaded; the coverage is that of TESS (-95) in the SPK files. SPICE's ``J2000``
    frame is the ICRF here (their difference, < 0.03 arcsec, is far below what timing
    needs).

    Parameters
    ----------
    folder : path-like
        The kernel folder.

    Raises
    ------
    EphemerisError
        When spiceypy is not installed or no SPK kernel covers TESS.
    """

    KERNEL_SUFFIXES = (".bsp", ".tls", ".tpc", ".tf", ".tsc", ".bc")

    def __init__(self, folder: str | os.PathLike) -> None:
        try:
            import spiceypy
        except ImportError:
            raise EphemerisError(
                "SPICE kernels are configured but spiceypy is not installed "
                "(pip install 'tessphot[spice]')"
            ) from None
        self._spice = spiceypy
        folder = Path(folder)
        files = sorted(
            p for p in folder.glob("*") if p.is_file() and p.suffix.lower() in self.KERNEL_SUFFIXES
        )
        spk = [p for p in files if p.suffix.lower() == ".bsp"]
        if not spk:
            raise EphemerisError(f"{folder}: no SPK kernel (*.bsp) in the SPICE kernel folder")
        for path in files:
            _furnish(str(path))
        windows = []
        for path in spk:
            cover = spiceypy.cell_double(20000)
            try:
                spiceypy.spkcov(str(path), TESS_NAIF_ID, cover)
            except spiceypy.utils.exceptions.SpiceyError as err:
                raise EphemerisError(f"{path}: unreadable SPK kernel ({err})") from None
            for i in range(spiceypy.wncard(cover)):
                windows.append(spiceypy.wnfetd(cover, i))
        if not windows:
            raise EphemerisError(f"{folder}: no SPK kernel covers TESS ({TESS_NAIF_ID})")
        self.windows = sorted(windows)
        self.start = min(w[0] for w in windows) / SECONDS_PER_DAY + J2000_JD
        self.stop = max(w[1] for w in windows) / SECONDS_PER_DAY + J2000_JD
        self.name = f"SPICE kernels in {folder}"

    def covers(self, jd_min: float, jd_max: float) -> bool:
        et0 = (jd_min - J2000_JD) * SECONDS_PER_DAY
        et1 = (jd_max - J2000_JD) * SECONDS_PER_DAY
        return any(lo <= et0 and et1 <= hi for lo, hi in self.windows)

    def _position(self, jd: np.ndarray) -> np.ndarray:
        et = (jd - J2000_JD) * SECONDS_PER_DAY
        try:
            pos, _ = self._spice.spkpos(str(TESS_NAIF_ID), et, "J2000", "NONE", "0")
        except self._spice.utils.exceptions.SpiceyError as err:
            raise EphemerisError(f"{self.name}: {err}") from None
        return np.asarray(pos, dtype=np.float64).reshape(-1, 3)


@cache
def _furnish(path: str) -> None:
    """Load a kernel into SPICE once per process (SPICE's kernel pool is global)."""
    import spiceypy

    spiceypy.furnsh(path)


class GeocentreEphemeris(Ephemeris):
    """The Earth's centre (astropy's built-in ephemeris): the observer of simulated data."""

    name = "geocentre (simulated data)"

    def _position(self, jd: np.ndarray) -> np.ndarray:
        from astropy.coordinates import get_body_barycentric
        from astropy.time import Time

        xyz = get_body_barycentric("earth", Time(jd, format="jd", scale="tdb"))
        return np.asarray(xyz.get_xyz().to_value("km")).T


# --------------------------------------------------------------------------------------------
# Finding and downloading


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


def _table_ephemeris(paths: Sequence[Path], jd_min: float, jd_max: float) -> TableEphemeris | None:
    """The tables overlapping the interval, merged; None when none does."""
    tables = []
    for path in paths:
        try:
            table = read_horizons_table(str(path))
        except EphemerisError as err:
            log.warning("Ephemeris table left out: %s", err)
            continue
        if table.stop >= jd_min and table.start <= jd_max:
            tables.append(table)
    return TableEphemeris(tables) if tables else None


def spacecraft_ephemeris(
    jd_min: float, jd_max: float, settings: TimingSettings | None = None
) -> Ephemeris:
    """An ephemeris of TESS covering ``[jd_min, jd_max]`` [JD, TDB].

    Tried in order: the SPICE kernels (when configured), the tables in the configured
    folders and the cache, a table downloaded from JPL Horizons into the cache (when
    ``settings.download``).

    Raises
    ------
    EphemerisError
        When no source covers the interval (the message says how to provide one).
    """
    settings = settings or TimingSettings()
    problems = []
    kernels = settings.kernels()
    if kernels is not None:
        try:
            spice = _spice_ephemeris(str(kernels))
            if spice.covers(jd_min, jd_max):
                return spice
            problems.append(f"{spice.name} cover JD {spice.start:.2f}-{spice.stop:.2f}")
        except EphemerisError as err:
            problems.append(str(err))
    dirs = settings.table_dirs()
    tables = _table_ephemeris(find_tables(dirs), jd_min, jd_max)
    if tables is not None and tables.covers(jd_min, jd_max):
        return tables
    problems.append(
        "no ephemeris table covering the interval in " + ", ".join(str(d) for d in dirs)
    )
    if settings.download:
        try:
            path = download_horizons(jd_min, jd_max, settings.cache())
            return TableEphemeris([read_horizons_table(str(path))])
        except EphemerisError as err:
            problems.append(str(err))
    raise EphemerisError(
        f"no position of TESS for JD {jd_min:.3f}-{jd_max:.3f}: "
        + "; ".join(problems)
        + f". Put TESS ephemeris tables (*_tess_ephem.csv[.gz]) in a folder named by "
        f"${EPHEMERIS_ENV} or [timing] ephemeris_dirs, set ${SPICE_ENV} to a folder of "
        "SPICE kernels, or allow the download from JPL Horizons ([timing] download = true; "
        "'tessphot ephemeris SECTOR' downloads ahead of a run)"
    )


@lru_cache(maxsize=4)
def _spice_ephemeris(folder: str) -> SpiceEphemeris:
    return SpiceEphemeris(folder)


def horizons_query(start_jd: float, stop_jd: float, step: str = HORIZONS_STEP) -> str:
    """The Horizons API URL of TESS's barycentric vector table between two dates (TDB)."""
    params = {
        "format": "text",
        "COMMAND": f"'{TESS_NAIF_ID}'",
        "OBJ_DATA": "'NO'",
        "MAKE_EPHEM": "'YES'",
        "EPHEM_TYPE": "'VECTORS'",
        "CENTER": f"'{HORIZONS_CENTRE}'",
        "START_TIME": f"'JD{start_jd:.6f}'",
        "STOP_TIME": f"'JD{stop_jd:.6f}'",
        "STEP_SIZE": f"'{step}'",
        "VEC_TABLE": "'1'",
        "REF_SYSTEM": "'ICRF'",
        "REF_PLANE": "'FRAME'",
        "OUT_UNITS": "'AU-D'",
        "TIME_TYPE": "'TDB'",
        "CSV_FORMAT": "'YES'",
        "VEC_LABELS": "'NO'",
    }
    return f"{HORIZONS_URL}?{urllib.parse.urlencode(params)}"


def download_horizons(
    jd_min: float,
    jd_max: float,
    cache_dir: str | os.PathLike,
    *,
    timeout: float = HORIZONS_TIMEOUT,
) -> Path:
    """Download TESS's barycentric position table from JPL Horizons into a cache folder.

    The table spans the interval plus :data:`DOWNLOAD_MARGIN_DAYS` on both sides (whole
    days), sampled every 30 min, and is written atomically as
    ``horizons_tess_<start>_<stop>.csv`` (JD), where :func:`spacecraft_ephemeris` finds it
    next time. A table already in the cache is reused.

    Raises
    ------
    EphemerisError
        When the download fails or the answer is not a usable table.
    """
    start = float(np.floor(jd_min - DOWNLOAD_MARGIN_DAYS)) + 0.5
    stop = float(np.ceil(jd_max + DOWNLOAD_MARGIN_DAYS)) + 0.5
    cache = Path(cache_dir)
    target = cache / f"horizons_tess_{start:.1f}_{stop:.1f}.csv"
    if target.is_file():
        return target
    url = horizons_query(start, stop)
    log.info("Downloading TESS's ephemeris JD %.1f-%.1f from JPL Horizons", start, stop)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (https)
            content = response.read()
    except OSError as err:
        raise EphemerisError(f"download from JPL Horizons failed ({err})") from None
    try:
        with atomic_path(target, suffix="") as tmp:
            tmp.write_bytes(content)
            table = read_horizons_table(tmp)
            if table.start > jd_min or table.stop < jd_max:
                raise EphemerisError(
                    f"JPL Horizons returned JD {table.start:.2f}-{table.stop:.2f}, not the "
                    f"requested {jd_min:.2f}-{jd_max:.2f}"
                )
    finally:
        read_horizons_table.cache_clear()
    log.info("Wrote %s", target)
    return target


@dataclass
class CoverageReport:
    """What :func:`describe_sources` found (for messages and the CLI)."""

    tables: list[tuple[Path, float, float]] = field(default_factory=list)
    spice: str | None = None


def describe_sources(settings: TimingSettings | None = None) -> CoverageReport:
    """The tables (path, first and last JD) and SPICE kernels the settings point at."""
    settings = settings or TimingSettings()
    report = CoverageReport()
    for path in find_tables(settings.table_dirs()):
        try:
            table = read_horizons_table(str(path))
        except EphemerisError:
            continue
        report.tables.append((path, table.start, table.stop))
    kernels = settings.kernels()
    if kernels is not None:
        try:
            spice = _spice_ephemeris(str(kernels))
            report.spice = f"{spice.name}: JD {spice.start:.2f}-{spice.stop:.2f}"
        except EphemerisError as err:
            report.spice = str(err)
    return report
