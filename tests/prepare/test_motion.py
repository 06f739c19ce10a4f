"""The jitter measurement: PRF-calibrated centroids."""

import numpy as np
import pytest

from tessphot.config.prepare import MotionSettings
from tessphot.prepare.motion import (
    apply_params,
    calibrate_centroids,
    fit_motion,
    measure_centroids,
    radial_sigma,
)
from tessphot.prf import load_prf

ORIGIN = (900, 900)
SHAPE = (300, 300)


def _grid_of_stars(rng):
    g = np.arange(920.0, 1180.0, 20.0)
    rows, cols = (a.ravel() + rng.uniform(-0.5, 0.5, a.size) for a in np.meshgrid(g, g))
    return rows, cols


@pytest.mark.parametrize("spoc", [False, True])
def test_calibrated_centroids_follow_the_star(spoc, request):
    """Box centroids move ~10 % less than the star; through the PRF they are exact (the
    PRF's centroid sums interpolated between its own knots: a spline on a 0.1-px grid left
    0.8 mpx with the SPOC PRF)."""
    prf = load_prf(request.getfixturevalue("prf_dir") if spoc else None, 1, 1, 4)
    rng = np.random.default_rng(3)
    rows, cols = _grid_of_stars(rng)
    shifts = rng.uniform(-0.6, 0.6, (12, 2))
    measured = np.empty((len(shifts), rows.size, 2))
    for k, (dr, dc) in enumerate(shifts):
        image = prf.render(rows + dr, cols + dc, 1e4, SHAPE, ORIGIN, node_rows=rows, node_cols=cols)
        measured[k] = measure_centroids(image, rows, cols, ORIGIN, 2)
    measured[3, 5] = np.nan
    positions = calibrate_centroids(measured, rows, cols, prf, 2)
    truth = np.stack([rows + shifts[:, :1], cols + shifts[:, 1:]], axis=2)
    raw = measured - truth
    err = positions - truth
    assert np.isnan(positions[3, 5]).all()
    ok = np.isfinite(err)
    # The motion between frames is what matters: errors relative to the first frame.
    raw_motion = np.sqrt(np.nanmean((raw - raw[:1]) ** 2))
    motion = np.sqrt(np.nanmean((err - err[:1]) ** 2))
    print(f"\ncentroid motion error: raw {raw_motion:.4f} px, calibrated {motion:.5f} px")
    assert raw_motion > 0.01
    assert motion < 5e-5
    assert np.abs(err[ok]).max() < 1e-4


@pytest.mark.parametrize("spoc", [False, True])
def test_calibrated_centroids_far_from_the_box_centre(spoc, request):
    """Boxes are placed where the catalogue puts the stars; the pointing can carry them
    far from there (simulated sector 1: 0.9 px at the middle of an orbit, 1.4 px at its
    end). Up to the box's edge the calibration follows (with a range of 1.5 px it was
    clipped: 0.08 px off, and every aperture's motion correction with it)."""
    prf = load_prf(request.getfixturevalue("prf_dir") if spoc else None, 1, 1, 4)
    rng = np.random.default_rng(4)
    rows, cols = _grid_of_stars(rng)
    true_rows = rows + 0.9
    shifts = np.column_stack([np.linspace(-0.75, 0.5, 6), np.linspace(0.2, -0.1, 6)])
    measured = np.empty((len(shifts), rows.size, 2))
    for k, (dr, dc) in enumerate(shifts):
        image = prf.render(
            true_rows + dr, cols + dc, 1e4, SHAPE, ORIGIN, node_rows=rows, node_cols=cols
        )
        measured[k] = measure_centroids(image, rows, cols, ORIGIN, 2)
    positions = calibrate_centroids(measured, rows, cols, prf, 2)
    truth = np.stack([true_rows + shifts[:, :1], cols + shifts[:, 1:]], axis=2)
    err = positions - truth
    print(f"\nlargest error {np.nanmax(np.abs(err)):.5f} px")
    assert np.nanmax(np.abs(err)) < 1e-3


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


def test_calibrated_centroids_hold_with_neighbours_in_the_box(prf_dir):
    """A neighbour's light in a centroid box lowers the centroid's response to the motion
    (by ~1.5 % for 1-5 % of the box's light): with the catalogued neighbours in the model
    the positions follow the star again."""
    prf = load_prf(prf_dir, 1, 1, 4)
    rng = np.random.default_rng(4)
    rows, cols = _grid_of_stars(rng)
    flux = np.full(rows.size, 1e4)
    # A neighbour of 10 % of the flux 2.6 px from every reference star.
    n_rows, n_cols = rows + 0.7, cols + 2.5
    all_rows, all_cols = np.r_[rows, n_rows], np.r_[cols, n_cols]
    all_flux = np.r_[flux, 0.1 * flux]
    shifts = np.c_[np.linspace(-0.15, 0.15, 9), np.linspace(0.1, -0.1, 9)]
    measured = np.empty((len(shifts), rows.size, 2))
    for k, (dr, dc) in enumerate(shifts):
        image = prf.render(
            all_rows + dr,
            all_cols + dc,
            all_flux,
            SHAPE,
            ORIGIN,
            node_rows=all_rows,
            node_cols=all_cols,
        )
        measured[k] = measure_centroids(image, rows, cols, ORIGIN, 2)
    truth = np.stack([rows + shifts[:, :1], cols + shifts[:, 1:]], axis=2)

    def motion_error(positions):
        err = positions - truth
        return np.sqrt(np.mean((err - err[4]) ** 2))

    alone = calibrate_centroids(measured, rows, cols, prf, 2)
    modelled = calibrate_centroids(
        measured, rows, cols, prf, 2, flux=flux, catalogued=(all_rows, all_cols, all_flux)
    )
    print(
        f"\nmotion error: neighbour ignored {motion_error(alone):.5f} px, "
        f"modelled {motion_error(modelled):.6f} px"
    )
    assert motion_error(alone) > 5e-4
    assert motion_error(modelled) < 0.1 * motion_error(alone)
    assert motion_error(modelled) < 5e-5
