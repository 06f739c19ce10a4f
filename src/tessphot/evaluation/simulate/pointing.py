"""Pointing of simulated frames: the jittered WCS of each exposure.

The real geometry of a sector, camera and CCD lives in :mod:`tessphot.geometry`; its names are
re-exported here for the simulator's existing imports.
"""

from __future__ import annotations

import numpy as np
from astropy.wcs import WCS

from tessphot.geometry import (
    END_MARGIN,
    FIRST_FFI_DELAY,
    ORBIT_GAP,
    SECTOR1_FIRST_TSTART,
    SectorGeometry,
    sector_geometry,
    shift_wcs,
    wcs_from_header,
)

__all__ = [
    "END_MARGIN",
    "FIRST_FFI_DELAY",
    "ORBIT_GAP",
    "SECTOR1_FIRST_TSTART",
    "SectorGeometry",
    "jittered_wcs",
    "sector_geometry",
    "shift_wcs",
    "wcs_from_header",
]


def jittered_wcs(wcs: WCS, drow: float, dcol: float, theta: float, centre: tuple[float, float]):
    """WCS of a frame whose image moved by a rotation about ``centre`` plus a translation.

    A star at pixel ``p0`` in the reference frame appears at
    ``p = R(theta) (p0 - centre) + centre + (dcol, drow)`` (vectors in (column, row) order).
    The SIP terms are kept; for the tiny jitter rotations (1e-5 rad) the error this makes is
    below 1e-3 px.

    Parameters
    ----------
    wcs : WCS
        Reference WCS (pixel axes: column, row of the same grid as ``centre``).
    drow, dcol : float
        Translation [pixels].
    theta : float
        Rotation [rad], counter-clockwise in the (column, row) plane.
    centre : tuple of float
        Rotation centre (row, column) in the WCS's pixel grid.
    """
    header = wcs.to_header(relax=True)
    cos, sin = np.cos(theta), np.sin(theta)
    rot = np.array([[cos, -sin], [sin, cos]])
    crpix = np.array([header["CRPIX1"] - 1.0, header["CRPIX2"] - 1.0])  # 0-based (col, row)
    c = np.array([centre[1], centre[0]])
    new = rot @ (crpix - c) + c + np.array([dcol, drow])
    header["CRPIX1"], header["CRPIX2"] = new[0] + 1.0, new[1] + 1.0
    pc = np.array([[header.get(f"PC{i}_{j}", float(i == j)) for j in (1, 2)] for i in (1, 2)])
    pc = pc @ rot.T
    for i in (1, 2):
        for j in (1, 2):
            header[f"PC{i}_{j}"] = pc[i - 1, j - 1]
    return wcs_from_header(header)
