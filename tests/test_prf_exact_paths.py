"""Faster paths of the PRF sums and the knot interpolation give the same values, bit for bit."""

from __future__ import annotations

import numpy as np

from tessphot.prf.boxes import _stamp_weights
from tessphot.prf.knots import (
    bilinear,
    bilinear_stacked,
    cell_corners,
    interpolation_knots,
    stacked_cells,
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


def test_stacked_bilinear_is_each_tables_own():
    rng = np.random.default_rng(11)
    tables, points, expected, values = [], [], [], []
    start = 0
    for _ in range(6):
        r = 1000.3 + rng.normal(0, 0.3, 50)
        c = 512.7 + rng.normal(0, 0.2, 50)
        knots_r, knots_c = interpolation_knots(r), interpolation_knots(c)
        table = rng.random((knots_r.size, knots_c.size))
        tables.append((start, knots_r, knots_c))
        points.append((r, c))
        values.append(table.ravel())
        expected.append(bilinear(knots_r, knots_c, table, r, c))
        start += table.size
    cells = stacked_cells(tables, points)
    got = bilinear_stacked(np.concatenate(values), cells)
    np.testing.assert_array_equal(got, np.concatenate(expected))
    # Only the cells' corners are read: the other values may be anything.
    used = cell_corners(cells, start)
    assert 0 < used.sum() < start
    garbled = np.where(used, np.concatenate(values), np.nan)
    np.testing.assert_array_equal(bilinear_stacked(garbled, cells), got)
    assert bilinear_stacked(np.zeros(0), stacked_cells([], [])).size == 0
