"""The effective PRF's change with time: the focused PRF's rendering and the scale's fit."""

from __future__ import annotations

import numpy as np
import pytest

from tessphot.config.prepare import EffectivePRFSettings
from tessphot.prepare.focus import focus_verdict
from tessphot.prf import AnalyticPRF, prf_images
from tessphot.prf.effective import EffectivePRF
from tessphot.prf.focus import ANCHOR_STEP, FocusedPRF, anchor_scales, scaled_model
from tessphot.prf.focus_fit import (
    POSITION_STEP,
    SCALE_STEP,
    box_stamps,
    combine_stars,
    smooth_in_time,
    star_scale,
)


def _effective(nodes: int = 2) -> EffectivePRF:
    base = AnalyticPRF(fwhm=1.6)
    grid = np.linspace(0, 2047, nodes)
    tables = np.stack([AnalyticPRF(fwhm=1.5 + 0.1 * k).tables[0] for k in range(nodes**2)])
    return EffectivePRF(tables, grid, grid, "test", "test", base_name=base.name, base_analytic=True)


def test_anchor_scales_cover_the_range():
    anchors = anchor_scales(np.array([1.013, 0.996, np.nan, 1.002]))
    assert anchors[0] == pytest.approx(0.996) and anchors[-1] == pytest.approx(1.013)
    assert np.all(np.diff(anchors) <= ANCHOR_STEP + 1e-12)
    # Always two at least, and 1 is within them.
    flat = anchor_scales(np.ones(5))
    assert flat.size == 2 and flat[0] == 1.0


@pytest.mark.parametrize("shared", [False, True])
def test_focused_prf_renders_each_cadence_with_its_scale(shared):
    static = _effective()
    scale = np.array([1.0, 1.02, 0.99, 1.0137])
    prf = FocusedPRF(static, scale)
    # Many stamps of one star use the shared-shape path; a few stars the per-node one.
    n_rep = 40 if shared else 1
    rows = np.tile(np.array([[500.3, 800.6]]), (n_rep, 1))
    cols = np.tile(np.array([[700.8, 1200.2]]), (n_rep, 1))
    node_rows, node_cols = rows[0], cols[0]
    for k, s in enumerate(scale):
        cadences = np.full(n_rep, k)
        got = prf_images(
            prf, rows, cols, node_rows, node_cols, (490, 690), (20, 530), cadences=cadences
        )
        want = prf_images(
            scaled_model(static, s), rows, cols, node_rows, node_cols, (490, 690), (20, 530)
        )
        # Interpolated between anchors 0.5 % apart: a tiny fraction of the peak.
        assert np.abs(got - want).max() < 2e-4 * want.max()
        # The change itself is much larger.
        if s != 1.0:
            assert np.abs(want - prf_images(static, rows, cols, node_rows, node_cols,
                                            (490, 690), (20, 530))).max() > 20 * np.abs(
                got - want
            ).max()  # fmt: skip
    # Without cadences: the static PRF.
    np.testing.assert_allclose(
        prf_images(prf, rows, cols, node_rows, node_cols, (490, 690), (20, 530)),
        prf_images(static, rows, cols, node_rows, node_cols, (490, 690), (20, 530)),
    )


def test_scaled_model_changes_the_width():
    static = _effective(1)
    wide = scaled_model(static, 1.03)
    d = (np.arange(117) - 58) / 9

    def rms_radius(t):
        r2 = d[:, None] ** 2 + d[None, :] ** 2
        return np.sqrt((t * r2).sum() / t.sum())

    ratio = rms_radius(wide.tables[0]) / rms_radius(static.tables[0])
    assert ratio == pytest.approx(1.03, abs=2e-3)
    np.testing.assert_allclose(wide.tables.sum(axis=(1, 2)), 81.0)


def _boxes(prf, scales, rows, cols, flux, rng, noise):
    """A star's boxes at positions ``rows, cols`` rendered at the width ``scales``."""
    centre, half = (int(round(rows[0])), int(round(cols[0]))), 5
    data = np.stack(
        [
            flux * box_stamps(scaled_model(prf, s).shape_tables([r], [c]), np.array([r]),
                              np.array([c]), centre, half)[0]
            for s, r, c in zip(scales, rows, cols, strict=True)
        ]
    )  # fmt: skip
    sigma = np.sqrt(np.clip(data, 0, None) + noise**2)
    data = data + sigma * rng.standard_normal(data.shape)
    tables = [scaled_model(prf, s).shape_tables([rows[0]], [cols[0]])
              for s in (1.0, 1 + SCALE_STEP, 1 - SCALE_STEP)]  # fmt: skip
    h = POSITION_STEP

    def at(t, dr=0.0, dc=0.0):
        return box_stamps(t, rows + dr, cols + dc, centre, half)

    return (
        data,
        sigma,
        at(tables[0]),
        (at(tables[1]) - at(tables[2])) / (2 * SCALE_STEP),
        (at(tables[0], h) - at(tables[0], -h)) / (2 * h),
        (at(tables[0], 0, h) - at(tables[0], 0, -h)) / (2 * h),
    )


def test_star_scale_recovers_an_injected_width_change():
    rng = np.random.default_rng(3)
    prf = _effective(1)
    n = 60
    scales = 1 + 0.01 * np.sin(np.linspace(0, 3, n))
    rows = 300.2 + 0.05 * rng.standard_normal(n)
    cols = 400.7 + 0.05 * rng.standard_normal(n)
    flux = 2e6
    data, sigma, images, along_s, along_r, along_c = _boxes(prf, scales, rows, cols, flux, rng, 10)
    estimate, weight = star_scale(data, sigma, images, flux * along_s, along_r, along_c)
    pull = (estimate - (scales - 1)) * np.sqrt(weight)
    # Within the noise (the linearisation's error is second order: ~1e-4 at 1 %).
    assert abs(np.mean(pull)) < 1.0
    assert 0.7 < np.std(pull) < 1.5
    assert np.abs(estimate - (scales - 1)).max() < 5 * np.max(1 / np.sqrt(weight)) + 2e-4


def test_combine_stars_leaves_out_outliers_offsets_and_noisy_stars():
    rng = np.random.default_rng(1)
    truth = 0.01 * np.exp(-np.arange(200) / 50)
    noise = np.array([1e-4] * 6 + [3e-4, 3e-4])
    estimates = truth + noise[:, None] * rng.standard_normal((8, 200))
    # A star with a constant offset, and one whose errors say 1e-5 but scatter by 1e-3.
    estimates[2] += 0.004
    estimates[0] = truth + 1e-3 * rng.standard_normal(200)
    weights = np.tile(1 / noise[:, None] ** 2, (1, 200))
    weights[0] = 1e10
    estimates[3, 10] = 0.5
    value, error = combine_stars(estimates, weights)
    # The six good stars' average: 1e-4 / sqrt(6) (the offset star's level is the others').
    residual = value - truth - np.median(value - truth)
    assert np.std(residual) < 1.5 * 1e-4 / np.sqrt(6)
    assert abs(np.median(value - truth)) < 1e-3
    assert abs(residual[10]) < 2e-4
    value, error = combine_stars(np.full((3, 2), np.nan), np.zeros((3, 2)))
    assert np.all(np.isnan(value))


def test_smoothing_follows_a_line_and_never_crosses_the_gap():
    time = np.r_[np.arange(0, 5, 1 / 48), np.arange(6, 10, 1 / 48)]
    values = np.where(time < 5.5, 1.0 + 0.002 * time, 0.98)
    use = np.ones(time.size, bool)
    use[10] = False
    smoothed, leverage = smooth_in_time(time, values, use, width=2 / 24, gap=0.5)
    np.testing.assert_allclose(smoothed, values, atol=1e-12)
    # The smoothed value's variance over one value's: about 1 / (2 sqrt(pi) sigma).
    middle = leverage[100]
    assert middle == pytest.approx(1 / (2 * np.sqrt(np.pi) * 4), rel=0.1)
    assert np.all(leverage[:3] > middle)


def test_verdict_flat_without_a_change():
    rng = np.random.default_rng(5)
    time = np.r_[np.arange(0, 5, 1 / 48), np.arange(6, 10, 1 / 48)]
    noise = 2e-4
    good = np.ones(time.size, bool)
    settings = EffectivePRFSettings()
    flat = 1 + noise * rng.standard_normal(time.size)
    verdict = focus_verdict(time, flat, np.full(time.size, noise), good, settings,
                            n_stars=10, seconds=0.0)  # fmt: skip
    assert not verdict.significant and verdict.significance < settings.focus_significance
    np.testing.assert_array_equal(verdict.scale, 1.0)
    assert verdict.noise == pytest.approx(noise, rel=0.15)
    start = np.where(time < 5.5, time, time - 6)
    focus = 1 + 0.01 * np.exp(-start) + noise * rng.standard_normal(time.size)
    verdict = focus_verdict(time, focus, np.full(time.size, noise), good, settings,
                            n_stars=10, seconds=0.0)  # fmt: skip
    assert verdict.significant and verdict.amplitude > 0.005
    np.testing.assert_allclose(verdict.scale, 1 + 0.01 * np.exp(-start), atol=3 * noise)
