"""Instrument and mission constants with their units.

Coordinate convention used everywhere in tessphot
--------------------------------------------------
Pixel positions are **0-based science-area coordinates** ``(row, column)``: row 0 is CCD
row 1 and column 0 is CCD column 45 (the first science column); pixel centres fall on
integers. The FITS image HDU of a full SPOC FFI has 44 leading collateral columns, so HDU
column = science column + ``SCIENCE_COLUMN_OFFSET``. 1-based CCD coordinates (as in the
physical WCS keywords CRVAL1P/CRVAL2P) are row + 1 and column + 45.
"""

from __future__ import annotations

import numpy as np

#: Size of the science area of one CCD [pixels].
SCIENCE_SIZE = 2048
#: Number of leading collateral (serial register + prescan) columns in a full FFI image HDU.
SCIENCE_COLUMN_OFFSET = 44
#: Shape of a full FFI image HDU (rows, columns) [pixels].
FULL_FRAME_SHAPE = (2078, 2136)
#: 1-based CCD column of the first science pixel.
FIRST_SCIENCE_CCD_COLUMN = SCIENCE_COLUMN_OFFSET + 1
#: 1-based CCD row of the first science pixel.
FIRST_SCIENCE_CCD_ROW = 1
#: Width of one CCD output (A, B, C, D) in the science area [pixels].
OUTPUT_WIDTH = 512
#: Pixel scale [arcsec / pixel].
PIXEL_SCALE_ARCSEC = 21.0

#: Duration of one 2-s frame [s].
FRAME_TIME = 2.0
#: Photon accumulation time per 2-s frame [s].
INTEGRATION_TIME = 1.98
#: Readout time per 2-s frame [s].
READOUT_TIME = 0.02
#: Full-well depth of a pixel in one 2-s frame [e-] (TESS CCDs hold ~2e5 e-).
FULL_WELL = 2.0e5
#: The flux of a pixel that is full in every frame [e-/s].
SATURATED_RATE = FULL_WELL / INTEGRATION_TIME
#: Size of an on-board cosmic-ray mitigation block [frames]; the highest and lowest of each
#: block are discarded.
CR_BLOCK_SIZE = 10

#: TESS magnitude zero point: a star of Tmag = ZP gives 1 e-/s (noise-model.md).
TMAG_ZEROPOINT = 20.44
#: Offset between BJD and BTJD [d].
BTJD_OFFSET = 2457000.0

#: FFI cadence [s] per range of sectors (first sector, last sector, cadence).
FFI_CADENCE_BY_SECTOR = ((1, 26, 1800), (27, 55, 600), (56, 10_000, 200))

#: Sector 1's first FFI cadence number (FFIINDEX) and the start time of that cadence [BTJD,
#: spacecraft clock, i.e. before barycentric correction]. Cadence numbers of all FFIs are
#: counted from here in units of the sector's FFI cadence.
FFIINDEX_SECTOR1_FIRST = 4697
FFIINDEX_SECTOR1_TSTART_TJD = 1325.313100604524


def ffi_cadence(sector: int) -> int:
    """FFI cadence of a sector.

    Parameters
    ----------
    sector : int
        TESS sector number (>= 1).

    Returns
    -------
    int
        Exposure time of one full-frame image [s]: 1800 (sectors 1-26), 600 (27-55) or 200.
    """
    if sector < 1:
        raise ValueError(f"invalid sector {sector}: sectors start at 1")
    for first, last, cadence in FFI_CADENCE_BY_SECTOR:
        if first <= sector <= last:
            return cadence
    raise ValueError(f"no FFI cadence known for sector {sector}")


def tmag_to_flux(tmag, zeropoint: float = TMAG_ZEROPOINT):
    """Convert TESS magnitude to flux [e-/s]."""
    return 10.0 ** (-0.4 * (tmag - zeropoint))


def flux_to_tmag(flux, zeropoint: float = TMAG_ZEROPOINT):
    """Convert flux [e-/s] to TESS magnitude (NaN for a flux that is not positive)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return zeropoint - 2.5 * np.log10(np.where(np.asarray(flux, float) > 0, flux, np.nan))
