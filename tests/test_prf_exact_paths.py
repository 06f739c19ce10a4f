"""Faster paths of the PRF sums and the knot interpolation give the same values, bit for bit."""

from __future__ import annotations

import numpy as np

from tessphot.prf.knots import bilinear, bilinear_stacked, interpolation_knots


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
    got = bilinear_stacked(np.concatenate(values), tables, points)
    np.testing.assert_array_equal(got, np.concatenate(expected))
    assert bilinear_stacked(np.zeros(0), [], []).size == 0
