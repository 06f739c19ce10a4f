"""The sky footprint of a CCD in a sector, grown by a buffer, in spherical geometry.

The footprint is the science area of the CCD (2048 x 2048 pixels, outer pixel edges) mapped
onto the sky through the real SIP WCS of the sector, camera and CCD (tesswcs, offline). A star
belongs to the catalog when it lies on that area or within ``buffer`` degrees of it, measured
as a true angle on the sphere (the original pipeline grew the polygon without the cos(dec)
factor, §8.2 of the notes). The footprint of a TPF or cutout of any shape is built the same
way from its own WCS (:func:`pixels_footprint`), for catalogs of just the data at hand.

Two shapes are kept:

- the *boundary*: the CCD edge sampled every :data:`EDGE_STEP_PX` pixels (256 vertices joined
  by great circles, within 0.003 px of the distorted edge); :meth:`Footprint.contains` is
  exact on it;
- the *query polygon*: four vertices that surely contain the buffered footprint (the CCD
  corners pushed outward); databases and MAST are asked for the stars inside it, and the
  answer is filtered with :meth:`Footprint.contains`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tessphot.catalog import sphere
from tessphot.catalog.errors import CatalogError
from tessphot.constants import SCIENCE_SIZE
from tessphot.geometry import sector_geometry

log = logging.getLogger(__name__)

#: Spacing of the boundary vertices along the CCD edges [pixels].
EDGE_STEP_PX = 32
#: Largest buffer accepted [deg].
MAX_BUFFER_DEG = 5.0
#: Decimals of the coordinates in the footprint string (as the original).
FOOTPRINT_DECIMALS = 16
#: Angular slack added to containment tests against rounding [rad] (~0.2 mas).
_EPS = 1e-9


@dataclass(frozen=True, eq=False)
class Footprint:
    """Where one CCD looks in one sector, and the buffer around it.

    Attributes
    ----------
    sector, camera, ccd : int
        Which CCD.
    buffer_deg : float
        Distance around the science area that still belongs to the footprint [deg].
    boundary : ndarray, shape (M, 3)
        Unit vectors of the science-area edge, counter-clockwise.
    corners : ndarray, shape (4, 3)
        Unit vectors of the four outer corners of the science area, counter-clockwise.
    centre : ndarray, shape (3,)
        Unit vector of the centre of the science area.
    camera_centre : tuple of float
        RA and Dec of the camera boresight [deg].
    deviation : float
        How far the curved CCD edges bulge out of the great circles between the corners [rad].
    """

    sector: int
    camera: int
    ccd: int
    buffer_deg: float
    boundary: NDArray[np.float64]
    corners: NDArray[np.float64]
    centre: NDArray[np.float64]
    camera_centre: tuple[float, float]
    deviation: float

    @property
    def buffer(self) -> float:
        """The buffer [rad]."""
        return float(np.radians(self.buffer_deg))

    def query_polygon(self, extra_deg: float = 0.0) -> NDArray[np.float64]:
        """Four unit vectors of a polygon containing the footprint grown by ``extra_deg``."""
        grow = self.buffer + float(np.radians(extra_deg)) + self.deviation + _EPS
        return sphere.grow_convex_polygon(self.corners, grow)

    def query_polygon_radec(self, extra_deg: float = 0.0) -> tuple[NDArray, NDArray]:
        """RA and Dec [deg] of :meth:`query_polygon`'s vertices."""
        return sphere.xyz_to_radec(self.query_polygon(extra_deg))

    def bounding_cap(self, extra_deg: float = 0.0) -> tuple[NDArray[np.float64], float]:
        """A cap (centre unit vector, radius [rad]) containing the grown footprint."""
        radius = float(sphere.angle_between(self.centre, self.boundary).max())
        radius += self.buffer + float(np.radians(extra_deg)) + _EPS
        return self.centre, radius

    def footprint_string(self) -> str:
        """The buffered query polygon as the original wrote it: ``((ra,dec),(ra,dec),...)``."""
        ra, dec = self.query_polygon_radec()
        d = FOOTPRINT_DECIMALS
        pairs = (f"({r:.{d}f},{c:.{d}f})" for r, c in zip(ra, dec, strict=True))
        return "(" + ",".join(pairs) + ")"

    def contains(self, ra: ArrayLike, dec: ArrayLike) -> NDArray[np.bool_]:
        """Whether sky positions [deg] lie on the CCD or within the buffer of it."""
        return self.contains_xyz(sphere.radec_to_xyz(ra, dec))

    def contains_xyz(self, xyz: ArrayLike) -> NDArray[np.bool_]:
        """:meth:`contains` for unit vectors, shape (N, 3)."""
        xyz = np.atleast_2d(np.asarray(xyz, dtype=float))
        result = np.zeros(len(xyz), dtype=bool)
        centre, radius = self.bounding_cap()
        near = np.flatnonzero(xyz @ centre >= np.cos(radius))
        if near.size == 0:
            return result
        inside = sphere.polygon_contains(xyz[near], self.boundary, self.centre)
        result[near[inside]] = True
        if self.buffer > 0.0:
            rest = near[~inside]
            rest = rest[sphere.polygon_contains(xyz[rest], self.query_polygon(), self.centre)]
            if rest.size:
                distance = sphere.min_arc_distance(xyz[rest], self.boundary)
                result[rest[distance <= self.buffer + _EPS]] = True
        return result


def _edge_pixels(ny: int, nx: int, step: int) -> tuple[NDArray, NDArray]:
    """Columns and rows of the outer edge of ``ny`` x ``nx`` pixels, counter-clockwise."""
    tc = np.arange(-0.5, nx - 0.5, step, dtype=float)
    tr = np.arange(-0.5, ny - 0.5, step, dtype=float)
    lo_c, hi_c, lo_r, hi_r = -0.5, nx - 0.5, -0.5, ny - 0.5
    cols = np.concatenate([tc, np.full(tr.size, hi_c), hi_c + lo_c - tc, np.full(tr.size, lo_c)])
    rows = np.concatenate([np.full(tc.size, lo_r), tr, np.full(tc.size, hi_r), hi_r + lo_r - tr])
    return cols, rows


def _check_buffer(buffer_deg: float) -> None:
    """Raise :class:`CatalogError` for a buffer outside 0 to :data:`MAX_BUFFER_DEG`."""
    if not np.isfinite(buffer_deg) or not 0.0 <= buffer_deg <= MAX_BUFFER_DEG:
        raise CatalogError(f"buffer must be 0-{MAX_BUFFER_DEG} deg, not {buffer_deg}")


def _geometry(sector: int, camera: int, ccd: int):
    """:func:`tessphot.geometry.sector_geometry`, its errors as :class:`CatalogError`."""
    try:
        return sector_geometry(sector, camera, ccd)
    except ValueError as err:
        raise CatalogError(str(err)) from None


def ccd_footprint(sector: int, camera: int, ccd: int, buffer_deg: float) -> Footprint:
    """The footprint of a CCD in a sector, from its real WCS.

    Parameters
    ----------
    sector : int
        TESS sector (any sector in tesswcs's pointing table; predicted WCS for future ones).
    camera, ccd : int
        1-4.
    buffer_deg : float
        Buffer around the science area [deg], 0 to :data:`MAX_BUFFER_DEG`.

    Raises
    ------
    CatalogError
        For an unknown sector, a camera or CCD outside 1-4, or a bad buffer.
    """
    _check_buffer(buffer_deg)
    geometry = _geometry(sector, camera, ccd)
    return _wcs_footprint(
        (sector, camera, ccd),
        geometry.science_wcs,
        (SCIENCE_SIZE, SCIENCE_SIZE),
        buffer_deg,
        (geometry.camera_ra, geometry.camera_dec),
    )


def pixels_footprint(
    sector: int, camera: int, ccd: int, wcs, shape: tuple[int, int], buffer_deg: float
) -> Footprint:
    """The footprint of a block of pixels (a TPF or a cutout) through its own WCS.

    Parameters
    ----------
    sector, camera, ccd : int
        Where the pixels are (the camera centre comes from the sector's real geometry).
    wcs : astropy.wcs.WCS
        WCS of the pixels (0-based pixel ``[0, 0]`` the first pixel).
    shape : (int, int)
        ``(rows, columns)`` of the pixels; any shape (tall bleed-column TPFs included).
    buffer_deg : float
        Buffer around the pixels [deg], 0 to :data:`MAX_BUFFER_DEG`.

    Raises
    ------
    CatalogError
        For an unknown sector, a camera or CCD outside 1-4, a bad buffer or shape.
    """
    _check_buffer(buffer_deg)
    ny, nx = (int(v) for v in shape)
    if ny < 1 or nx < 1:
        raise CatalogError(f"pixels of shape {shape} have no footprint")
    geometry = _geometry(sector, camera, ccd)
    return _wcs_footprint(
        (sector, camera, ccd), wcs, (ny, nx), buffer_deg, (geometry.camera_ra, geometry.camera_dec)
    )


def _wcs_footprint(
    where: tuple[int, int, int],
    wcs,
    shape: tuple[int, int],
    buffer_deg: float,
    camera_centre: tuple[float, float],
) -> Footprint:
    """The footprint of ``shape`` pixels mapped through ``wcs``, grown by ``buffer_deg``."""
    sector, camera, ccd = where
    ny, nx = shape
    cols, rows = _edge_pixels(ny, nx, EDGE_STEP_PX)
    boundary = sphere.radec_to_xyz(*wcs.all_pix2world(cols, rows, 0))
    corner_px = np.array([[-0.5, -0.5], [nx - 0.5, -0.5], [nx - 0.5, ny - 0.5], [-0.5, ny - 0.5]])
    corners = sphere.radec_to_xyz(*wcs.all_pix2world(corner_px[:, 0], corner_px[:, 1], 0))
    centre = sphere.radec_to_xyz(*wcs.all_pix2world([(nx - 1) / 2], [(ny - 1) / 2], 0))[0]
    boundary = sphere.counter_clockwise(boundary)
    corners = sphere.counter_clockwise(corners)
    # How far the dense boundary pokes out of the great circles through the corners.
    normals = sphere.normalise(sphere.cross(corners, np.roll(corners, -1, axis=0)))
    outward = np.clip(-(boundary @ normals.T), 0.0, 1.0)
    deviation = float(np.arcsin(outward.max()))
    log.debug(
        "Sector %d camera %d CCD %d, %dx%d px: edges bulge %.2f arcsec out of the corner polygon",
        sector,
        camera,
        ccd,
        ny,
        nx,
        np.degrees(deviation) * 3600,
    )
    return Footprint(
        sector=int(sector),
        camera=int(camera),
        ccd=int(ccd),
        buffer_deg=float(buffer_deg),
        boundary=boundary,
        corners=corners,
        centre=centre,
        camera_centre=(float(camera_centre[0]), float(camera_centre[1])),
        deviation=deviation,
    )
