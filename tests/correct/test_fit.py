"""The fit of the vectors to one star: least squares, MAP with a neighbour prior, fallback."""

from __future__ import annotations

import numpy as np
import pytest

from tessphot.config.correct import FitSettings
from tessphot.correct.cbv import CBVSet
from tessphot.correct.fit import (
    NeighbourPriors,
    Prior,
    corrected_ppm,
    fit_cbvs,
    neighbour_prior,
)
from tessphot.lightcurve.diagnostics import ptp

#: Prior settings for the small synthetic area (300 stars, coefficients not tied to Tmag).
PRIOR = FitSettings(prior_neighbours=30, prior_tmag_scale=10.0)


@pytest.fixture(scope="module")
def ls_fits(sector, cbvs):
    return [fit_cbvs(flux, cbvs, good=sector.good) for flux in sector.flux]


def _amplitude(relative, time, period, ok):
    design = np.column_stack(
        [np.sin(2 * np.pi * time / period), np.cos(2 * np.pi * time / period), np.ones_like(time)]
    )[ok]
    coeffs = np.linalg.lstsq(design, relative[ok], rcond=None)[0]
    return np.hypot(*coeffs[:2])


def test_least_squares_reaches_the_white_noise(sector, ls_fits):
    ratios, scatter = [], []
    for i in np.flatnonzero(~sector.variable):
        fit = ls_fits[i]
        ok = sector.good & np.isfinite(sector.flux[i])
        corrected = (sector.flux[i] / fit.model - 1)[ok]
        raw = (sector.flux[i] / fit.median - 1)[ok]
        ratios.append(np.std(corrected) / np.std(sector.white[i][ok]))
        scatter.append(ptp(corrected) / ptp(raw))
        assert fit.method == "ls"
    assert np.median(ratios) < 1.01
    assert np.percentile(ratios, 95) < 1.05
    assert np.median(scatter) < 1.0
    assert np.percentile(scatter, 90) < 1.01


def test_bic_keeps_the_vectors_of_bright_stars(sector, ls_fits):
    bright = np.flatnonzero(~sector.variable & (sector.tmags < 10))
    assert np.mean([ls_fits[i].n_vectors == 3 for i in bright]) > 0.9
    assert all(len(fit.ls_coefficients) == 3 for fit in ls_fits)


def test_clipping_flags_outliers(sector, cbvs):
    i = int(np.flatnonzero(~sector.variable)[0])
    flux = sector.flux[i].copy()
    hits = np.flatnonzero(sector.good)[[50, 300, 700]]
    flux[hits] *= 1.05
    fit = fit_cbvs(flux, cbvs, good=sector.good)
    assert set(hits) <= set(np.flatnonzero(fit.clipped))
    assert fit.clipped.sum() < 10
    ok = sector.good & np.isfinite(flux)
    ok[hits] = False
    assert np.std((flux / fit.model - 1)[ok]) < 1.05 * sector.noise[i]


@pytest.fixture(scope="module")
def priors(sector, ls_fits):
    coefficients = np.array([fit.ls_coefficients for fit in ls_fits])
    return NeighbourPriors(sector.rows, sector.cols, sector.tmags, coefficients, settings=PRIOR)


def test_map_keeps_a_long_period_sinusoid(sector, cbvs, priors):
    period, amplitude = 10.0, 3e-3
    kept_ls, kept_map = [], []
    for i in np.flatnonzero(~sector.variable)[:10]:
        signal = amplitude * np.sin(2 * np.pi * sector.time / period + i)
        flux = sector.flux[i] * (1 + signal)
        ok = sector.good & np.isfinite(flux)
        ls = fit_cbvs(flux, cbvs, good=sector.good, settings=PRIOR)
        prior = priors.prior(sector.rows[i], sector.cols[i], sector.tmags[i], exclude=i)
        fit = fit_cbvs(flux, cbvs, good=sector.good, prior=prior, settings=PRIOR)
        assert fit.method == "map" and fit.n_vectors == cbvs.n_vectors
        kept_ls.append(_amplitude(flux / ls.model - 1, sector.time, period, ok) / amplitude)
        kept_map.append(_amplitude(flux / fit.model - 1, sector.time, period, ok) / amplitude)
    assert np.median(np.abs(np.array(kept_map) - 1)) < 0.03
    assert np.max(np.abs(np.array(kept_map) - 1)) < 0.1
    assert np.median(kept_ls) < 0.75


def test_map_of_quiet_stars_is_close_to_least_squares(sector, cbvs, priors):
    ratios = []
    for i in np.flatnonzero(~sector.variable)[:40]:
        prior = priors.prior(sector.rows[i], sector.cols[i], sector.tmags[i], exclude=i)
        fit = fit_cbvs(sector.flux[i], cbvs, good=sector.good, prior=prior, settings=PRIOR)
        ok = sector.good & np.isfinite(sector.flux[i])
        ratios.append(np.std((sector.flux[i] / fit.model - 1)[ok]) / sector.noise[i])
    assert np.median(ratios) < 1.02
    assert np.percentile(ratios, 90) < 1.3


def test_prior_is_near_the_neighbours_coefficients(sector, ls_fits):
    coefficients = np.array([fit.ls_coefficients for fit in ls_fits])
    coefficients[0] = 100.0  # a wild neighbour: clipped
    i = int(np.argmin(np.hypot(sector.rows - 1024, sector.cols - 1024)))
    prior = neighbour_prior(
        sector.rows[i], sector.cols[i], sector.tmags[i], sector.rows, sector.cols,
        sector.tmags, coefficients, settings=PRIOR, exclude=i,
    )  # fmt: skip
    assert isinstance(prior, Prior) and prior.n_neighbours <= 30
    assert np.all(np.linalg.eigvalsh(prior.covariance) > 0)
    spread = np.sqrt(np.diag(prior.covariance))
    assert np.all(np.abs(prior.mean - coefficients[i]) < 3 * spread)
    with pytest.raises(ValueError, match="too few"):
        neighbour_prior(0, 0, 10, sector.rows[:1], sector.cols[:1], sector.tmags[:1],
                        coefficients[:1])  # fmt: skip


def test_fallback_when_the_fit_adds_noise(sector):
    """Vectors noisier than the star: every fit adds noise, so no correction is made."""
    rng = np.random.default_rng(9)
    n = sector.time.size
    slow = np.sin(2 * np.pi * sector.time / 5.0)
    noisy = np.column_stack([slow / np.sqrt(n / 2) + rng.normal(0, 0.05, n), rng.normal(0, 1, n)])
    noisy /= np.linalg.norm(noisy, axis=0)
    cbvs = CBVSet(sector.cadenceno, sector.time, noisy, np.zeros((n, 0)), np.zeros(n, bool))
    flux = 1e5 * (1 + 1e-3 * slow + rng.normal(0, 1e-4, n))
    fit = fit_cbvs(flux, cbvs, good=np.ones(n, bool), settings=FitSettings(bic=False))
    assert fit.method == "none"
    assert "noise added" in fit.reason
    assert np.allclose(fit.model, fit.median)
    assert fit.noise_added == 0.0
    ok = fit_cbvs(flux, cbvs, good=np.ones(n, bool), settings=FitSettings(max_noise_added=10.0))
    assert ok.method == "ls" and ok.reason is None and ok.noise_added > 0.05


def test_fallback_when_the_fit_removes_what_the_prior_keeps(sector, cbvs):
    """A prior that says 'no systematics here' against a fit that removes a star's signal."""
    i = int(np.flatnonzero(~sector.variable)[0])
    flux = 1e5 * (1 + 0.01 * cbvs.design("vectors")[:, 0] * 30)
    prior = Prior(np.zeros(cbvs.n_vectors), np.eye(cbvs.n_vectors) * 1e-10)
    settings = FitSettings(prior_weight=1e-12, max_extra_removed=0.2)
    fit = fit_cbvs(flux, cbvs, good=sector.good, prior=prior, settings=settings)
    assert fit.method == "ls" and fit.n_vectors == 0
    assert "variability removed" in fit.reason
    assert sector.noise[i] > 0


def test_no_usable_cadences(cbvs):
    fit = fit_cbvs(np.full(cbvs.time.size, np.nan), cbvs, good=~cbvs.gap)
    assert fit.method == "none" and "too few" in fit.reason


def test_prior_of_the_wrong_size(sector, cbvs):
    with pytest.raises(ValueError, match="coefficients"):
        fit_cbvs(sector.flux[0], cbvs, good=sector.good, prior=Prior(np.zeros(1), np.eye(1)))


def test_corrected_ppm():
    flux = np.array([100.0, 101.0, np.nan])
    model = np.array([100.0, 100.0, 100.0])
    ppm, err = corrected_ppm(flux, model, np.array([1.0, 1.0, 1.0]))
    np.testing.assert_allclose(ppm[:2], [0.0, 1e4])
    assert np.isnan(ppm[2])
    np.testing.assert_allclose(err, 1e4)
    assert corrected_ppm(flux, model)[1] is None
