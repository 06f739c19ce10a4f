"""The PRF fits' goodness (``PRFCHI2``): about 1 with the PRF the data were made with, far
above with a wrong one; in the header and the task list's diagnostics."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from astropy.io import fits

from tessphot.photometry.goodness import FitChi2, residual_chi2
from tessphot.photometry.linpsf import LinPSFPhotometry
from tessphot.photometry.linpsf_solve import FirstPass
from tessphot.photometry.psf import PSFPhotometry
from tessphot.photometry.target import Target, open_target
from tessphot.prf import AnalyticPRF, prf_images
from tessphot.prf.analytic import ANALYTIC_CORE_FWHM
from tessphot.runner.loop import run_photometry
from tessphot.sources import clear_cache
from tessphot.tasks import TODO_FILENAME

#: The small sector is simulated with the analytic PRF: fitted with it (not the effective PRF
#: measured from the data), the fits have the exact PRF.
EXACT = {"effective_prf": False}


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def _scene(n: int, prf, rng):
    """Two stars and a background on a 13x13 box, n cadences of Poisson-like noise."""
    rows = np.column_stack([np.full(n, 10.2), np.full(n, 12.9)]) + rng.normal(0, 0.05, (n, 1))
    cols = np.column_stack([np.full(n, 10.4), np.full(n, 8.6)]) + rng.normal(0, 0.05, (n, 1))
    images = prf_images(prf, rows, cols, rows[0], cols[0], (4, 4), (13, 13))
    return np.concatenate([images, np.ones((n, 1, 169))], axis=1)


def test_chi2_of_the_exact_model_follows_its_distribution():
    """Data made with the fitted PRF plus noise of the given variance: the reduced chi-square
    is 1 within its statistical spread, per cadence and summed; a PRF 20 % wider in the data
    makes it far larger."""
    rng = np.random.default_rng(7)
    n, truth = 600, np.array([20000.0, 5000.0, 40.0])
    exact = AnalyticPRF()
    design = _scene(n, exact, rng)
    light = np.einsum("nkp,k->np", design, truth)
    variance = light / 10.0 + 25.0  # shot noise of the light and a read noise
    data = light + rng.normal(0.0, np.sqrt(variance))
    data[3, :10] = np.nan  # pixels without data are left out
    first = FirstPass(n, 3)
    first.fit(np.arange(n), design, data, variance)
    chi2, dof = first.goodness.chi2, first.goodness.dof
    assert dof[0] == 169 - 3 and dof[3] == 169 - 13
    reduced = chi2 / dof
    assert reduced.mean() == pytest.approx(1.0, abs=3 * np.sqrt(2 / 166 / n))
    assert reduced.std() == pytest.approx(np.sqrt(2 / 166), rel=0.15)
    summary = first.goodness.summary(np.ones(n, dtype=bool))
    assert summary.reduced == pytest.approx(1.0, abs=0.02)
    assert summary.total == pytest.approx(1.0, abs=0.02)
    assert summary.dof == 166 and summary.cadences == n

    wide = _scene(n, AnalyticPRF(fwhm=1.2 * ANALYTIC_CORE_FWHM), rng)  # rendered wider
    light = np.einsum("nkp,k->np", wide, truth)
    data = light + rng.normal(0.0, np.sqrt(light / 10.0 + 25.0))
    coef = np.linalg.lstsq(design[0].T, data[0], rcond=None)[0]
    wrong, _ = residual_chi2(design[:1], data[:1], (light / 10.0 + 25.0)[:1], coef[None])
    assert wrong[0] / 166 > 20


def test_summary_counts_good_cadences_with_degrees_of_freedom():
    fit = FitChi2(5)
    fit.record(
        np.arange(5), np.array([10.0, 20.0, 30.0, 1e6, np.nan]), np.array([10, 10, 10, 10, 10])
    )
    good = np.array([True, True, True, False, True])
    summary = fit.summary(good)
    assert summary.reduced == pytest.approx(2.0) and summary.total == pytest.approx(2.0)
    assert summary.cadences == 3
    assert np.isnan(FitChi2(3).summary(np.ones(3, dtype=bool)).reduced)


@pytest.mark.parametrize("cls", [LinPSFPhotometry, PSFPhotometry])
def test_exact_prf_gives_about_one_and_a_wrong_prf_far_more(
    small_sector, sector_copy, cls, monkeypatch
):
    """On the simulated sector (exact PRF, real noise, background and neighbours) the fits'
    reduced chi-square is about 1; with a PRF of another width it is orders of magnitude
    above."""
    starid = small_sector["A"][0]
    phot = cls(open_target(starid, sector_copy, 1, 1, 4, settings=EXACT), EXACT)
    result = phot.run()
    assert 0.8 < result.prf_chi2 < 1.3
    assert result.header_cards["PRFCHI2"][0] == result.prf_chi2
    assert result.diagnostics["prf_chi2"] == result.prf_chi2
    assert 0.8 < result.header_cards["PRFCHI2T"][0] < 1.5
    assert result.header_cards["PRFDOF"][0] > 20

    monkeypatch.setattr(Target, "prf", property(lambda self: AnalyticPRF(fwhm=1.2)))
    wrong = cls(open_target(starid, sector_copy, 1, 1, 4, settings=EXACT), EXACT).run()
    assert wrong.prf_chi2 > 100 * result.prf_chi2


def test_card_in_the_header_and_the_diagnostics(small_sector, sector_copy):
    """A run's light curves carry ``PRFCHI2`` and todo.sqlite its ``prf_chi2`` for a PRF
    fit; aperture photometry fits no PRF: neither."""
    starid = small_sector["B"][0]
    for method in ("linpsf", "aperture"):
        output = sector_copy / method
        run_photometry(
            sector_copy,
            output,
            constraints={"starid": [starid]},
            method=method,
            overwrite=True,
            settings=EXACT,
        )
        con = sqlite3.connect(sector_copy / TODO_FILENAME)
        path, stored = con.execute(
            "SELECT d.lightcurve, d.prf_chi2 FROM diagnostics d JOIN todolist t "
            "ON t.priority = d.priority WHERE t.starid = ?",
            (starid,),
        ).fetchone()
        con.close()
        with fits.open(sector_copy / path) as hdul:
            header = hdul[0].header
        if method == "aperture":
            assert stored is None and "PRFCHI2" not in header
            continue
        assert 0.8 < stored < 1.5
        assert header["PRFCHI2"] == pytest.approx(stored)
        assert "reduced chi2 of the PRF fit" in header.comments["PRFCHI2"]
        assert "PRFCHI2T" in header and "PRFDOF" in header
