"""Layout of the catalog SQLite files ``catalog_sector{NNN}_camera{C}_ccd{D}.sqlite``.

The tables ``settings`` and ``catalog`` and the index ``ra_dec_idx`` are exactly the original
TASOC pipeline's (§4.2 of the notes), so TASOC tools read our files. tessphot adds:

``catalog_rtree``
    An SQLite R*Tree over the stars' unit vectors at the sector epoch
    (``starid, xmin, xmax, ymin, ymax, zmin, zmax``; each star is a point, stored as a box
    rounded outward to 32-bit floats). A small region of the sky (a stamp) has a tight 3-D
    bounding box, so the R*Tree finds its stars directly, with no special cases at RA 0/360
    or at the poles; the exact test on the double-precision ``ra``/``decl`` follows.
``tessphot_metadata``
    ``key``/``value`` text pairs: format version, faint limit, source, star count, ...
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

#: Version of this file layout (stored in ``tessphot_metadata``).
FORMAT_VERSION = 1
#: Page size of the files [bytes] (the original's).
PAGE_SIZE = 4096
#: TIC version written into ``settings.ticver`` by default (the original's).
DEFAULT_TICVER = "8.2"

#: The original's ``settings`` table (one row).
SETTINGS_DDL = """CREATE TABLE settings (
    sector INTEGER NOT NULL,
    camera INTEGER NOT NULL,
    ccd INTEGER NOT NULL,
    ticver TEXT NOT NULL,
    reference_time DOUBLE,
    epoch DOUBLE,
    coord_buffer DOUBLE,
    camera_centre_ra DOUBLE,
    camera_centre_dec DOUBLE,
    footprint TEXT
)"""

#: The original's ``catalog`` table: positions at the sector epoch and at J2000 [deg],
#: proper motions [mas/yr] (RA includes cos dec), TESS magnitude, effective temperature [K].
CATALOG_DDL = """CREATE TABLE catalog (
    starid INTEGER PRIMARY KEY NOT NULL,
    ra DOUBLE NOT NULL,
    decl DOUBLE NOT NULL,
    ra_J2000 DOUBLE NOT NULL,
    decl_J2000 DOUBLE NOT NULL,
    pm_ra DOUBLE,
    pm_decl DOUBLE,
    tmag REAL NOT NULL,
    teff REAL
)"""

#: The original's index on the catalog.
RA_DEC_INDEX_DDL = "CREATE INDEX ra_dec_idx ON catalog (ra, decl)"

#: tessphot's spatial index (unit vectors of the sector-epoch positions).
RTREE_DDL = (
    "CREATE VIRTUAL TABLE catalog_rtree USING rtree(starid, xmin, xmax, ymin, ymax, zmin, zmax)"
)

#: tessphot's metadata.
METADATA_DDL = """CREATE TABLE tessphot_metadata (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT
)"""

#: Columns of ``catalog`` in table order.
CATALOG_COLUMNS = (
    "starid",
    "ra",
    "decl",
    "ra_J2000",
    "decl_J2000",
    "pm_ra",
    "pm_decl",
    "tmag",
    "teff",
)

#: Columns of ``settings`` in table order.
SETTINGS_COLUMNS = (
    "sector",
    "camera",
    "ccd",
    "ticver",
    "reference_time",
    "epoch",
    "coord_buffer",
    "camera_centre_ra",
    "camera_centre_dec",
    "footprint",
)


def catalog_filename(sector: int, camera: int, ccd: int) -> str:
    """File name of the catalog of one sector, camera and CCD."""
    return f"catalog_sector{sector:03d}_camera{camera:d}_ccd{ccd:d}.sqlite"


@dataclass(frozen=True)
class CatalogSettings:
    """The one row of the ``settings`` table."""

    sector: int
    camera: int
    ccd: int
    ticver: str
    #: Sector reference time, the epoch of ``ra``/``decl`` [JD].
    reference_time: float
    #: The same as a Julian epoch [decimal year].
    epoch: float
    #: Footprint buffer [deg].
    coord_buffer: float
    camera_centre_ra: float
    camera_centre_dec: float
    #: Buffered footprint polygon ``((ra,dec),...)`` [deg].
    footprint: str


def nan_to_none(values: ArrayLike) -> list:
    """Values as a list of floats with None (SQL NULL) where NaN."""
    values = np.asarray(values, dtype=float)
    out = values.astype(object)
    out[np.isnan(values)] = None
    return out.tolist()
