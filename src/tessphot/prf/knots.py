"""Where the PRF interpolation has its kinks, and exact bilinear interpolation between them.

:meth:`tessphot.prf.PRFModel.stamps` interpolates linearly between samples 1/9 px apart and
changes its stamp's pixel grid at half pixels, so anything linear in a star's PRF image (the
light in a set of pixels, a flux-weighted sum) is exactly bilinear in the star's position
between these knots: tabulated at them, it is interpolated without error.
"""

from __future__ import annotations

import math

import numpy as np

from tessphot.prf.models import OVERSAMPLE

#: The knots' offsets from an integer pixel: the samples and the half pixel, sorted.
_KNOT_OFFSETS = np.sort(np.append(np.arange(OVERSAMPLE) / OVERSAMPLE, 0.5))


def interpolation_knots(values: np.ndarray) -> np.ndarray:
    """Positions bracketing ``values`` where the PRF interpolation has its kinks.

    :meth:`tessphot.prf.PRFModel.stamps` interpolates linearly between samples 1/9 px apart
    (offsets ``k / OVERSAMPLE`` from an integer pixel) and changes its stamp's pixel grid at
    half pixels, so a star's aperture fraction is exactly bilinear between these knots.
    """
    lo, hi = float(values.min()), float(values.max())
    base = np.arange(math.floor(lo) - 1, math.ceil(hi) + 2, dtype=float)
    # In increasing order already: the offsets within a pixel are sorted and below 1.
    knots = (base[:, None] + _KNOT_OFFSETS).ravel()
    i0 = max(np.searchsorted(knots, lo, side="right") - 1, 0)
    i1 = min(np.searchsorted(knots, hi, side="left") + 1, knots.size)
    return knots[i0 : max(i1, i0 + 2)]


def knot_cell(knots: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The knot cell of each ``x`` and the fraction of the way across it."""
    i = np.clip(np.searchsorted(knots, x, side="right") - 1, 0, knots.size - 2)
    return i, (x - knots[i]) / (knots[i + 1] - knots[i])


def bilinear(
    knots_r: np.ndarray, knots_c: np.ndarray, table: np.ndarray, r: np.ndarray, c: np.ndarray
) -> np.ndarray:
    """Bilinear interpolation of ``table`` at the points ``(r, c)`` (inside the grid).

    The table is on the grid ``knots_r`` x ``knots_c`` (its first two axes; any further
    axes are interpolated alike, and follow the points' axis in the result).
    """
    i, fr = knot_cell(knots_r, r)
    j, fc = knot_cell(knots_c, c)
    extra = (1,) * (np.ndim(table) - 2)
    fr, fc = fr.reshape(fr.shape + extra), fc.reshape(fc.shape + extra)
    return (
        table[i, j] * (1 - fr) * (1 - fc)
        + table[i, j + 1] * (1 - fr) * fc
        + table[i + 1, j] * fr * (1 - fc)
        + table[i + 1, j + 1] * fr * fc
    )


def stacked_cells(
    tables: list[tuple[int, np.ndarray, np.ndarray]],
    points: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The cells of points in many tables stored one after the other (:func:`bilinear_stacked`).

    Parameters
    ----------
    tables : list of (int, ndarray, ndarray)
        Each table's start in the values (its values row-major from there) and its grid
        ``knots_r`` x ``knots_c``.
    points : list of (ndarray, ndarray)
        The points ``(r, c)`` in each table (inside its grid).

    Returns
    -------
    corner : ndarray of int
        Each point's cell, as the index of its first corner in the values; one table's
        points after the other's.
    step : ndarray of int
        The row length of each point's table (the cell's other corners are ``corner + 1``,
        ``corner + step`` and ``corner + step + 1``).
    fr, fc : ndarray
        The fractions of the way across the cell.
    """
    corner, step = [np.zeros(0, dtype=int)], [np.zeros(0, dtype=int)]
    fr, fc = [np.zeros(0)], [np.zeros(0)]
    for (start, knots_r, knots_c), (r, c) in zip(tables, points, strict=True):
        i, f_r = knot_cell(knots_r, r)
        j, f_c = knot_cell(knots_c, c)
        corner.append(start + i * knots_c.size + j)
        step.append(np.full(i.size, knots_c.size))
        fr.append(f_r)
        fc.append(f_c)
    return np.concatenate(corner), np.concatenate(step), np.concatenate(fr), np.concatenate(fc)


def cell_corners(
    cells: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], size: int
) -> np.ndarray:
    """Which of ``size`` values the interpolation in the cells (:func:`stacked_cells`) reads."""
    corner, step = cells[0], cells[1]
    used = np.zeros(size, dtype=bool)
    for index in (corner, corner + 1, corner + step, corner + step + 1):
        used[index] = True
    return used


def bilinear_stacked(
    values: np.ndarray, cells: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
) -> np.ndarray:
    """:func:`bilinear` in many tables stored one after the other, in one pass.

    Parameters
    ----------
    values : ndarray, shape (n,)
        The tables' values, each table row-major from its start.
    cells : (ndarray, ndarray, ndarray, ndarray)
        The points' cells in the tables (:func:`stacked_cells`).

    Returns
    -------
    ndarray
        The interpolated values of every table's points, one table after the other: those
        of :func:`bilinear`, value for value (the same operations in the same order).
    """
    k, n, fr_all, fc_all = cells
    return (
        values[k] * (1 - fr_all) * (1 - fc_all)
        + values[k + 1] * (1 - fr_all) * fc_all
        + values[k + n] * fr_all * (1 - fc_all)
        + values[k + n + 1] * fr_all * fc_all
    )
