"""Sector metadata for every TESS sector: observing window, reference time, FFI cadence.

The pointing table shipped with tesswcs lists every scheduled sector (it is updated with each
tesswcs release), so nothing here stops at a fixed sector. The reference time of a sector is
the middle of its observing window; catalogues propagate proper motions to it.
"""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tessphot.constants import BTJD_OFFSET, ffi_cadence

#: Rows of the pointing table from this sector number on are not observing sectors.
FIRST_EXTRA_SECTOR = 1000


@dataclass(frozen=True)
class SectorInfo:
    """When a sector observes and where the spacecraft points."""

    sector: int
    #: Start and end of the observing window [JD].
    start_jd: float
    end_jd: float
    #: Spacecraft boresight [deg].
    ra: float
    dec: float
    roll: float

    @property
    def reference_time(self) -> float:
        """Mid-sector reference time [JD] (catalogue epoch)."""
        return 0.5 * (self.start_jd + self.end_jd)

    @property
    def reference_tjd(self) -> float:
        """Mid-sector reference time [TJD = JD - 2457000]."""
        return self.reference_time - BTJD_OFFSET

    @property
    def ffi_cadence(self) -> int:
        """FFI cadence [s]."""
        return ffi_cadence(self.sector)


@cache
def _table():
    import tesswcs

    return tesswcs.pointings


def sector_info(sector: int) -> SectorInfo:
    """Metadata of one sector.

    Raises
    ------
    ValueError
        For a sector that is not in the pointing table.
    """
    table = _table()
    rows = table[table["Sector"] == int(sector)]
    if len(rows) != 1:
        last = int(max(s for s in table["Sector"] if s < FIRST_EXTRA_SECTOR))
        raise ValueError(f"unknown sector {sector}: the pointing table covers sectors 1-{last}")
    row = rows[0]
    return SectorInfo(
        sector=int(sector),
        start_jd=float(row["Start"]),
        end_jd=float(row["End"]),
        ra=float(row["RA"]),
        dec=float(row["Dec"]),
        roll=float(row["Roll"]),
    )


def sector_at(tjd: float) -> int | None:
    """The sector observing at a time, or None outside every sector's window.

    Reads tesswcs's pointing table as a file (importing tesswcs loads its WCS database,
    which takes seconds), so that recognising a file by its headers stays fast.

    Parameters
    ----------
    tjd : float
        Time [TJD = JD - 2457000], e.g. the middle of a file's ``TSTART``-``TSTOP``.
    """
    jd = float(tjd) + BTJD_OFFSET
    for sector, start, end in _windows():
        if start <= jd <= end:
            return sector
    return None


@cache
def _windows() -> tuple[tuple[int, float, float], ...]:
    """(sector, start JD, end JD) of every sector, from tesswcs's ``pointings.csv``."""
    spec = importlib.util.find_spec("tesswcs")
    folder = Path(next(iter(spec.submodule_search_locations)))
    with open(folder / "data" / "pointings.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    return tuple(
        (int(row["Sector"]), float(row["Start"]), float(row["End"]))
        for row in rows
        if int(row["Sector"]) < FIRST_EXTRA_SECTOR
    )
