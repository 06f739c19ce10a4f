"""The S/N-optimal aperture of a star, on small synthetic stamps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tessphot.evaluation.scoring.optimal import (
    full_bin_rms,
    full_bin_std,
    on_region,
    optimal_aperture,
    star_stamp,
)
from tessphot.lightcurve.diagnostics import rms_timescale
from tessphot.prf.analytic import AnalyticPRF

#: An FFI's exposure [s] and co-added frames, as the simulator's.
EXPOSURE = 1425.6
FRAMES = 720


def _brute_force(star, sky, read_noise):
    """Best S/N over every subset of a tiny stamp."""
    s = star.ravel() * EXPOSURE
    v = (star + sky).ravel() * EXPOSURE + FRAMES * read_noise**2
    best = (0.0, None)
    for bits in range(1, 2**s.size):
        chosen = np.array([(bits >> i) & 1 for i in range(s.size)], dtype=bool)
        snr = s[chosen].sum() / math.sqrt(v[chosen].sum())
        best = max(best, (snr, chosen), key=lambda x: x[0])
    return best


@pytest.mark.parametrize("flux", [30.0, 3e3, 3e5])
def test_optimal_aperture_is_the_best_subset(flux):
    """On a 3x3 stamp the ranked search finds the subset a brute force finds, faint or
    bright."""
    rng = np.random.default_rng(4)
    star = flux * rng.dirichlet(np.ones(9)).reshape(3, 3)
    sky = rng.uniform(20, 200, (3, 3))
    best = optimal_aperture(star, sky, 10.0, exposure_time=EXPOSURE, n_frames=FRAMES)
    snr, chosen = _brute_force(star, sky, 10.0)
    assert best.noise_cadence == pytest.approx(1 / snr, rel=1e-12)
    np.testing.assert_array_equal(best.mask.ravel(), chosen)
    assert best.npix == chosen.sum()


def test_noise_components_add_up_and_scale_with_time():
    star = np.array([[0.0, 100.0, 0.0], [100.0, 800.0, 100.0], [0.0, 100.0, 0.0]])
    sky = np.full((3, 3), 50.0)
    best = optimal_aperture(star, sky, 9.0, exposure_time=EXPOSURE, n_frames=FRAMES)
    assert best.npix == 5 and best.enclosed == pytest.approx(1.0)
    signal = 1200.0 * EXPOSURE
    assert best.shot == pytest.approx(math.sqrt(signal) / signal)
    assert best.sky == pytest.approx(math.sqrt(5 * 50.0 * EXPOSURE) / signal)
    assert best.read == pytest.approx(math.sqrt(5 * FRAMES * 81.0) / signal)
    assert best.noise_cadence == pytest.approx(math.hypot(best.shot, best.sky, best.read))
    # One hour of 30-min cadences averages two of them.
    assert best.noise(3600.0, 1800.0) == pytest.approx(best.noise_cadence / math.sqrt(2))
    assert best.noise(1800.0, 1800.0) == best.noise_cadence


def test_faint_stars_on_a_bright_sky_get_small_apertures():
    prf = AnalyticPRF()
    sizes = []
    for flux in (1e2, 1e3, 1e4, 1e5):
        image, _ = star_stamp(prf, 1000.3, 1000.6, flux)
        sizes.append(
            optimal_aperture(
                image, np.full(image.shape, 100.0), 10.0, exposure_time=EXPOSURE, n_frames=FRAMES
            ).npix
        )
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_star_stamp_holds_the_star():
    image, (r0, c0) = star_stamp(AnalyticPRF(), 500.2, 700.7, 1234.0)
    assert image.sum() == pytest.approx(1234.0)
    peak = np.unravel_index(np.argmax(image), image.shape)
    assert (r0 + peak[0], c0 + peak[1]) == (500, 701)


def test_bad_stamps_are_refused():
    with pytest.raises(ValueError, match="shape"):
        optimal_aperture(np.ones((3, 3)), np.ones((2, 2)), 10.0, exposure_time=1, n_frames=1)
    with pytest.raises(ValueError, match="no light"):
        optimal_aperture(np.zeros((3, 3)), np.ones((3, 3)), 10.0, exposure_time=1, n_frames=1)


def test_full_bin_rms_does_not_read_missing_cadences_as_noise():
    """White noise with a fifth of the cadences missing at random: the plain 1-hour rms
    reads high (half-filled bins), the full-bin one gives sigma / sqrt(2)."""
    rng = np.random.default_rng(11)
    t = np.arange(20000) / 48.0
    keep = rng.uniform(size=t.size) > 0.2
    y = rng.standard_normal(t.size)[keep]
    full = full_bin_rms(t[keep], y, 1 / 24, 1 / 48)
    plain = rms_timescale(t[keep], y, 1 / 24)
    assert full == pytest.approx(1 / math.sqrt(2), rel=0.03)
    assert plain > 1.04 * full
    # Without missing cadences both are the same.
    y = rng.standard_normal(t.size)
    assert full_bin_rms(t, y, 1 / 24, 1 / 48) == pytest.approx(rms_timescale(t, y, 1 / 24))
    assert math.isnan(full_bin_rms(t[:1], y[:1], 1 / 24, 1 / 48))


def test_full_bin_std_is_smooth_where_the_robust_rms_jumps():
    """Both read sigma / sqrt(2) of white noise on 1-hour bins; a perturbation of 3 % of
    the noise moves the robust one by about a percent, the standard deviation ten times
    less (the two storages of one sector are compared with it)."""
    rng = np.random.default_rng(12)
    t = np.arange(1200) / 48.0
    robust, smooth = [], []
    for _ in range(200):
        y = rng.standard_normal(t.size)
        moved = y + 0.03 * rng.standard_normal(t.size)
        robust.append(full_bin_rms(t, moved, 1 / 24, 1 / 48) / full_bin_rms(t, y, 1 / 24, 1 / 48))
        smooth.append(full_bin_std(t, moved, 1 / 24, 1 / 48) / full_bin_std(t, y, 1 / 24, 1 / 48))
    assert full_bin_std(t, y, 1 / 24, 1 / 48) == pytest.approx(1 / math.sqrt(2), rel=0.1)
    assert np.std(robust) > 0.005
    assert np.std(smooth) < 0.1 * np.std(robust)
    assert math.isnan(full_bin_std(t[:1], y[:1], 1 / 24, 1 / 48))


def test_a_star_at_the_edge_of_the_data_keeps_only_its_pixels_on_it():
    """The stamp is cut to the data region: a star half off the data gets the optimal
    aperture of its half on the data (noisier, and no pixel off the data)."""
    image = np.arange(1.0, 26.0).reshape(5, 5)
    inside, origin = on_region(image, (10, 20), (12, 100, 0, 23))
    np.testing.assert_array_equal(inside, image[2:, :3])
    assert origin == (12, 20)
    assert on_region(image, (10, 20), None)[0] is image
    assert on_region(image, (10, 20), (0, 5, 0, 100))[0].size == 0
    star, (r0, c0) = star_stamp(AnalyticPRF(), 50.4, 50.3, 300.0)
    whole = optimal_aperture(
        star, np.full(star.shape, 100.0), 10.0, exposure_time=EXPOSURE, n_frames=FRAMES
    )
    # The data end between columns 50 and 51: the star's brighter half is off it.
    cut, _ = on_region(star, (r0, c0), (0, 1000, 0, 51))
    half = optimal_aperture(
        cut, np.full(cut.shape, 100.0), 10.0, exposure_time=EXPOSURE, n_frames=FRAMES
    )
    assert cut.shape[1] == 51 - c0
    assert half.npix < whole.npix
    assert half.noise_cadence > whole.noise_cadence
