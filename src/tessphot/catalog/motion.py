"""Proper motion: move catalogue positions from the TIC epoch to a sector's reference time.

The original pipeline added ``pm * dt`` to RA and Dec (dividing the RA rate by cos dec), which
is wrong near the poles. Here the star moves in a straight line through space with its
tangential velocity (no radial velocity or parallax is known for most TIC stars), exactly what
``SkyCoord.apply_space_motion`` does for a star without distance, to better than a
micro-arcsecond over decades.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tessphot.catalog.sphere import radec_to_xyz, xyz_to_radec

#: Epoch of the TIC positions [Julian year].
TIC_EPOCH = 2000.0
#: Julian date of J2000.0 [d].
J2000_JD = 2451545.0
#: Days per Julian year [d].
JULIAN_YEAR_DAYS = 365.25
#: Milliarcseconds per radian.
MAS_PER_RADIAN = 180.0 / np.pi * 3.6e6
#: Highest proper motion of any star (Barnard's star: 10.4 arcsec/yr), with a margin
#: [arcsec / yr]; selections on the sky are widened by this times the years elapsed.
MAX_PROPER_MOTION_ARCSEC = 11.0


def julian_epoch(jd: float) -> float:
    """Julian epoch [decimal year] of a Julian date [d]."""
    return TIC_EPOCH + (jd - J2000_JD) / JULIAN_YEAR_DAYS


def max_motion_deg(years: float) -> float:
    """How far any star can move in ``years`` [deg]."""
    return abs(years) * MAX_PROPER_MOTION_ARCSEC / 3600.0


def propagate(
    ra: ArrayLike, dec: ArrayLike, pm_ra: ArrayLike, pm_dec: ArrayLike, years: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Positions after ``years`` of proper motion.

    Parameters
    ----------
    ra, dec : array_like
        Positions at the catalogue epoch [deg].
    pm_ra, pm_dec : array_like
        Proper motions [mas/yr]; ``pm_ra`` includes the cos(dec) factor (as in the TIC).
        NaN (unknown) counts as zero: the star stays where it is.
    years : float
        Time from the catalogue epoch to the target epoch [Julian years].

    Returns
    -------
    ra, dec : ndarray
        Positions at the target epoch [deg], RA in [0, 360).
    """
    ra = np.asarray(ra, dtype=float)
    dec = np.asarray(dec, dtype=float)
    pm_ra = np.nan_to_num(np.asarray(pm_ra, dtype=float), nan=0.0)
    pm_dec = np.nan_to_num(np.asarray(pm_dec, dtype=float), nan=0.0)
    a, d = np.radians(ra), np.radians(dec)
    east = np.stack([-np.sin(a), np.cos(a), np.zeros_like(a)], axis=-1)
    north = np.stack([-np.sin(d) * np.cos(a), -np.sin(d) * np.sin(a), np.cos(d)], axis=-1)
    scale = years / MAS_PER_RADIAN
    moved = (
        radec_to_xyz(ra, dec)
        + (pm_ra * scale)[..., None] * east
        + (pm_dec * scale)[..., None] * north
    )
    new_ra, new_dec = xyz_to_radec(moved)
    # Stars that do not move keep their positions bit for bit.
    still = (pm_ra == 0.0) & (pm_dec == 0.0)
    return np.where(still, np.mod(ra, 360.0), new_ra), np.where(still, dec, new_dec)
