"""Faster paths of the PRF sums and the knot interpolation give the same values, bit for bit."""

from __future__ import annotations

import numpy as np

from tessphot.prf.boxes import _stamp_weights
from tessphot.prf.knots import (
    _KNOT_OFFSETS,
    bilinear,
    bilinear_stacked,
    cell_corners,
    interpolation_knots,
    knot_cell,
    knot_spans,
    span_cells,
    span_knots,
)
from tessphot.prf.models import HALF_WIDTH

SIDE = 2 * HALF_WIDTH + 1


def _gathered(weights: np.ndarray, rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
    """The weights under the stamps by clipped fancy indexing (the reference path)."""
    pad = SIDE
    padded = np.pad(weights, pad)
    rr = np.clip(rr + pad, 0, padded.shape[0] - 1)
    cc = np.clip(cc + pad, 0, padded.shape[1] - 1)
    return padded[rr[:, :, None], cc[:, None, :]]


def test_stamp_weights_are_the_gathered_ones():
    rng = np.random.default_rng(7)
    weights = (rng.random((9, 6)) > 0.4).astype(float) * rng.random((9, 6))
    k = np.arange(SIDE)
    # Stamps reaching the box (the windows), then one beyond the padding (the fallback).
    for r0 in (rng.integers(-SIDE + 1, 9, 200), np.array([-SIDE - 3, 0, 40])):
        c0 = rng.integers(-SIDE + 1, 6, r0.size)
        rr, cc = r0[:, None] + k, c0[:, None] + k
        got = _stamp_weights(weights, rr, cc)
        assert got.shape == (r0.size, SIDE, SIDE)
        np.testing.assert_array_equal(got, _gathered(weights, rr, cc))


def _reference_knots(values: np.ndarray) -> np.ndarray:
    """The knots bracketing ``values``, searched in a lattice of whole pixels' knots."""
    lo, hi = float(values.min()), float(values.max())
    base = np.arange(np.floor(lo) - 1, np.ceil(hi) + 2)
    knots = (base[:, None] + _KNOT_OFFSETS).ravel()
    i0 = max(np.searchsorted(knots, lo, side="right") - 1, 0)
    i1 = min(np.searchsorted(knots, hi, side="left") + 1, knots.size)
    return knots[i0 : max(i1, i0 + 2)]


def test_knot_spans_are_the_lattice_searched():
    rng = np.random.default_rng(5)
    for trial in range(3000):
        centre = rng.uniform(-5.0, 2100.0)
        if trial % 3 == 0:  # on a knot exactly (n + offset, rounded as summed)
            centre = np.floor(centre) + _KNOT_OFFSETS[rng.integers(0, _KNOT_OFFSETS.size)]
        width = rng.choice([0.0, 1e-9, 0.01, 0.3, 4.0])
        values = centre + rng.uniform(0.0, width, rng.integers(1, 20))
        expected = _reference_knots(values)
        np.testing.assert_array_equal(interpolation_knots(values), expected)
        first, size = knot_spans(np.array([values.min()]), np.array([values.max()]))
        knots, start = span_knots(first, size)
        np.testing.assert_array_equal(knots, expected)
        each = np.zeros(values.size, dtype=int)
        i, frac = span_cells(values, first[each], size[each], knots, start[each])
        ref_i, ref_frac = knot_cell(expected, values)
        np.testing.assert_array_equal(i, ref_i)
        np.testing.assert_array_equal(frac, ref_frac)


def test_many_spans_at_once_are_each_spans_own():
    rng = np.random.default_rng(6)
    groups = [
        900.0 + rng.uniform(0, 200) + rng.normal(0, 0.2, rng.integers(1, 40)) for _ in range(30)
    ]
    lo, hi = np.array([g.min() for g in groups]), np.array([g.max() for g in groups])
    first, size = knot_spans(lo, hi)
    knots, start = span_knots(first, size)
    each = np.repeat(np.arange(len(groups)), [g.size for g in groups])
    x = np.concatenate(groups)
    i, frac = span_cells(x, first[each], size[each], knots, start[each])
    for k, g in enumerate(groups):
        own = _reference_knots(g)
        np.testing.assert_array_equal(knots[start[k] : start[k] + size[k]], own)
        ref_i, ref_frac = knot_cell(own, g)
        np.testing.assert_array_equal(i[each == k], ref_i)
        np.testing.assert_array_equal(frac[each == k], ref_frac)


def test_stacked_bilinear_is_each_tables_own():
    rng = np.random.default_rng(11)
    corners, steps, fracs_r, fracs_c, expected, values = [], [], [], [], [], []
    start = 0
    for _ in range(6):
        r = 1000.3 + rng.normal(0, 0.3, 50)
        c = 512.7 + rng.normal(0, 0.2, 50)
        knots_r, knots_c = interpolation_knots(r), interpolation_knots(c)
        table = rng.random((knots_r.size, knots_c.size))
        first_r, size_r = knot_spans(np.array([r.min()]), np.array([r.max()]))
        first_c, size_c = knot_spans(np.array([c.min()]), np.array([c.max()]))
        i, fr = span_cells(r, first_r, size_r, *span_knots(first_r, size_r))
        j, fc = span_cells(c, first_c, size_c, *span_knots(first_c, size_c))
        corners.append(start + i * knots_c.size + j)
        steps.append(np.full(r.size, knots_c.size))
        fracs_r.append(fr)
        fracs_c.append(fc)
        values.append(table.ravel())
        expected.append(bilinear(knots_r, knots_c, table, r, c))
        start += table.size
    cells = tuple(np.concatenate(x) for x in (corners, steps, fracs_r, fracs_c))
    got = bilinear_stacked(np.concatenate(values), cells)
    np.testing.assert_array_equal(got, np.concatenate(expected))
    # Only the cells' corners are read: the other values may be anything.
    used = cell_corners(cells, start)
    assert 0 < used.sum() < start
    garbled = np.where(used, np.concatenate(values), np.nan)
    np.testing.assert_array_equal(bilinear_stacked(garbled, cells), got)
    empty = (np.zeros(0, dtype=int), np.zeros(0, dtype=int), np.zeros(0), np.zeros(0))
    assert bilinear_stacked(np.zeros(0), empty).size == 0
