"""What the target's variability leaves of an aperture's light: the slow term's estimate."""

from __future__ import annotations

import numpy as np
import pytest

from tessphot.photometry.aperture_variability import left_variance


def _groups(rng, n_groups, n_apertures, white, slow):
    """Group means of apertures whose white noise per group and slow variance are given."""
    noise = rng.standard_normal((n_groups, n_apertures)) * np.sqrt(white)
    drift = rng.standard_normal((n_groups, 1)) * np.sqrt(slow)
    return noise + drift


def test_white_noise_alone_gives_almost_no_slow_term_even_from_few_groups():
    """12 groups (120 cadences): clipped at zero, the estimate's noise would add about 0.4
    of its error on average, more for larger apertures; shrunk by its error, less than
    half of that (about 0.16 of the error)."""
    rng = np.random.default_rng(5)
    n_groups, white = 12, np.array([1.0, 4.0, 16.0])
    weights = np.full(n_groups, 1 / n_groups)
    zero = np.zeros(n_groups)
    light = np.ones(white.size)
    terms, clipped = [], []
    for _ in range(2000):
        flux = _groups(rng, n_groups, white.size, white, 0.0)
        white_left = white * (1 - 1 / n_groups)  # the groups' mean is taken out
        terms.append(left_variance(flux, zero, light, weights, white_left))
        left = flux - flux.mean(axis=0)
        clipped.append(np.clip(weights @ left**2 - white_left, 0, None))
    mean, mean_clipped = np.mean(terms, axis=0), np.mean(clipped, axis=0)
    error = np.sqrt(2 / n_groups) * white
    assert np.all(mean_clipped > 0.25 * error)
    assert np.all(mean < 0.5 * mean_clipped)
    assert np.all(mean < 0.2 * error)
    assert np.all(np.asarray(terms) >= 0)


def test_a_slow_term_well_above_its_error_stays():
    rng = np.random.default_rng(6)
    n_groups = 16
    weights = np.full(n_groups, 1 / n_groups)
    zero = np.zeros(n_groups)
    terms = [
        left_variance(_groups(rng, n_groups, 1, 0.01, 1.0), zero, np.ones(1), weights, 0.01)[0]
        for _ in range(2000)
    ]
    # Var(sample variance) = 2 / n of the variance squared: the shrinkage takes about
    # e^2 / s of a term s with error e.
    assert np.mean(terms) == pytest.approx(1.0 * (1 - 1 / n_groups) * (1 - 2 / n_groups), rel=0.1)
