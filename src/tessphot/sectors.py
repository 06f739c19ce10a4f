"""Sector metadata for every TESS sector: observing window, reference time, FFI cadence.

The pointing table shipped with tesswcs lists every scheduled sector (it is updated with each
tesswcs release), so nothing here stops at a fixed sector. The reference time of a sector is
the middle of its observing window; catalogues propagate proper motions to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from tessphot.constants import BTJD_OFFSET, ffi_cadence


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
        last = int(max(s for s in table["Sector"] if s < 1000))
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
