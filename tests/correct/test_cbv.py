"""Cotrending basis vectors of synthetic light curves with known trends and spikes."""

from __future__ import annotations

import numpy as np
import pytest

from tessphot.config.correct import CBVSettings
from tessphot.correct.cbv import CBVSet, build_cbvs, smooth_vectors

#: Cadence of the synthetic data [s] (as in conftest).
CADENCE = 1800.0


def _build(sector, **settings) -> CBVSet:
    return build_cbvs(
        sector.flux, good=sector.good, cadenceno=sector.cadenceno, time=sector.time,
        dumps=sector.dumps, settings=CBVSettings(**settings), cadence=CADENCE,
    )  # fmt: skip


def test_vectors_span_the_injected_trends(sector, cbvs):
    used = ~cbvs.gap
    vectors = cbvs.vectors[used]
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(cbvs.n_vectors), atol=1e-8)
    for trend in sector.trends[used].T:
        trend = trend - trend.mean()
        left = trend - vectors @ (vectors.T @ trend)
        assert np.linalg.norm(left) < 0.1 * np.linalg.norm(trend)


def test_number_of_vectors_is_the_number_of_trends(cbvs):
    assert cbvs.n_vectors == 3
    assert cbvs.singular_values[2] > 2 * cbvs.threshold > 2 * cbvs.singular_values[3]
    assert cbvs.n_stars >= 150


def test_pure_noise_has_no_vectors(synthetic):
    noise = synthetic.make_sector(
        amplitudes=(0.0, 0.0, 0.0), spike_amplitude=0.0, variable_fraction=0.0
    )
    cbvs = _build(noise)
    assert cbvs.n_vectors == 0
    assert cbvs.n_spikes == 0
    assert cbvs.design().shape == (noise.time.size, 0)


def test_two_trends_give_two_vectors(synthetic):
    assert _build(synthetic.make_sector(amplitudes=(3e-3, 1.5e-3, 0.0), seed=5)).n_vectors == 2


def test_spike_vectors_land_on_the_dump_cadences(sector, cbvs):
    assert 1 <= cbvs.n_spikes <= CBVSettings().max_spikes
    spikes = cbvs.spikes[~cbvs.gap]
    touched = np.any(spikes != 0, axis=1)
    assert np.array_equal(touched, (sector.dumps & sector.good)[~cbvs.gap])
    pattern = sector.spike_pattern[~cbvs.gap]
    left = pattern - spikes @ np.linalg.lstsq(spikes, pattern, rcond=None)[0]
    assert np.linalg.norm(left) < 0.05 * np.linalg.norm(pattern)
    assert not np.any(touched & ~np.isfinite(cbvs.vectors[~cbvs.gap, 0]))


def test_gaps_are_nan_and_design_parts(sector, cbvs):
    assert np.array_equal(cbvs.gap, ~sector.good)
    assert np.all(np.isnan(cbvs.design()[cbvs.gap]))
    assert cbvs.design("vectors").shape == (sector.time.size, cbvs.n_vectors)
    assert cbvs.design("spikes").shape == (sector.time.size, cbvs.n_spikes)
    assert cbvs.design().shape[1] == cbvs.n_vectors + cbvs.n_spikes
    with pytest.raises(ValueError, match="which must be"):
        cbvs.design("multiscale")


def test_a_loud_variable_star_does_not_make_a_vector(synthetic):
    sector = synthetic.make_sector(seed=3)
    loud = np.argmin(sector.tmags)  # the brightest star: the most weight in the SVD
    sector.flux[loud] *= 1 + 0.05 * np.sin(2 * np.pi * sector.time / 2.7)
    cbvs = _build(sector, quiet_fraction=1.0, correlated_fraction=1.0)
    assert cbvs.n_vectors == 3
    sine = np.sin(2 * np.pi * sector.time / 2.7)[~cbvs.gap]
    vectors = cbvs.vectors[~cbvs.gap]
    assert np.linalg.norm(vectors.T @ sine) < 0.2 * np.linalg.norm(sine)


def test_too_few_stars_give_an_empty_set(sector):
    cbvs = build_cbvs(
        sector.flux[:5], good=sector.good, cadenceno=sector.cadenceno, time=sector.time
    )
    assert cbvs.n_vectors == 0 and cbvs.n_spikes == 0 and cbvs.n_stars == 0


def test_metadata_and_settings(cbvs):
    assert (cbvs.sector, cbvs.camera, cbvs.ccd, cbvs.cbv_area) == (1, 1, 4, 141)
    assert cbvs.cadence == CADENCE
    assert cbvs.settings == CBVSettings().to_dict()
    assert np.all(np.diff(cbvs.explained_variance) <= 0)


def test_smoothing_removes_noise_and_keeps_ramps_and_steps():
    rng = np.random.default_rng(4)
    time = np.arange(600) / 48.0  # 30-min cadences over 12.5 d
    keep = np.ones(600, bool)
    keep[290:310] = False  # a gap
    time = time[keep]
    dumps = np.zeros(time.size, bool)
    dumps[150] = True
    ramp = np.exp(-time / 1.0)
    step = np.where(np.arange(time.size) > 150, 1.0, -1.0)
    truth = np.column_stack([ramp - ramp.mean(), step - step.mean()])
    truth /= np.linalg.norm(truth, axis=0)
    noise = 0.02 * rng.standard_normal(truth.shape)
    q, _ = np.linalg.qr(truth + noise)
    smoothed = smooth_vectors(q, time, 1800.0, 6.0, dumps=dumps)
    np.testing.assert_allclose(smoothed.T @ smoothed, np.eye(2), atol=1e-12)
    # The smoothed vectors span the true ones better: the noise is down, the ramp after
    # the start and the step at the dump are kept.
    before = np.linalg.norm(truth - q @ (q.T @ truth), axis=0)
    after = np.linalg.norm(truth - smoothed @ (smoothed.T @ truth), axis=0)
    assert np.all(after < 0.6 * before)
    # No smoothing asked: the vectors as they are.
    assert smooth_vectors(q, time, 1800.0, 0.0) is q
