"""Halo photometry: the total-variation objective, and a saturated star against the truth."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from astropy.io import fits

from tessphot.config.photometry import ChoiceSettings
from tessphot.constants import SATURATED_RATE
from tessphot.evaluation.simulate.truth import read_truth
from tessphot.lightcurve import ApertureBits
from tessphot.photometry.halo import HaloPhotometry, segments, total_variation, tv_weights
from tessphot.photometry.target import Target, open_target
from tessphot.photometry.task import SPILL_METHOD_NAMES, photometry_task
from tessphot.prf import AnalyticPRF
from tessphot.prf.analytic import ANALYTIC_CORE_FWHM
from tessphot.sources import clear_cache
from tessphot.tasks import FALLBACK_TEXT, STATUS, SWITCH_TEXT


def _method(cls, starid, folder, settings=None):
    """A photometry method on a target of the test sector (camera 1, CCD 4)."""
    return cls(open_target(starid, folder, 1, 1, 4, settings=settings), settings)


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def test_total_variation_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    fluxes = rng.uniform(50.0, 150.0, size=(40, 6))
    weights = rng.uniform(0.1, 1.0, size=6)
    value, gradient = total_variation(weights, fluxes, 1e-3)
    step = 1e-6
    numeric = [
        (total_variation(weights + step * e, fluxes, 1e-3)[0] - value) / step for e in np.eye(6)
    ]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-3, atol=1e-6)
    # The objective does not depend on the weights' scale.
    assert total_variation(3.0 * weights, fluxes, 1e-3)[0] == pytest.approx(value)


def test_tv_weights_cancel_light_moving_between_pixels():
    """Two pixels trade light as the star jitters: equal weights on their sum are smooth."""
    rng = np.random.default_rng(5)
    n = 300
    jitter = rng.normal(0.0, 0.05, n)
    signal = 1.0 + 0.01 * np.sin(np.arange(n) / 20.0)
    fluxes = 1000.0 * signal[:, None] * np.column_stack([0.5 + jitter, 0.5 - jitter, 0.3 + jitter])
    weights, result = tv_weights(fluxes, 1e-5, 500)
    assert weights.sum() == pytest.approx(1.0)
    assert np.all(weights >= 0)
    f = fluxes @ weights
    np.testing.assert_allclose(f / f.mean(), signal / signal.mean(), atol=2e-3)


def test_segments_split_at_long_gaps():
    time = np.r_[np.arange(10) * 0.02, np.nan, 5.0 + np.arange(5) * 0.02]
    assert segments(time, 0.5) == [(0, 11), (11, 16)]
    assert segments(np.full(3, np.nan), 0.5) == [(0, 3)]


def test_saturated_star_against_truth(halo_sector, bright_starid):
    """The transit is recovered (depth within 5 % at the centre, 15 % where the bleed runs
    off the data), and the scatter about the truth is within the flux errors."""
    where, folder = halo_sector
    starid = bright_starid
    phot = _method(HaloPhotometry, starid, folder)
    assert phot.run().status == STATUS.OK
    lc = phot.columns
    truth = read_truth(next((folder / "truth").glob("truth_*.hdf5")))
    index = int(np.flatnonzero(truth["stars"]["starid"] == starid)[0])
    true_flux = truth["flux"][np.searchsorted(truth["ffiindex"], lc.cadenceno), index]
    good = phot.target.source.good & np.isfinite(lc.flux)
    flux = lc.flux[good] / np.median(lc.flux[good])
    true = true_flux[good] / np.median(true_flux[good])
    assert np.ptp(true) > 2e-3  # the transit is in the data
    slope = np.sum((true - 1) * (flux - 1)) / np.sum((true - 1) ** 2)
    scatter = np.std(flux - true)
    noise = np.median(lc.flux_err[good] / lc.flux[good])
    print(f"{where}: depth ratio {slope:.3f}, scatter/noise {scatter / noise:.2f}")
    assert abs(slope - 1) < (0.05 if where == "centre" else 0.15)
    assert scatter < 1.5 * noise
    # The level is the catalogue flux; the weights are a normalised map of halo pixels.
    assert np.median(lc.flux[good]) == pytest.approx(phot.method_keywords["HALO_SCL"][0])
    maps = phot.weightmap.weights
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), 1.0, rtol=1e-6)
    assert np.all(maps[:, ~phot.halo] == 0)


@pytest.mark.parametrize("spill_method", ["linpsf", "halo"])
def test_automatic_switch(halo_sector, bright_starid, spill_method):
    """Automatic choice: aperture (OK) where the star fits; where its bleed runs off the data,
    the ``choice.spill_method`` (switch logged, reason in the header; halo's weight map in
    WEIGHTMAP)."""
    where, folder = halo_sector
    task = {"priority": 1, "starid": bright_starid, "sector": 1, "camera": 1, "ccd": 4}
    settings = {
        "choice": {"spill_method": spill_method},
        "aperture": {"trim_spilling_columns": False},
    }
    result = photometry_task(task, folder, folder / spill_method, settings=settings)
    text = SWITCH_TEXT.format(SPILL_METHOD_NAMES[spill_method])
    switched = [e for e in result.details["errors"] if text in e]
    assert result.method_used == (spill_method if where == "edge" else "aperture")
    assert bool(switched) == (where == "edge")
    assert result.status == STATUS.OK
    forced = photometry_task(task, folder, folder / "forced", method="aperture", settings=settings)
    assert forced.method_used == "aperture"
    if where == "edge":
        assert "bleed column runs off the data" in switched[0]
        assert forced.status == STATUS.WARNING  # the forced aperture loses light
        path = folder / result.details["filepath_lightcurve"]
        with fits.open(path) as hdul:
            header = hdul[0].header
            assert header["PHOTMET"] == spill_method
            if spill_method == "halo":
                assert "bleed" in header["HALO_WHY"]
                weights = hdul["WEIGHTMAP"].data["WEIGHTMAP"]
                np.testing.assert_allclose(weights.sum(axis=(1, 2)), 1.0, rtol=1e-5)
            else:
                assert "bleed" in header["PSF_WHY"] and header["PSF_SHFT"]


def test_invalid_spill_method_is_a_clear_error(halo_sector, bright_starid):
    where, folder = halo_sector
    if where != "edge":
        pytest.skip("only a spilling star switches")
    task = {"priority": 1, "starid": bright_starid, "sector": 1, "camera": 1, "ccd": 4}
    settings = {"spill_method": "psf", "trim_spilling_columns": False}
    result = photometry_task(task, folder, folder / "bad", settings=settings)
    assert result.status == STATUS.ERROR
    assert any("spill_method" in e for e in result.details["errors"])


def test_spilling_bleed_columns_can_be_trimmed(halo_sector, bright_starid):
    """With ``aperture.trim_spilling_columns`` the automatic choice keeps aperture photometry for a
    star whose bleed runs off the data: the spilling columns leave the mask (``AP_TRIM``),
    no saturated pixel of the mask is left on the edge, and the transit is seen. The few
    columns left hold ~2.5 % of the light, and the background's response to the star
    dilutes it (depth ~0.93 here; why the option is off by default)."""
    where, folder = halo_sector
    task = {"priority": 1, "starid": bright_starid, "sector": 1, "camera": 1, "ccd": 4}
    settings = {"aperture": {"trim_spilling_columns": True}}
    result = photometry_task(task, folder, folder / "trim", settings=settings)
    assert result.method_used == "aperture" and result.status == STATUS.OK
    path = folder / result.details["filepath_lightcurve"]
    with fits.open(path) as hdul:
        trimmed = hdul[0].header["AP_TRIM"]
        data = hdul["LIGHTCURVE"].data
        flux, cadenceno = np.asarray(data["FLUX_RAW"], float), data["CADENCENO"]
        quality = np.asarray(data["PIXEL_QUALITY"])
        aperture = hdul["APERTURE"].data
        image = hdul["SUMIMAGE"].data
    assert (trimmed > 0) == (where == "edge")
    photometric = (aperture & ApertureBits.PHOTOMETRIC) > 0
    assert not np.any(photometric[0] & (image[0] >= 0.5 * SATURATED_RATE))
    truth = read_truth(next((folder / "truth").glob("truth_*.hdf5")))
    index = int(np.flatnonzero(truth["stars"]["starid"] == bright_starid)[0])
    true = truth["flux"][np.searchsorted(truth["ffiindex"], cadenceno), index]
    good = np.isfinite(flux) & (quality == 0)
    rel, true_rel = flux[good] / np.median(flux[good]) - 1, true[good] / np.median(true[good]) - 1
    depth = np.sum(true_rel * rel) / np.sum(true_rel**2)
    print(f"{where}: {trimmed} columns trimmed, depth ratio {depth:.3f}")
    assert abs(depth - 1) < (0.01 if where == "centre" else 0.1)


def test_fallback_to_aperture_when_the_prf_fails_the_target(
    halo_sector, bright_starid, caplog, monkeypatch
):
    """The automatic choice keeps the fit of the wings with the PRF the star was made with
    (reduced chi-square about 1); with a PRF 20 % wider the chi-square exceeds
    ``choice.prf_chi2_max`` and it falls back to aperture photometry: one WARNING naming the
    TIC and the chi-square, the reason in the errors and ``AP_WHY``, the fit's cards kept.
    Not with ``prf_chi2_max = inf``, and never for a method forced."""
    where, folder = halo_sector
    if where != "edge":
        pytest.skip("only a spilling star switches to a PRF fit")
    task = {"priority": 1, "starid": bright_starid, "sector": 1, "camera": 1, "ccd": 4}
    base = {"choice": {"spill_method": "linpsf"}, "aperture": {"trim_spilling_columns": False}}
    kept = photometry_task(task, folder, folder / "kept", settings=base)
    assert kept.method_used == "linpsf" and 0.8 < kept.details["prf_chi2"] < 1.5
    assert not any(FALLBACK_TEXT in e for e in kept.details["errors"])

    wide = AnalyticPRF(fwhm=1.2 * ANALYTIC_CORE_FWHM)
    monkeypatch.setattr(Target, "prf", property(lambda self: wide))
    with caplog.at_level(logging.WARNING, logger="tessphot"):
        fell = photometry_task(task, folder, folder / "fell", settings=base)
    chi2 = fell.details["prf_chi2"]
    assert chi2 > ChoiceSettings().prf_chi2_max
    lines = [r for r in caplog.records if FALLBACK_TEXT in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert f"TIC {bright_starid}" in lines[0].getMessage()
    assert f"{chi2:.3g}" in lines[0].getMessage()
    assert fell.method_used == "aperture" and fell.status in (STATUS.OK, STATUS.WARNING)
    assert any(FALLBACK_TEXT in e for e in fell.details["errors"])
    with fits.open(folder / fell.details["filepath_lightcurve"]) as hdul:
        header = hdul[0].header
    assert header["PHOTMET"] == "aperture" and "chi2" in header["AP_WHY"]
    assert header["PRFCHI2"] == pytest.approx(chi2)

    caplog.clear()
    lenient = {**base, "choice": {"spill_method": "linpsf", "prf_chi2_max": math.inf}}
    trusted = photometry_task(task, folder, folder / "lenient", settings=lenient)
    forced = photometry_task(task, folder, folder / "forced", method="linpsf", settings=base)
    for result in (trusted, forced):
        assert result.method_used == "linpsf"
        assert result.details["prf_chi2"] == pytest.approx(chi2)
    assert not any(FALLBACK_TEXT in r.getMessage() for r in caplog.records)
