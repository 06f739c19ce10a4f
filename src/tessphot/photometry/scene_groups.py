"""The mean PRF image of a star over groups of cadences (the noise-optimal aperture's scene).

As :func:`tessphot.photometry.scene.aperture_fractions`, the star's image is tabulated at
the knots of the PRF interpolation (:mod:`tessphot.prf.knots`) over the range of its motion
and interpolated exactly between them.
"""

from __future__ import annotations

import numpy as np

from tessphot.photometry.scene import GRID_MAX_POINTS
from tessphot.prf import PRFModel, prf_images
from tessphot.prf.knots import interpolation_knots, knot_cell


def group_mean_images(
    prf: PRFModel,
    rows: np.ndarray,
    cols: np.ndarray,
    node: tuple[float, float],
    group: np.ndarray,
    n_groups: int,
    origin: tuple[int, int],
    shape: tuple[int, int],
) -> np.ndarray:
    """Mean unit-flux PRF image of one star over each group of cadences.

    The star's image is tabulated at the knots of the PRF interpolation over the range of
    its motion (exact bilinear interpolation, as in :func:`aperture_fractions`) and the
    interpolation weights of the group's cadences are summed, so the mean is exact however
    the star moves within a group (a pointing jump in the middle of it).

    Parameters
    ----------
    prf : PRFModel
    rows, cols : ndarray, shape (n_cadences,)
        Science-area positions of the star (NaN: unknown, left out).
    node : (float, float)
        Position choosing the star's PRF shape.
    group : ndarray of int, shape (n_cadences,)
        Each cadence's group (-1: none).
    n_groups : int
    origin : (int, int)
        Science-area (row, column) of the box's pixel ``[0, 0]``.
    shape : (int, int)
        (rows, columns) of the box.

    Returns
    -------
    ndarray, shape (n_groups, rows, cols)
        NaN for a group without a known position.
    """
    ok = (group >= 0) & np.isfinite(rows) & np.isfinite(cols)
    out = np.full((n_groups, shape[0] * shape[1]), np.nan)
    if not ok.any():
        return out.reshape(n_groups, *shape)
    knots_r, knots_c = interpolation_knots(rows[ok]), interpolation_knots(cols[ok])
    members = group[ok]
    if max(knots_r.size, knots_c.size) > GRID_MAX_POINTS:
        # Moving too far for a table: every cadence rendered and summed into its group.
        images = prf_images(
            prf,
            rows[ok][:, None],
            cols[ok][:, None],
            np.array([node[0]]),
            np.array([node[1]]),
            origin,
            shape,
        )[:, 0]
        sums = np.zeros((n_groups, images.shape[1]))
        np.add.at(sums, members, images)
    else:
        # Each group's summed interpolation weights on the knots, times the knots' images
        # (only those of the cells the star visits are rendered: the others weigh 0).
        weights = np.zeros((n_groups, knots_r.size * knots_c.size))
        visited = np.zeros(knots_r.size * knots_c.size, dtype=bool)
        i, fr = knot_cell(knots_r, rows[ok])
        j, fc = knot_cell(knots_c, cols[ok])
        for di, dj, w in (
            (0, 0, (1 - fr) * (1 - fc)),
            (0, 1, (1 - fr) * fc),
            (1, 0, fr * (1 - fc)),
            (1, 1, fr * fc),
        ):
            corner = (i + di) * knots_c.size + j + dj
            np.add.at(weights, (members, corner), w)
            visited[corner] = True
        table = prf_images(
            prf,
            np.repeat(knots_r, knots_c.size)[:, None],
            np.tile(knots_c, knots_r.size)[:, None],
            np.array([node[0]]),
            np.array([node[1]]),
            origin,
            shape,
            wanted=visited[:, None],
        )[:, 0]
        sums = weights @ table
    counts = np.bincount(members, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = sums / counts[:, None]
    return out.reshape(n_groups, *shape)
