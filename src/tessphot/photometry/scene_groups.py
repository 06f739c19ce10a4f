"""The noise-optimal aperture's scene: the stars' predicted light per group of cadences.

:func:`group_scene` predicts the target's and the other stars' light on a box of the stamp
for each group of cadences (:class:`GroupScene`); :func:`group_mean_images` gives one
star's mean PRF image over each group.

As :func:`tessphot.photometry.scene.aperture_fractions`, the star's image is tabulated at
the knots of the PRF interpolation (:mod:`tessphot.prf.knots`) over the range of its motion
and interpolated exactly between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tessphot.constants import tmag_to_flux
from tessphot.photometry.scene import GRID_MAX_POINTS
from tessphot.photometry.target import Target
from tessphot.prf import PRFModel, prf_images
from tessphot.prf.knots import interpolation_knots, knot_cell


@dataclass(frozen=True)
class GroupImages:
    """Mean images of groups of consecutive good cadences.

    Attributes
    ----------
    mean : ndarray, shape (n_groups, rows, cols)
        Mean image of each group [e-/s] (NaN where a pixel has no data in the group).
    cadences : ndarray, shape (n_groups,)
        Good cadences averaged in each group.
    """

    mean: np.ndarray
    cadences: np.ndarray


@dataclass(frozen=True)
class GroupScene:
    """The catalogued stars' predicted light per pixel for each group of cadences.

    Attributes
    ----------
    target : ndarray, shape (n_groups, rows, cols)
        The target's light [e-/s] (PRF at its mean position in the group, catalogue flux).
    others : ndarray, shape (n_groups, rows, cols)
        The other stars' light [e-/s].
    corrected : bool
        Whether the photometry corrects the flux for the motion with these predictions
        (the offset of the others' light and the scale of the target's fraction).
    """

    target: np.ndarray
    others: np.ndarray
    corrected: bool


def group_scene(
    target: Target,
    box_origin: tuple[int, int],
    box_shape: tuple[int, int],
    groups: tuple[np.ndarray, int],
    *,
    corrected: bool,
) -> GroupScene | None:
    """The stars' predicted light on a box of the stamp per group of cadences.

    Positions from the jitter model averaged over each group's good cadences, fluxes from
    the catalogue, the target's PRF (None when it is not trusted, or without positions).

    Parameters
    ----------
    target : Target
    box_origin : (int, int)
        Science-area (row, column) of the box's pixel ``[0, 0]``.
    box_shape : (int, int)
        (rows, columns) of the box.
    groups : (ndarray, int)
        Each cadence's group and their number (:func:`cadence_groups`).
    corrected : bool
        Whether the photometry corrects the flux for the motion.
    """
    if not target.prf_trusted:
        return None
    source = target.source
    idx = target.stars_reaching(box_origin, box_shape)
    stars = source.stars
    rows, cols = source.motion.positions(stars.row[idx], stars.col[idx], source.time)
    group, n_groups = groups
    onehot = (group[:, None] == np.arange(n_groups)[None, :]).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        known = np.isfinite(rows) & np.isfinite(cols)
        n = onehot.T @ known
        group_rows = (onehot.T @ np.where(known, rows, 0.0)) / n
        group_cols = (onehot.T @ np.where(known, cols, 0.0)) / n
    if not (np.isfinite(group_rows[:, 0]) & np.isfinite(group_cols[:, 0])).all():
        return None
    group_rows = np.where(np.isfinite(group_rows), group_rows, stars.row[idx][None, :])
    group_cols = np.where(np.isfinite(group_cols), group_cols, stars.col[idx][None, :])
    flux = tmag_to_flux(stars.tmag[idx])
    own = flux[0] * group_mean_images(
        target.prf,
        rows[:, 0],
        cols[:, 0],
        (stars.row[idx][0], stars.col[idx][0]),
        group,
        n_groups,
        box_origin,
        box_shape,
    )
    # The others' light matters less: their PRFs at their mean positions in the group.
    images = prf_images(
        target.prf,
        group_rows[:, 1:],
        group_cols[:, 1:],
        stars.row[idx][1:],
        stars.col[idx][1:],
        box_origin,
        box_shape,
    )
    others = np.tensordot(images, flux[1:], axes=([1], [0])).reshape(own.shape)
    return GroupScene(own, others, corrected)


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
