"""The ensemble corrector on synthetic light curves with a common trend."""

from __future__ import annotations

import numpy as np

from tessphot.config.correct import EnsembleSettings
from tessphot.correct.ensemble import (
    fit_ensemble,
    point_to_point,
    quiet_candidates,
    weighted_ensemble,
)

SETTINGS = EnsembleSettings(min_members=5)
N = 1000


def _group(seed=1, n_stars=60, noise=1e-3):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 27, N)
    trend = 0.004 * np.exp(-t / 1.5) + 0.002 * np.sin(2 * np.pi * t / 13)
    flux0 = rng.uniform(1e4, 1e5, n_stars)
    flux = flux0[:, None] * (1 + trend[None] + noise * rng.standard_normal((n_stars, N)))
    return t, trend, flux


def test_quiet_stars_are_members_variable_ones_are_not():
    t, _, flux = _group()
    flux[5] *= 1 + 0.02 * np.sin(2 * np.pi * t / 2.0)
    norm = flux / np.median(flux, axis=1, keepdims=True)
    ok = quiet_candidates(norm, quiet=SETTINGS.quiet, max_range=SETTINGS.max_range)
    assert not ok[5] and ok.sum() >= 55


def test_trend_removed_signal_kept():
    t, trend, flux = _group()
    good = np.ones(N, dtype=bool)
    signal = 0.003 * np.sin(2 * np.pi * t / 0.7)
    target = (
        2e4 * (1 + trend) * (1 + signal) * (1 + 1e-3 * np.random.default_rng(9).standard_normal(N))
    )
    fit = fit_ensemble(
        target,
        flux,
        good=good,
        distances=np.arange(flux.shape[0], dtype=float),
        starids=np.arange(flux.shape[0]),
        settings=SETTINGS,
    )
    assert fit.method == "ensemble" and len(fit.members) >= 50
    corrected = target / fit.model - 1
    residual = corrected - signal
    # The trend (0.6 % peak to peak) is gone to the noise level of target and ensemble.
    assert np.std(residual) < 1.1e-3
    amplitude = 2 * np.dot(corrected, np.sin(2 * np.pi * t / 0.7)) / N
    assert abs(amplitude / 0.003 - 1) < 0.03
    assert 0.8 < fit.scale < 1.2
    assert fit.noise_added <= 0.01


def test_too_few_quiet_neighbours_is_no_correction():
    t, _, flux = _group(n_stars=4)
    fit = fit_ensemble(
        flux[0],
        flux[1:],
        good=np.ones(N, dtype=bool),
        distances=np.ones(3),
        starids=np.arange(3),
        settings=SETTINGS,
    )
    assert fit.method == "none" and "quiet neighbour" in fit.reason
    np.testing.assert_allclose(fit.model, np.median(flux[0]))


def test_point_to_point_of_white_noise_is_its_sigma():
    rng = np.random.default_rng(3)
    assert abs(point_to_point(rng.standard_normal(200_000)) - 1) < 0.01


def test_bright_members_weigh_more_and_outliers_are_left_out():
    rng = np.random.default_rng(5)
    common = 1 + 0.003 * np.sin(np.linspace(0, 6, N))
    noise = np.array([1e-4] * 3 + [3e-3] * 30)
    members = common * (1 + noise[:, None] * rng.standard_normal((noise.size, N)))
    members[5, 100] = 1.5  # a cosmic ray on a faint member
    ensemble = weighted_ensemble(members)
    # Close to the three bright members' noise, not the faint ones' median.
    assert np.std(ensemble - common) < 1e-4
    assert abs(ensemble[100] - common[100]) < 5e-4
