"""The jitter measurement: the motion fitted to the stars' positions."""

import numpy as np
import pytest

from tessphot.config.prepare import MotionSettings
from tessphot.prepare.motion import (
    apply_params,
    fit_motion,
    radial_sigma,
)


def _stars_with_outliers(rng, n_stars, sigma, n_outliers, outlier_sigma):
    """Reference positions, their positions after a small affine motion with Gaussian
    noise of ``sigma`` per axis, and the indices of stars placed ``outlier_sigma`` sigma
    from their true position instead, in a random direction."""
    ref = rng.uniform(0.0, 2000.0, (n_stars, 2))
    centre = (1000.0, 1000.0)
    params = np.array([1.0 + 2e-5, -3e-5, 3e-5, 1.0 - 1e-5, 0.31, -0.17])
    true = apply_params(params, ref, centre)
    pos = true + rng.normal(0.0, sigma, (n_stars, 2))
    outliers = rng.choice(n_stars, n_outliers, replace=False)
    angle = rng.uniform(0.0, 2 * np.pi, n_outliers)
    offset = outlier_sigma * sigma * np.column_stack([np.cos(angle), np.sin(angle)])
    pos[outliers] = true[outliers] + offset
    return ref, pos, centre, params, outliers


def test_radial_sigma_of_a_gaussian():
    """The per-axis sigma from the median length of 2-D Gaussian residuals."""
    rng = np.random.default_rng(5)
    radii = np.hypot(*rng.normal(0.0, 0.03, (2, 200_000)))
    # The median of 200 000 Rayleigh draws scatters by ~0.2 %.
    assert radial_sigma(radii) == pytest.approx(0.03, rel=0.01)


@pytest.mark.parametrize(("clip_sigma", "clipped"), [(4.0, True), (6.0, False)])
def test_outliers_at_five_sigma(clip_sigma, clipped):
    """Stars 5 sigma off the motion are rejected with clip_sigma = 4, kept with 6."""
    rng = np.random.default_rng(11)
    sigma = 0.02
    n_stars, n_outliers = 400, 12
    ref, pos, centre, _, outliers = _stars_with_outliers(rng, n_stars, sigma, n_outliers, 5.0)
    settings = MotionSettings(clip_sigma=clip_sigma, clip_passes=5)
    _, model, _, n = fit_motion(ref, pos, centre, settings)
    assert model == "affine"
    # The clean stars' chance to lie beyond 4 sigma is exp(-8) = 3e-4 each: ~0 of 388.
    expected = n_stars - n_outliers if clipped else n_stars
    assert expected - 1 <= n <= expected


def test_clean_gaussian_keeps_all_stars():
    """No outliers: the rejection at 4 sigma keeps ~all stars (exp(-8) of them lost)."""
    rng = np.random.default_rng(12)
    ref, pos, centre, truth, _ = _stars_with_outliers(rng, 2000, 0.02, 0, 0.0)
    params, _, rms, n = fit_motion(ref, pos, centre, MotionSettings(clip_passes=5))
    assert n >= 1997  # expected loss 2000 * exp(-8) = 0.7 stars
    assert rms == pytest.approx(0.02 * np.sqrt(2), rel=0.05)
    np.testing.assert_allclose(params[4:], truth[4:], atol=3 * 0.02 / np.sqrt(2000) * 3)
