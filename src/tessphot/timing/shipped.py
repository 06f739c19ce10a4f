"""The TESS ephemeris shipped with tessphot: the mission's Horizons tables, compacted.

Per-star times need TESS's position (:mod:`tessphot.timing.ephemeris`); so that they work
offline, tessphot carries the JPL Horizons tables of the mission so far (MAST's
``YYYYMMDD_tess_ephem.csv.gz``, ~5 MB at 30-60 min steps) as ``data/tess_ephemeris.npz``
(~0.5 MB). :func:`compact_tables` keeps, of each table, only the rows a cubic spline needs
to reproduce the full table within :data:`TOLERANCE_KM` (every 12 h away from perigee,
down to the table's own step around it): measured against the full tables every 10 min
over 2018-05 to 2026-01, the largest difference is below 0.3 km (1 us of light time). A
table keeps only the part up to the start of the next table (the newer one wins, as in
:class:`~tessphot.timing.tables.TableEphemeris`).

The file holds, per table ``i``, ``minutes_i`` (int32, minutes since ``epoch_jd``) and
``position_km_i`` (float64, shape (n, 3), barycentric ICRF [km]), and ``names`` (the source
tables). ``tools/ship_ephemeris.py`` writes it from a folder of tables.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline

from tessphot.paths import atomic_path
from tessphot.timing.source import EphemerisError
from tessphot.timing.tables import EphemerisTable

log = logging.getLogger(__name__)

#: File name of the shipped tables (in the package ``tessphot.data``).
SHIPPED_NAME = "tess_ephemeris.npz"
#: Largest position error allowed when compacting [km] (1 km is 3.3 us of light time).
TOLERANCE_KM = 0.3
#: Longest step kept between two rows [d].
MAX_STEP_DAYS = 0.5
#: Origin of the stored times [JD, TDB] and their unit [d].
EPOCH_JD = 2458000.5
MINUTE_DAYS = 1.0 / 1440.0
#: Refinement rounds of :func:`_select_rows` (each halves the too-long steps).
MAX_ROUNDS = 60


def shipped_path() -> Path:
    """Where the shipped tables are (inside the installed package)."""
    return Path(str(resources.files("tessphot.data").joinpath(SHIPPED_NAME)))


@lru_cache(maxsize=1)
def shipped_tables() -> tuple[EphemerisTable, ...]:
    """The shipped tables, oldest first; empty (with a warning) when the file is unusable."""
    path = shipped_path()
    try:
        return read_compact(path)
    except EphemerisError as err:
        log.warning("The ephemeris shipped with tessphot is not usable: %s", err)
        return ()


def read_compact(path: Path) -> tuple[EphemerisTable, ...]:
    """Read tables written by :func:`write_compact`.

    Raises
    ------
    EphemerisError
        For a missing or damaged file.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            epoch = float(npz["epoch_jd"])
            names = [str(n) for n in npz["names"]]
            return tuple(
                EphemerisTable(
                    path,
                    epoch + npz[f"minutes_{i}"].astype(np.float64) * MINUTE_DAYS,
                    np.asarray(npz[f"position_km_{i}"], dtype=np.float64),
                    max_step_days=float(npz["max_step_days"]),
                )
                for i in range(len(names))
            )
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise EphemerisError(f"{path}: cannot read the ephemeris ({err})") from None


def compact_tables(
    tables: Sequence[EphemerisTable],
    *,
    tolerance_km: float = TOLERANCE_KM,
    max_step_days: float = MAX_STEP_DAYS,
) -> list[EphemerisTable]:
    """The rows of each table a cubic spline needs to stay within a tolerance.

    Parameters
    ----------
    tables : sequence of EphemerisTable
        Oldest first; each is cut at the start of the next (the newer wins there).
    tolerance_km : float
        Largest difference from the full table's spline, at its rows and half-way between
        them [km].
    max_step_days : float
        Longest step kept [d].
    """
    compact = []
    for i, table in enumerate(tables):
        end = tables[i + 1].start if i + 1 < len(tables) else table.stop
        n = min(int(np.searchsorted(table.jd, end)) + 1, table.jd.size)
        jd, position = table.jd[:n], table.position_km[:n]
        rows = _select_rows(jd, position, tolerance_km, max_step_days)
        longest = max(float(np.diff(jd[rows]).max()), table.max_step_days)
        compact.append(EphemerisTable(table.path, jd[rows], position[rows], longest))
    return compact


def _select_rows(
    jd: np.ndarray, position: np.ndarray, tolerance_km: float, max_step_days: float
) -> np.ndarray:
    """Indices of the rows kept: every ``max_step`` first, then halving steps that miss."""
    step = float(np.median(np.diff(jd)))
    keep = np.zeros(jd.size, dtype=bool)
    keep[:: max(int(round(max_step_days / step)), 1)] = True
    keep[-1] = True
    middle = 0.5 * (jd[:-1] + jd[1:])
    probe = np.concatenate([jd, middle])
    reference = np.concatenate([position, CubicSpline(jd, position, axis=0)(middle)])
    for _ in range(MAX_ROUNDS):
        rows = np.flatnonzero(keep)
        error = np.linalg.norm(
            CubicSpline(jd[rows], position[rows], axis=0)(probe) - reference, axis=1
        )
        missed = probe[error > tolerance_km]
        if missed.size == 0:
            return rows
        interval = np.unique(np.clip(np.searchsorted(jd[rows], missed) - 1, 0, rows.size - 2))
        a, b = rows[interval], rows[interval + 1]
        keep[((a + b) // 2)[b - a > 1]] = True
    raise EphemerisError(f"cannot compact the table to {tolerance_km} km in {MAX_ROUNDS} rounds")


def write_compact(tables: Sequence[EphemerisTable], path: Path) -> None:
    """Write compacted tables (from :func:`compact_tables`) as a compressed ``.npz``."""
    arrays: dict[str, np.ndarray] = {
        "epoch_jd": np.float64(EPOCH_JD),
        "names": np.array([t.path.name for t in tables]),
        "max_step_days": np.float64(max(t.max_step_days for t in tables)),
    }
    for i, table in enumerate(tables):
        minutes = np.rint((table.jd - EPOCH_JD) / MINUTE_DAYS)
        if np.abs(minutes * MINUTE_DAYS + EPOCH_JD - table.jd).max() > 1e-6:
            raise EphemerisError(f"{table.path}: times are not on whole minutes")
        arrays[f"minutes_{i}"] = minutes.astype(np.int32)
        arrays[f"position_km_{i}"] = table.position_km
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
