"""Where the PRF interpolation has its kinks, and exact bilinear interpolation between them.

:meth:`tessphot.prf.PRFModel.stamps` interpolates linearly between samples 1/9 px apart and
changes its stamp's pixel grid at half pixels, so anything linear in a star's PRF image (the
light in a set of pixels, a flux-weighted sum) is exactly bilinear in the star's position
between these knots: tabulated at them, it is interpolated without error.
"""

from __future__ import annotations

import numpy as np

from tessphot.prf.models import OVERSAMPLE

#: The knots' offsets from an integer pixel: the samples and the half pixel, sorted.
_KNOT_OFFSETS = np.sort(np.append(np.arange(OVERSAMPLE) / OVERSAMPLE, 0.5))


#: Knots per pixel: the knot ``n + _KNOT_OFFSETS[k]`` has lattice index ``n * 10 + k``.
_PER_PIXEL = _KNOT_OFFSETS.size
#: The offset of each knot's successor from the knot's pixel (the next pixel's first: 1).
_NEXT_OFFSETS = np.append(_KNOT_OFFSETS[1:], 1.0)


def knot_values(index: np.ndarray) -> np.ndarray:
    """The knots of lattice indices ``n * 10 + k``: ``n + offset k``, rounded as summed."""
    n, k = np.divmod(np.asarray(index, dtype=np.int64), _PER_PIXEL)
    return n.astype(float) + _KNOT_OFFSETS[k]


def knot_below(x: np.ndarray) -> np.ndarray:
    """Lattice index of the largest knot at or below each (finite) ``x``."""
    x = np.asarray(x, dtype=float)
    n = np.floor(x)
    # x - n is exact, so the offset found is at or below it; n + the next offset is
    # rounded and may still reach x.
    k = np.searchsorted(_KNOT_OFFSETS, x - n, "right") - 1
    return n.astype(np.int64) * _PER_PIXEL + k + (n + _NEXT_OFFSETS[k] <= x)


def knot_spans(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The knots bracketing ``[lo, hi]`` (each pair), as a first lattice index and a count.

    The last knot at or below ``lo`` to the first at or above ``hi``, at least two: those of
    :func:`interpolation_knots`, many ranges at once.
    """
    first = knot_below(lo)
    below_hi = knot_below(hi)
    last = below_hi + (knot_values(below_hi) < np.asarray(hi, dtype=float))
    return first, np.maximum(last - first, 1) + 1


def span_knots(first: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The knots of many spans (:func:`knot_spans`) one after the other, and their starts."""
    starts = np.concatenate([[0], np.cumsum(size)])
    span = np.repeat(np.arange(size.size), size)
    return knot_values(first[span] + np.arange(starts[-1]) - starts[span]), starts[:-1]


def span_cells(
    x: np.ndarray, first: np.ndarray, size: np.ndarray, knots: np.ndarray, start: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`knot_cell` of points in their spans, many spans at once.

    Each point's span is given by its ``first`` lattice index and ``size``
    (:func:`knot_spans`), and the ``start`` of its knots in ``knots`` (:func:`span_knots`).
    Returns each point's cell (counted from its span's first knot) and the fraction of the
    way across it, value for value those of :func:`knot_cell`.
    """
    i = np.clip(knot_below(x) - first, 0, size - 2)
    left = knots[start + i]
    return i, (x - left) / (knots[start + i + 1] - left)


def interpolation_knots(values: np.ndarray) -> np.ndarray:
    """Positions bracketing ``values`` where the PRF interpolation has its kinks.

    :meth:`tessphot.prf.PRFModel.stamps` interpolates linearly between samples 1/9 px apart
    (offsets ``k / OVERSAMPLE`` from an integer pixel) and changes its stamp's pixel grid at
    half pixels, so a star's aperture fraction is exactly bilinear between these knots.
    """
    first, size = knot_spans(np.min(values), np.max(values))
    return knot_values(np.arange(first, first + size))


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


def cell_corners(
    cells: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], size: int
) -> np.ndarray:
    """Which of ``size`` values the interpolation in the cells (:func:`bilinear_stacked`) reads."""
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
        Each point's cell as the index of its first corner in ``values``, the row length of
        its table (the other corners are ``corner + 1``, ``corner + step`` and
        ``corner + step + 1``), and the fractions of the way across it in row and column
        (:func:`span_cells`).

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
