"""MotionModel: remembered parameters and in-place positions give the same values."""

from __future__ import annotations

import numpy as np

from tessphot.prepare.motion import MotionModel


def _model(rng: np.random.Generator) -> MotionModel:
    times = np.sort(rng.random(200)) * 27
    params = np.column_stack(
        [
            1 + 1e-4 * rng.normal(size=200),
            1e-4 * rng.normal(size=200),
            1e-4 * rng.normal(size=200),
            1 + 1e-4 * rng.normal(size=200),
            0.3 * rng.normal(size=200),
            0.3 * rng.normal(size=200),
        ]
    )
    params[5] = np.nan  # a frame without parameters
    return MotionModel(params, times, (1024.0, 1024.0))


def test_remembered_parameters_are_recomputed_ones():
    rng = np.random.default_rng(5)
    model = _model(rng)
    t = np.sort(rng.random(300)) * 28
    t[7] = np.nan
    first = model.params_at(t)
    again = model.params_at(t)  # remembered
    np.testing.assert_array_equal(first, again)
    again[:] = 0.0  # a copy: the remembered parameters stay
    np.testing.assert_array_equal(model.params_at(t), first)
    other = t + 0.5
    fresh = MotionModel(model.params, model.times, model.centre).params_at(other)
    np.testing.assert_array_equal(model.params_at(other), fresh)


def test_positions_are_the_plain_formula():
    rng = np.random.default_rng(6)
    model = _model(rng)
    t = np.sort(rng.random(300)) * 27
    rows, cols = 1024 + 900 * rng.normal(size=40), 1024 + 900 * rng.normal(size=40)
    moved_r, moved_c = model.positions(rows, cols, t)
    p = model.params_at(t)
    dr, dc = rows[None, :] - 1024.0, cols[None, :] - 1024.0
    np.testing.assert_array_equal(moved_r, p[:, 0:1] * dr + p[:, 1:2] * dc + (1024.0 + p[:, 4:5]))
    np.testing.assert_array_equal(moved_c, p[:, 2:3] * dr + p[:, 3:4] * dc + (1024.0 + p[:, 5:6]))
