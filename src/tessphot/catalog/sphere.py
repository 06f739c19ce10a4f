"""Geometry on the unit sphere: unit vectors, polygons with great-circle edges, distances.

Positions are handled as unit vectors ``(x, y, z)`` (ICRS, x towards RA 0, z towards the
north pole), so nothing here has trouble with the RA wrap at 0/360 deg or with the poles.
Polygons are sequences of vertices joined by great-circle arcs (the edges q3c uses too); a
polygon must fit in a hemisphere. Angles are in radians unless a name says ``_deg``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tessphot.geometry import radec_to_xyz as radec_to_xyz  # the one conversion, used here too

#: Points processed at a time when distances to many arcs are computed.
_CHUNK = 2048


def xyz_to_radec(xyz: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Sky positions [deg] of (not necessarily normalised) vectors; RA in [0, 360)."""
    xyz = np.asarray(xyz, dtype=float)
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    ra = np.mod(np.degrees(np.arctan2(y, x)), 360.0)
    dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return ra, dec


def cross(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Cross product along the last axis.

    ``numpy.cross`` without its per-call overhead, which dominates for the few vectors of a
    stamp query.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], axis=-1)


def _norm(v: NDArray) -> NDArray[np.float64]:
    return np.sqrt(np.sum(v * v, axis=-1))


def normalise(v: ArrayLike) -> NDArray[np.float64]:
    """Vectors scaled to unit length (along the last axis)."""
    v = np.asarray(v, dtype=float)
    return v / _norm(v)[..., None]


def angle_between(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Angle between unit vectors [rad], accurate at all separations."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.arctan2(_norm(cross(a, b)), np.sum(a * b, axis=-1))


def tangent_basis(centre: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Unit vectors pointing east and north at ``centre`` (any fixed pair at a pole)."""
    c = normalise(centre)
    pole = np.array([0.0, 0.0, 1.0])
    east = cross(pole, c)
    if _norm(east) < 1e-12:  # at a pole: any orthonormal pair will do
        east = np.array([0.0, 1.0, 0.0])
    east = normalise(east)
    north = cross(c, east)
    return east, north


def gnomonic(xyz: ArrayLike, centre: ArrayLike) -> tuple[NDArray, NDArray]:
    """Gnomonic (tangent-plane) projection about ``centre``.

    Great circles become straight lines, so a polygon with great-circle edges becomes a plane
    polygon. Points in the hemisphere opposite ``centre`` get NaN.

    Returns
    -------
    xi, eta : ndarray
        Coordinates towards east and north in the tangent plane [dimensionless].
    """
    xyz = np.asarray(xyz, dtype=float)
    c = normalise(centre)
    east, north = tangent_basis(c)
    w = xyz @ c
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(w > 0.0, w, np.nan)
        return (xyz @ east) / w, (xyz @ north) / w


def polygon_centre(vertices: ArrayLike) -> NDArray[np.float64]:
    """Unit vector of the mean of a polygon's vertices (inside any small convex polygon)."""
    return normalise(np.asarray(vertices, dtype=float).mean(axis=0))


def polygon_contains(
    xyz: ArrayLike, vertices: ArrayLike, centre: ArrayLike | None = None
) -> NDArray[np.bool_]:
    """Whether points lie inside a polygon with great-circle edges.

    Parameters
    ----------
    xyz : array_like, shape (N, 3)
        Unit vectors of the points.
    vertices : array_like, shape (M, 3)
        Unit vectors of the polygon's vertices, in order (either orientation).
    centre : array_like, optional
        Projection centre; must see all vertices within 90 deg (default: vertex mean).
    """
    xyz = np.atleast_2d(np.asarray(xyz, dtype=float))
    vertices = np.asarray(vertices, dtype=float)
    c = polygon_centre(vertices) if centre is None else normalise(centre)
    vx, vy = gnomonic(vertices, c)
    if not (np.all(np.isfinite(vx)) and np.all(np.isfinite(vy))):
        raise ValueError("polygon does not fit in the hemisphere around its centre")
    px, py = gnomonic(xyz, c)
    inside = np.zeros(len(xyz), dtype=bool)
    ok = np.isfinite(px)
    if np.any(ok):
        inside[ok] = plane_polygon_contains(px[ok], py[ok], vx, vy)
    return inside


def convex_polygon_normals(vertices: ArrayLike) -> NDArray[np.float64] | None:
    """Inward edge normals of a convex polygon (unit vectors, shape (M, 3)), or None.

    A point ``p`` is inside a convex polygon when ``normals @ p >= 0`` for every edge, which
    needs no projection: the fast test for stamps. None when the polygon is not convex (to
    within 1e-12), so that the general :func:`polygon_contains` is used instead.
    """
    v = np.asarray(vertices, dtype=float)
    normals = cross(v, np.roll(v, -1, axis=0))
    side = normals @ v.T  # every vertex against every edge
    if np.all(side >= -1e-12):
        return normals
    if np.all(side <= 1e-12):
        return -normals
    return None


#: Up to this many point-edge pairs, :func:`plane_polygon_contains` uses plain numpy.
_SMALL_POLYGON_WORK = 1 << 16


def plane_polygon_contains(px: NDArray, py: NDArray, vx: NDArray, vy: NDArray) -> NDArray[np.bool_]:
    """Even-odd point-in-polygon test in a plane.

    Small problems (a stamp) use numpy broadcasting, which has little overhead per call;
    large ones (a CCD's stars) matplotlib's compiled ``Path.contains_points``.
    """
    if px.size * vx.size > _SMALL_POLYGON_WORK:
        from matplotlib.path import Path

        path = Path(np.column_stack([vx, vy]))
        return path.contains_points(np.column_stack([px, py]))
    x0, y0 = vx[None, :], vy[None, :]
    x1, y1 = np.roll(vx, -1)[None, :], np.roll(vy, -1)[None, :]
    x, y = px[:, None], py[:, None]
    straddles = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return np.count_nonzero(straddles & (x < x_cross), axis=1) % 2 == 1


def signed_area_plane(x: ArrayLike, y: ArrayLike) -> float:
    """Signed area of a plane polygon (positive when counter-clockwise)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def counter_clockwise(vertices: ArrayLike) -> NDArray[np.float64]:
    """The polygon's vertices ordered counter-clockwise as seen from outside the sphere.

    Seen from outside, the interior is then on the left of every edge: for an edge ``a -> b``
    the normal ``a x b`` points into the polygon.
    """
    vertices = np.asarray(vertices, dtype=float)
    x, y = gnomonic(vertices, polygon_centre(vertices))
    return vertices if signed_area_plane(x, y) > 0 else vertices[::-1].copy()


def min_arc_distance(xyz: ArrayLike, vertices: ArrayLike) -> NDArray[np.float64]:
    """Angular distance [rad] from each point to the nearest edge of a closed polygon.

    The edges are the great-circle arcs between consecutive vertices (last to first
    included). Exact on the sphere: the distance to an arc is the perpendicular distance to
    its great circle when the foot of the perpendicular falls on the arc, else the distance
    to the nearer end.
    """
    xyz = np.atleast_2d(np.asarray(xyz, dtype=float))
    a = np.asarray(vertices, dtype=float)
    b = np.roll(a, -1, axis=0)
    normal = normalise(cross(a, b))  # (M, 3)
    out = np.empty(len(xyz))
    for start in range(0, len(xyz), _CHUNK):
        p = xyz[start : start + _CHUNK]
        s = p @ normal.T  # (n, M): sine of the distance to each great circle
        foot = p[:, None, :] - s[..., None] * normal[None, :, :]
        # The foot lies on the arc when it is on the inner side of both ends.
        on_arc = (np.einsum("mk,nmk->nm", cross(a, normal), foot) <= 0.0) & (
            np.einsum("mk,nmk->nm", cross(normal, b), foot) <= 0.0
        )
        perpendicular = np.arcsin(np.clip(np.abs(s), 0.0, 1.0))
        cos_a = np.clip(p @ a.T, -1.0, 1.0)
        cos_b = np.clip(p @ b.T, -1.0, 1.0)
        ends = np.arccos(np.maximum(cos_a, cos_b))
        out[start : start + _CHUNK] = np.where(on_arc, perpendicular, ends).min(axis=1)
    return out


def grow_convex_polygon(vertices: ArrayLike, offset: float) -> NDArray[np.float64]:
    """A polygon with as many vertices containing all points within ``offset`` of a convex one.

    Every edge's great circle is tilted outward about the edge's tangent at its midpoint,
    enough that the tilted circle stays at least ``offset`` away from the polygon over the
    whole region it bounds; the new vertices are where consecutive tilted circles meet. The
    result is a superset (exact selections filter again with :func:`min_arc_distance`); it
    is meant for polygons with few, well-separated vertices such as the corners of a CCD.

    Parameters
    ----------
    vertices : array_like, shape (M, 3)
        Unit vectors of a convex polygon's vertices, in order.
    offset : float
        Distance to grow by [rad], >= 0.
    """
    v = counter_clockwise(vertices)
    if offset <= 0.0:
        return v.copy()
    nxt = np.roll(v, -1, axis=0)
    normal = normalise(cross(v, nxt))  # inward
    mid = normalise(v + nxt)
    # Farthest any point of the grown region can be from an edge's midpoint.
    reach = np.array([angle_between(m, v).max() for m in mid]) + offset
    if np.any(reach >= np.pi / 2):
        raise ValueError("polygon too large to grow (it must fit well inside a hemisphere)")
    tilt = np.arctan(np.sin(offset) / np.cos(reach))
    tilted = np.cos(tilt)[:, None] * normal + np.sin(tilt)[:, None] * mid
    prev = np.roll(tilted, 1, axis=0)
    corner = normalise(cross(prev, tilted))
    # Of the two intersections, take the one next to the original vertex.
    flip = np.sum(corner * v, axis=1) < 0
    corner[flip] *= -1.0
    return corner


def polygon_bbox(
    vertices: ArrayLike, centre: ArrayLike | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Axis-aligned 3-D box containing every point of a small spherical polygon.

    The box of the vertices is padded by the largest sagitta of the edges (an arc bulges out
    of its chord by at most ``1 - cos(L / 2)``), and extended to +-1 along an axis whose
    direction lies inside the polygon (a coordinate can only peak inside at the pole of its
    axis).

    Parameters
    ----------
    vertices : array_like, shape (M, 3)
        Unit vectors of the vertices.
    centre : array_like, optional
        A point inside (default: the vertex mean).

    Returns
    -------
    lo, hi : ndarray, shape (3,)
    """
    v = np.asarray(vertices, dtype=float)
    cos_edge = np.clip(np.sum(v * np.roll(v, -1, axis=0), axis=1).min(), -1.0, 1.0)
    pad = 1.0 - np.sqrt(0.5 * (1.0 + cos_edge)) + 1e-12  # 1 - cos(L/2) of the longest edge
    lo = v.min(axis=0) - pad
    hi = v.max(axis=0) + pad
    # Only axis directions within the polygon's circumscribed cap can be inside it.
    c = polygon_centre(v) if centre is None else np.asarray(centre, dtype=float)
    cos_radius = float(np.min(v @ c)) - 1e-12
    for k in np.flatnonzero(np.abs(c) >= cos_radius):
        axis = np.zeros(3)
        axis[k] = np.sign(c[k])
        if polygon_contains(axis, v, c)[0]:
            if c[k] > 0:
                hi[k] = 1.0
            else:
                lo[k] = -1.0
    return np.maximum(lo, -1.0), np.minimum(hi, 1.0)


def cap_bbox(centre: ArrayLike, radius: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Axis-aligned 3-D box of a spherical cap (centre unit vector, radius [rad])."""
    c = normalise(centre)
    theta = np.arccos(np.clip(c, -1.0, 1.0))  # angle between the centre and each axis
    hi = np.cos(np.maximum(theta - radius, 0.0))
    lo = np.cos(np.minimum(theta + radius, np.pi))
    return lo, hi
