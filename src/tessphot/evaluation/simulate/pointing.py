"""Pointing of simulated frames: where the jitter moves the stars and the jittered WCS.

The real geometry of a sector, camera and CCD lives in :mod:`tessphot.geometry`.
"""

from __future__ import annotations

import numpy as np
from astropy.wcs import WCS

from tessphot.geometry import SectorGeometry, wcs_from_header


def move_positions(rows, cols, drow, dcol, theta, centre):
    """Positions after rotation by ``theta`` about ``centre`` and a translation.

    Parameters
    ----------
    rows, cols : numpy.ndarray
        Positions in the reference frame [px].
    drow, dcol : float
        Translation [px].
    theta : float
        Rotation [rad], counter-clockwise in the (column, row) plane.
    centre : tuple of float
        Rotation centre (row, column) [px].

    Returns
    -------
    tuple of numpy.ndarray
        The moved rows and columns.
    """
    cos, sin = np.cos(theta), np.sin(theta)
    x, y = cols - centre[1], rows - centre[0]
    return (sin * x + cos * y + centre[0] + drow, cos * x - sin * y + centre[1] + dcol)


def boresight_pixel(wcs: WCS, geometry: SectorGeometry) -> tuple[float, float]:
    """Science-area (row, column) of the camera boresight (usually just off one corner)."""
    col, row = wcs.all_world2pix([[geometry.camera_ra, geometry.camera_dec]], 0, quiet=True)[0]
    return float(row), float(col)


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

    Returns
    -------
    WCS
        The WCS of the moved frame.
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
