"""Light-curve diagnostics (§5.8, §5.17) and the expected-noise model (noise-model.md)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.stats import binned_statistic

from tessphot.lightcurve import (
    expected_noise,
    lightcurve_diagnostics,
    mask_diagnostics,
    ptp,
    rms_timescale,
    variability,
)
from tessphot.lightcurve.diagnostics import HOUR

CADENCE = 1800 / 86400  # [d]


@pytest.fixture(autouse=True)
def _no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _original_rms(time, flux, timescale):
    """The original's implementation (binned_statistic with a closed last bin)."""
    bins = np.append(np.arange(np.nanmin(time), np.nanmax(time), timescale), np.nanmax(time))
    good = np.isfinite(flux)
    means, _, _ = binned_statistic(time[good], flux[good], "mean", bins=bins)
    return 1.4826 * np.nanmedian(np.abs(means - np.nanmedian(means)))


def test_rms_timescale_matches_original_and_theory():
    rng = np.random.default_rng(3)
    n = 4000
    regular = 1325.0 + np.arange(n) * CADENCE
    time = regular + rng.uniform(-0.1, 0.1, n) * CADENCE  # no time stamp on a bin edge
    time = np.delete(time, np.arange(1000, 1300))  # a data gap
    flux = rng.normal(0.0, 1e-3, time.size)
    flux[rng.choice(time.size, 50, replace=False)] = np.nan
    got = rms_timescale(time, flux)
    assert got == pytest.approx(_original_rms(time, flux, HOUR), rel=1e-12)
    # On a regular 30-min grid every hour bin holds two consecutive points exactly.
    pairs = rng.normal(0.0, 1e-3, n)
    means = pairs.reshape(-1, 2).mean(axis=1)
    expected = 1.4826 * np.median(np.abs(means - np.median(means)))
    assert rms_timescale(regular, pairs) == pytest.approx(expected, rel=1e-12)
    # Two 30-min points per hour: the bin means scatter by sigma / sqrt(2).
    assert expected == pytest.approx(1e-3 / math.sqrt(2), rel=0.08)
    assert rms_timescale(time, flux, timescale=4 * HOUR) == pytest.approx(
        _original_rms(time, flux, 4 * HOUR), rel=1e-12
    )


def test_rms_timescale_edge_cases():
    time = np.arange(10) * CADENCE
    assert math.isnan(rms_timescale(time, np.full(10, np.nan)))
    assert math.isnan(rms_timescale([], []))
    assert math.isnan(rms_timescale(time[:2], [1.0, 2.0]))  # one bin only
    with pytest.raises(ValueError, match="no finite time"):
        rms_timescale(np.full(10, np.nan), np.ones(10))
    with pytest.raises(ValueError, match="timescale"):
        rms_timescale(time, np.ones(10), timescale=0)
    with pytest.raises(ValueError, match="shape"):
        rms_timescale(time, np.ones(9))
    times = time.copy()
    times[3] = np.nan  # points without a time are left out
    assert np.isfinite(rms_timescale(times, np.arange(10.0)))


def test_ptp():
    assert ptp([1.0, 2.0, 4.0, 4.5, np.nan, 3.5]) == 1.0  # |diffs| 1, 2, 0.5, 1 (NaN skipped)
    assert math.isnan(ptp([1.0]))
    assert math.isnan(ptp([np.nan, np.nan]))


def test_variability():
    rng = np.random.default_rng(8)
    t = np.linspace(0, 27, 1300)
    sigma = 1e-3
    noise = rng.normal(0, sigma, t.size)
    trend = 1e-2 * (t / 27) ** 3 - 5e-3 * t / 27
    err = np.full(t.size, sigma)
    assert variability(t, noise + trend, err) == pytest.approx(1.0, rel=0.06)
    sine = 5e-3 * np.sin(2 * np.pi * t / 1.3)
    assert variability(t, noise + sine, err) > 3
    assert math.isnan(variability(t, noise))
    assert math.isnan(variability(t, noise, np.full(t.size, np.nan)))
    assert variability([1.0, 2.0], [0.1, -0.1], [0.1, 0.1]) == pytest.approx(0.0, abs=1e-12)


def test_lightcurve_diagnostics():
    rng = np.random.default_rng(11)
    n = 1300
    time = 1325.0 + np.arange(n) * CADENCE
    flux = rng.normal(20000.0, 20.0, n)
    flux_err = np.full(n, 20.0)
    quality = np.zeros(n, dtype=np.int32)
    quality[::50] = 32  # momentum dumps: excluded ...
    flux[::50] = 1e6  # ... with wild values
    quality[1::50] = 2048  # stray light: not in the default bitmask, kept
    time[5] = np.nan
    row = rng.normal(100.25, 0.01, n)
    col = rng.normal(200.5, 0.01, n)
    d = lightcurve_diagnostics(time, flux, flux_err, quality, row, col)
    good = np.isfinite(time) & (quality & 175 == 0)
    relative = flux[good] / np.median(flux[good]) - 1
    assert d["mean_flux"] == pytest.approx(np.median(flux[good]))
    assert d["mean_flux"] == pytest.approx(20000.0, rel=1e-3)
    assert d["variance"] == pytest.approx(np.var(relative, ddof=1))
    assert d["rms_hour"] == pytest.approx(rms_timescale(time[good], relative))
    assert d["ptp"] == pytest.approx(np.median(np.abs(np.diff(relative))))
    assert d["variability"] == pytest.approx(1.0, rel=0.06)
    assert d["pos_row"] == pytest.approx(100.25, abs=0.002)
    assert d["pos_column"] == pytest.approx(200.5, abs=0.002)
    everything = lightcurve_diagnostics(time, flux, flux_err, quality, quality_bitmask=0)
    assert everything["variance"] > 1e3 * d["variance"]  # the dumps are now included
    assert math.isnan(everything["pos_row"])


def test_lightcurve_diagnostics_all_nan():
    n = 20
    time = np.arange(n) * CADENCE
    d = lightcurve_diagnostics(time, np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, int))
    assert all(math.isnan(v) for v in d.values())
    d = lightcurve_diagnostics(time, np.zeros(n), np.ones(n))
    assert d["mean_flux"] == 0 and math.isnan(d["variance"])
    with pytest.raises(ValueError, match="shape"):
        lightcurve_diagnostics(time, np.zeros(n - 1), np.ones(n))


def test_mask_diagnostics():
    image = np.arange(25, dtype=float).reshape(5, 5)
    mask = np.zeros((5, 5), bool)
    mask[1:4, 1:4] = True
    assert mask_diagnostics(mask, image) == {"mask_size": 9, "edge_flux": 0.0}
    mask[0, 2] = True
    mask[4, 4] = True
    image[4, 4] = np.nan
    assert mask_diagnostics(mask, image) == {"mask_size": 11, "edge_flux": 2.0}
    with pytest.raises(ValueError):
        mask_diagnostics(mask, image[:3])


FFI_1800 = {"exposure_time": 1425.6, "n_frames": 720, "cadence": 1800}


def test_expected_noise_components():
    c = expected_noise(10.0, n_pix=10, background=50.0, components=True, **FFI_1800)
    flux = 10 ** (-0.4 * (10.0 - 20.44))
    assert flux == pytest.approx(15000, rel=0.01)
    t = 2 * 1425.6  # two cadences per hour
    assert c["shot"] == pytest.approx(1e6 / math.sqrt(flux * t))
    assert c["sky"] == pytest.approx(1e6 * math.sqrt(10 * 50.0 * t) / (flux * t))
    assert c["read"] == pytest.approx(1e6 * 10 * math.sqrt(10 * 2 * 720) / (flux * t))
    assert c["systematic"] == 60.0
    assert c["total"] == pytest.approx(math.hypot(c["shot"], c["sky"], c["read"], 60.0))
    assert 150 < c["total"] < 250  # TASOC's model ~160 ppm, the TIC curve ~200 ppm at T = 10
    same = expected_noise(flux=flux, n_pix=10, background=50.0, **FFI_1800)
    assert same == pytest.approx(c["total"])
    # The systematic floor scales as 1/sqrt(timescale).
    four = expected_noise(
        10.0, n_pix=10, background=50.0, timescale=4 * 3600, components=True, **FFI_1800
    )
    assert four["systematic"] == pytest.approx(30.0)
    assert four["shot"] == pytest.approx(c["shot"] / 2)


def test_expected_noise_regimes_and_arrays():
    tmag = np.array([6.0, 10.0, 14.0, 16.0])
    c = expected_noise(
        tmag, n_pix=np.array([60, 12, 6, 5]), background=60.0, components=True, **FFI_1800
    )
    assert c["total"].shape == (4,)
    assert np.all(np.diff(c["total"]) > 0)
    assert c["systematic"][0] > c["shot"][0]  # systematics-limited when bright
    assert c["shot"][1] > max(c["sky"][1], c["read"][1])  # photon-limited
    assert math.hypot(c["sky"][3], c["read"][3]) > c["shot"][3]  # background/read-limited
    assert math.isnan(expected_noise(flux=0.0, n_pix=4, background=10.0, **FFI_1800))
    with pytest.raises(ValueError, match="either tmag or flux"):
        expected_noise(10.0, flux=1.0, n_pix=4, background=10.0, **FFI_1800)
    with pytest.raises(ValueError, match="cadence"):
        expected_noise(10.0, n_pix=4, background=10.0, exposure_time=1, n_frames=1, cadence=0)
