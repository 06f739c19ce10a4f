"""The pointing's motion blur of an average image (tessphot.prf.motion_blur) and its use."""

from __future__ import annotations

import numpy as np
import pytest

from tessphot.config.prepare import EffectivePRFSettings
from tessphot.prepare.effective_prf import motion_blur
from tessphot.prf import AnalyticPRF, PRFModel
from tessphot.prf.effective import measure_effective_prf
from tessphot.prf.models import OVERSAMPLE, TABLE_CENTRE, TABLE_SIZE
from tessphot.prf.motion_blur import from_displacements

ORIGIN = (500, 700)
SHAPE = (170, 170)
#: The real sector-1 pointing's spread over a few days (rows, columns) [px].
POINTING_RMS = (0.07, 0.15)


def gaussian(sigma: float, dy: float = 0.0, dx: float = 0.0) -> np.ndarray:
    d = (np.arange(TABLE_SIZE) - TABLE_CENTRE) / OVERSAMPLE
    y, x = np.meshgrid(d, d, indexing="ij")
    return np.exp(-((y - dy) ** 2 + (x - dx) ** 2) / (2 * sigma**2))


def test_blur_is_the_average_of_the_shifted_tables():
    rng = np.random.default_rng(1)
    shifts = rng.normal(0.0, 0.15, (2, 300, 2))
    shifts[1] = 2 * shifts[0]
    blur = from_displacements(shifts)
    tables = np.stack([gaussian(0.7), gaussian(0.9)])
    out = blur.apply(tables)
    for n in range(2):
        relative = shifts[n] - shifts[n].mean(axis=0)
        direct = np.mean([gaussian([0.7, 0.9][n], dy, dx) for dy, dx in relative], axis=0)
        np.testing.assert_allclose(out[n], direct, atol=3e-5)
    # Extra axes (the derivative tables) are blurred alike; the flux is kept.
    stacked = blur.apply(np.stack([tables, 2 * tables], axis=1))
    np.testing.assert_allclose(stacked[:, 1], 2 * out)
    np.testing.assert_allclose(out.sum(axis=(1, 2)), tables.sum(axis=(1, 2)), rtol=1e-9)
    np.testing.assert_allclose(blur.rms[1], 2 * blur.rms[0], rtol=0.01)
    with pytest.raises(ValueError, match="nodes"):
        blur.apply(tables[:1])


def test_blur_from_the_motion_model():
    """A translation blurs every node alike; a rotation more the nodes far from its centre."""
    n = 50
    rng = np.random.default_rng(2)
    motion = np.zeros((n, 6))
    motion[:, 0] = motion[:, 3] = 1.0
    motion[:, 4:] = rng.normal(0.0, 0.1, (n, 2))
    frames = np.ones(n, dtype=bool)
    frames[0] = False
    motion[0, 4:] = 50.0  # not averaged: left out
    region = (0.0, 1000.0, 0.0, 1000.0)
    nodes = np.array([0.0, 1000.0])
    blur = motion_blur(motion, (500.0, 500.0), nodes, nodes, frames=frames, region=region)
    expected = motion[1:, 4:].std(axis=0)
    np.testing.assert_allclose(blur.rms, np.broadcast_to(expected, (4, 2)), rtol=0.01)
    turned = np.zeros((n, 6))
    angle = rng.normal(0.0, 1e-4, n)
    turned[:, 0] = turned[:, 3] = np.cos(angle)
    turned[:, 1], turned[:, 2] = -np.sin(angle), np.sin(angle)
    nodes = np.array([500.0, 2000.0])  # the second beyond the region: taken at its edge
    blur = motion_blur(turned, (500.0, 500.0), nodes, nodes, frames=frames, region=region)
    assert blur.rms[0].max() < 1e-3  # at the centre
    np.testing.assert_allclose(blur.rms[3], 500 * angle[1:].std(), rtol=0.02)
    none = motion_blur(motion, (0.0, 0.0), nodes, nodes, frames=~frames & False, region=region)
    assert none is None


def test_the_effective_prf_of_a_blurred_average_image_is_the_frames_prf():
    """Stars drawn with the model and averaged over a moving pointing: with the blur
    modelled, the model fits and no correction is used; without it, the blur is fitted."""
    base = AnalyticPRF()
    rng = np.random.default_rng(6)
    grid = np.arange(9, SHAPE[0] - 9, 19)
    rr, cc = np.meshgrid(grid, grid, indexing="ij")
    rows = ORIGIN[0] + rr.ravel() + rng.uniform(-0.5, 0.5, rr.size)
    cols = ORIGIN[1] + cc.ravel() + rng.uniform(-0.5, 0.5, rr.size)
    flux = 10 ** rng.uniform(4.0, 4.8, rows.size)
    shifts = rng.normal(0.0, POINTING_RMS, (80, 2))
    shifts -= shifts.mean(axis=0)
    image = np.mean(
        [base.render(rows + dy, cols + dx, flux, SHAPE, ORIGIN) for dy, dx in shifts], axis=0
    )
    sigma = np.sqrt(np.clip(image, 0, None) / 2.0e4 + 0.05**2)
    image = image + sigma * rng.standard_normal(SHAPE)
    stars = (rows, cols, flux)
    settings = EffectivePRFSettings()

    def blur(node_rows, node_cols):
        return from_displacements(np.broadcast_to(shifts, (node_rows.size * node_cols.size, 80, 2)))

    plain = measure_effective_prf(image, sigma, ORIGIN, stars, base, settings)
    modelled = measure_effective_prf(image, sigma, ORIGIN, stars, base, settings, blur=blur)
    q, q_plain = modelled.quality, plain.quality
    # What is left (chi-square 6 against 3000) is the renderer's linear interpolation
    # between the tables' 1/9-px samples, which an exact shift does not reproduce: 8e-4 of
    # the peak, seen at this signal to noise.
    assert q["chi2_model"] < 10 and q["chi2_model"] < 0.01 * q_plain["chi2_model"]
    assert not modelled.accepted
    # Without the blur the "effective PRF" is the blurred one: wider than each frame's by
    # the pointing's spread, in quadrature.
    assert plain.accepted
    blurred = np.sqrt(_width(base) ** 2 + np.sum(shifts.var(axis=0)))
    assert abs(_width(plain.prf) / blurred - 1) < 0.002
    assert abs(_width(modelled.prf) / _width(base) - 1) < 0.002


def _width(prf: PRFModel) -> float:
    """rms radius of the first node's table [px]."""
    table = prf.tables[0]
    d = (np.arange(TABLE_SIZE) - TABLE_CENTRE) / OVERSAMPLE
    y, x = np.meshgrid(d, d, indexing="ij")
    total = table.sum()
    my, mx = (table * y).sum() / total, (table * x).sum() / total
    return float(np.sqrt((table * ((y - my) ** 2 + (x - mx) ** 2)).sum() / total))
