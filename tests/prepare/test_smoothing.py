"""Time smoothing of the background mesh."""

import numpy as np

from tessphot.prepare.smoothing import smooth_in_time, smoothing_window


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


def _two_orbits(boxes=400, seed=2):
    """Two orbits of 30-min frames with a 1-day gap; the sky rises steeply to ~320 e-/s at
    the first orbit's end and falls from there at the second's start (as in sector 1)."""
    rng = np.random.default_rng(seed)
    t1 = np.arange(300) / 48.0
    t2 = t1[-1] + 1.0 + np.arange(300) / 48.0
    times = np.concatenate([t1, t2])
    ramp = np.concatenate([np.exp((t1 - t1[-1]) / 0.7), np.exp(-(t2 - t2[0]) / 0.7)])
    sky = 20.0 + 300.0 * ramp  # [e-/s]
    truth = np.broadcast_to(sky[:, None, None], (times.size, 1, boxes))
    noise = 0.05  # one frame's mesh noise [e-/s]
    meshes = truth + rng.normal(0.0, noise, truth.shape)
    return times, truth, meshes, np.full(truth.shape, noise), noise


def test_no_smoothing_across_the_orbit_gap():
    times, truth, meshes, error, noise = _two_orbits()
    valid = np.ones(times.size, bool)
    half = 3
    edge = range(300 - 2 * half, 300 + 2 * half)  # the frames whose window met the gap
    for k in edge:
        value, err = smooth_in_time(meshes, error, times, valid, k, half, 3.0)
        # Unbiased: the mean over the boxes within a quarter of one frame's noise (the
        # statistical scatter of that mean is err / sqrt(boxes) ~ 0.002; the parabola's
        # residual on this exponential ramp ~ 0.008) ...
        assert abs(np.mean(value - truth[k])) < 0.25 * noise
        # ... and each box within its stated uncertainty.
        assert np.std(value - truth[k]) < 1.3 * np.mean(err)
    # The same frames with the gap closed (one window over both orbits) are biased by far
    # more: the failure this guards against.
    closed = np.concatenate([times[:300], times[300:] - 1.0 + 1 / 48.0])
    biased = [
        abs(np.mean(smooth_in_time(meshes, error, closed, valid, k, half, 3.0)[0] - truth[k]))
        for k in edge
    ]
    assert max(biased) > 20 * 0.25 * noise


def test_each_orbit_smoothed_as_if_alone():
    """Splitting at the gap is the same as smoothing each orbit's frames on their own:
    bit-identical everywhere, and frames away from the gap as before."""
    times, _, meshes, error, _ = _two_orbits(boxes=20)
    valid = np.ones(times.size, bool)
    valid[[10, 150, 298, 305]] = False  # single missing estimates do not split
    half = 3
    for k in range(times.size):
        whole = smooth_in_time(meshes, error, times, valid, k, half, 3.0)
        s = slice(0, 300) if k < 300 else slice(300, None)
        j = k - s.indices(times.size)[0]
        alone = smooth_in_time(meshes[s], error[s], times[s], valid[s], j, half, 3.0)
        np.testing.assert_array_equal(whole[0], alone[0])
        np.testing.assert_array_equal(whole[1], alone[1])


def test_window_unchanged_without_gaps():
    times = np.arange(50) / 48.0
    times[20] = np.nan  # a frame without a time changes nothing either
    for half in (0, 1, 3, 9):
        for k in range(times.size):
            lo = min(max(k - half, 0), max(times.size - 2 * half - 1, 0))
            assert smoothing_window(times, k, half) == (lo, min(lo + 2 * half + 1, times.size))


def test_window_at_gaps():
    times = np.concatenate([np.arange(20), 25 + np.arange(20), 48 + np.arange(3)]) / 48.0
    half = 3  # a gap of 6 or 5 spacings splits (> 1 + half), one of 4 (three missing) not
    assert smoothing_window(times, 19, half) == (13, 20)
    assert smoothing_window(times, 20, half) == (20, 27)
    assert smoothing_window(times, 39, half) == (36, 43)  # the 4-spacing gap is bridged
    times[40:] += 1 / 48.0
    assert smoothing_window(times, 39, half) == (33, 40)
    assert smoothing_window(times, 41, half) == (40, 43)  # a short segment: all of it


def test_meshes_held_in_single_precision_are_smoothed_in_double():
    """Meshes held as the 32-bit floats they are stored in give the very smoothing of the
    same values held in 64 bits, with few frames in the window too."""
    times, _, meshes, error = _series(n=30)
    single, single_err = meshes.astype(np.float32), error.astype(np.float32)
    valid = np.ones(times.size, bool)
    valid[[5, 6, 12]] = False
    for k, half in ((0, 3), (6, 3), (20, 1), (29, 3), (6, 0)):
        a = smooth_in_time(single, single_err, times, valid, k, half, 3.0)
        b = smooth_in_time(
            single.astype(np.float64), single_err.astype(np.float64), times, valid, k, half, 3.0
        )
        for x, y in zip(a, b, strict=True):
            assert x.dtype == np.float64
            np.testing.assert_array_equal(x, y)
