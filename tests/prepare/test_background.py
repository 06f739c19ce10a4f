"""Time smoothing of the background mesh."""

import numpy as np

from tessphot.prepare.background import smooth_in_time


def _series(n=40, boxes=200, seed=0):
    rng = np.random.default_rng(seed)
    times = np.arange(n) / 48.0  # 30-min frames [d]
    ramp = 40.0 * np.exp(-times / 0.25)  # an orbit-start scattered-light ramp [e-/s]
    truth = np.broadcast_to((20.0 + ramp)[:, None, None], (n, 1, boxes))
    error = np.full(truth.shape, 0.05)
    meshes = truth + rng.normal(0.0, 0.05, truth.shape)
    return times, truth, meshes, error


def test_parabola_where_the_ramp_bends_line_elsewhere():
    times, truth, meshes, error = _series(n=100)
    valid = np.ones(times.size, bool)
    half = 3
    for k in (0, 3, 6, 10):  # the steep part: a straight line over 7 frames cuts the bend
        line, _ = smooth_in_time(meshes, error, times, valid, k, half)
        adaptive, _ = smooth_in_time(meshes, error, times, valid, k, half, 3.0)
        bias_line = np.mean(line - truth[k])
        bias_adaptive = np.mean(adaptive - truth[k])
        assert abs(bias_line) > 0.2
        assert abs(bias_adaptive) < 0.1 * abs(bias_line)
        assert abs(bias_adaptive) < 0.5 * 0.05  # half the noise of one frame's mesh
    k = 90  # flat: the line's smaller noise is kept
    line, _ = smooth_in_time(meshes, error, times, valid, k, half)
    adaptive, _ = smooth_in_time(meshes, error, times, valid, k, half, 3.0)
    assert np.mean(adaptive != line) < 0.05
    assert np.std(adaptive - truth[k]) < 1.2 * 0.05 / np.sqrt(2 * half + 1)


def test_few_frames_and_gaps():
    times, truth, meshes, error = _series(n=3)
    valid = np.array([True, False, True])
    value, err = smooth_in_time(meshes, error, times, valid, 1, 3, 3.0)
    np.testing.assert_allclose(value, meshes[[0, 2]].mean(axis=0))
    value, err = smooth_in_time(meshes, error, times, np.zeros(3, bool), 1, 3, 3.0)
    assert np.isnan(value).all() and np.isnan(err).all()
