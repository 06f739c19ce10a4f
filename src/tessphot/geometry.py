"""Real TESS geometry for a sector, camera and CCD: WCS, pointing and observing window.

Used by the pipeline (the catalog stage's CCD footprints) and by the simulator; also the one
great-circle distance between sky positions (:func:`angular_distance_deg`) and the one
conversion of sky positions to unit vectors (:func:`radec_to_xyz`), used by the catalog's
spherical geometry, the todo list, the pixel sources and the barycentric correction.

The WCS comes from tesswcs (SIP models fitted to real SPOC FFIs, shipped with the package
and used offline), the camera boresights from tess-point, and the sector's observing window
from tesswcs's pointing table, which covers every scheduled sector.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from tessphot.constants import BTJD_OFFSET, SCIENCE_COLUMN_OFFSET, SCIENCE_SIZE
from tessphot.sectors import sector_info

#: Delay between a sector's nominal start (pointing table) and its first FFI [d]
#: (sector 1: table start 2458324.5, first FFI TSTART 2458325.3131 TJD).
FIRST_FFI_DELAY = 0.8131
#: Time of sector 1's first FFI exposure start [TJD, spacecraft time].
SECTOR1_FIRST_TSTART = 1325.313100604524
#: Margin before a sector's nominal end with no more data [d].
END_MARGIN = 0.3
#: Length of the data-downlink gap between the two orbits of a sector [d].
ORBIT_GAP = 1.1


@dataclass(frozen=True)
class SectorGeometry:
    """Where a CCD looks during a sector and when it observes."""

    sector: int
    camera: int
    ccd: int
    #: WCS of the full FFI image HDU (2136x2078, HDU pixel coordinates).
    hdu_wcs: WCS
    ra_nom: float
    dec_nom: float
    roll_nom: float
    camera_ra: float
    camera_dec: float
    #: Start of the first exposure and end of the last possible one [TJD].
    tjd_start: float
    tjd_end: float
    #: Sector reference time (catalogue epoch) [TJD].
    reference_tjd: float

    @property
    def science_wcs(self) -> WCS:
        """WCS of the science area: pixel (x, y) = 0-based science (column, row)."""
        return shift_wcs(self.hdu_wcs, 0.0, -SCIENCE_COLUMN_OFFSET)

    @property
    def orbit_gap(self) -> tuple[float, float]:
        """Data gap between the two orbits [TJD]."""
        mid = 0.5 * (self.tjd_start + self.tjd_end)
        return mid - ORBIT_GAP / 2, mid + ORBIT_GAP / 2

    @property
    def ccd_centre(self) -> tuple[float, float]:
        """Sky position (RA, Dec) [deg] of the centre of the science area."""
        c = (SCIENCE_SIZE - 1) / 2
        ra, dec = self.science_wcs.all_pix2world([[c, c]], 0)[0]
        return float(ra), float(dec)


def shift_wcs(wcs: WCS, drow: float, dcol: float) -> WCS:
    """A copy of a WCS whose pixel grid is shifted: new pixel = old pixel + (drow, dcol).

    SIP distortions are expressed relative to CRPIX, so shifting CRPIX is exact.
    """
    return wcs_from_header(shifted_wcs_header(wcs, drow, dcol))


def shifted_wcs_header(wcs: WCS, drow: float, dcol: float) -> fits.Header:
    """The header of :func:`shift_wcs`'s WCS, without parsing it into a WCS again."""
    header = wcs.to_header(relax=True)
    header["CRPIX1"] += dcol
    header["CRPIX2"] += drow
    return header


def wcs_from_header(header) -> WCS:
    """A WCS from a header, without astropy's warnings about fixed keywords."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header, relax=True)


def radec_to_xyz(ra, dec) -> np.ndarray:
    """Unit vectors of sky positions (ICRS: x towards RA 0, z towards the north pole).

    Parameters
    ----------
    ra, dec : array_like
        Right ascension and declination [deg].

    Returns
    -------
    numpy.ndarray, shape (..., 3)
    """
    ra = np.radians(np.asarray(ra, dtype=float))
    dec = np.radians(np.asarray(dec, dtype=float))
    cos_dec = np.cos(dec)
    return np.stack([cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)], axis=-1)


def angular_distance_deg(ra1, dec1, ra2: float, dec2: float) -> np.ndarray:
    """Great-circle distance of sky positions from one position [deg].

    The haversine formula: accurate at all separations.

    Parameters
    ----------
    ra1, dec1 : float or array_like
        The positions [deg].
    ra2, dec2 : float
        The one position they are measured from [deg].

    Returns
    -------
    numpy.ndarray or float
        The distances [deg], of the shape of ``ra1``.
    """
    ra1, dec1 = np.radians(ra1), np.radians(dec1)
    ra2, dec2 = math.radians(ra2), math.radians(dec2)
    h = (
        np.sin((dec1 - dec2) / 2) ** 2
        + np.cos(dec1) * math.cos(dec2) * np.sin((ra1 - ra2) / 2) ** 2
    )
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))))


def sector_geometry(sector: int, camera: int, ccd: int) -> SectorGeometry:
    """Geometry and observing window of a sector, camera and CCD.

    Raises
    ------
    ValueError
        For a camera or CCD outside 1-4 or a sector unknown to the pointing tables.
    """
    import tesswcs
    from tess_stars2px import TESS_Spacecraft_Pointing_Data

    if camera not in (1, 2, 3, 4) or ccd not in (1, 2, 3, 4):
        raise ValueError(f"camera and CCD must be 1-4, not camera {camera} CCD {ccd}")
    info = sector_info(sector)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdu_wcs = tesswcs.WCS.from_sector(sector, camera, ccd)
        cams = TESS_Spacecraft_Pointing_Data(trySector=sector)
    start = info.start_jd - BTJD_OFFSET
    tjd_start = SECTOR1_FIRST_TSTART if sector == 1 else start + FIRST_FFI_DELAY
    roll = info.roll
    return SectorGeometry(
        sector=sector,
        camera=camera,
        ccd=ccd,
        hdu_wcs=wcs_from_header(WCS.to_header(hdu_wcs, relax=True)),
        ra_nom=info.ra,
        dec_nom=info.dec,
        roll_nom=roll - 360.0 if roll > 180.0 else roll,
        camera_ra=float(np.ravel(cams.camRa)[camera - 1]),
        camera_dec=float(np.ravel(cams.camDec)[camera - 1]),
        tjd_start=tjd_start,
        tjd_end=info.end_jd - BTJD_OFFSET - END_MARGIN,
        reference_tjd=info.reference_tjd,
    )
