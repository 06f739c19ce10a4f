"""Linear PSF photometry: the least-squares engine, and fluxes against the simulator's truth."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from tessphot.config.photometry import PhotometrySettings
from tessphot.constants import SATURATED_RATE
from tessphot.evaluation.simulate.truth import read_truth
from tessphot.lightcurve.writer import settings_from_header
from tessphot.photometry.linpsf import LinPSFPhotometry
from tessphot.photometry.linpsf_solve import smooth_local_linear, solve_fluxes
from tessphot.photometry.target import open_target
from tessphot.photometry.task import photometry_task
from tessphot.prf import AnalyticPRF, prf_images
from tessphot.sources import clear_cache
from tessphot.tasks import STATUS


def _method(cls, starid, folder, settings=None):
    """A photometry method on a target of the test sector (camera 1, CCD 4)."""
    return cls(open_target(starid, folder, 1, 1, 4, settings=settings), settings)


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def test_solve_fluxes_recovers_fluxes_and_their_errors():
    rng = np.random.default_rng(1)
    prf = AnalyticPRF()
    n = 4000
    rows = np.column_stack([np.full(n, 10.2), np.full(n, 11.9)])
    cols = np.column_stack([np.full(n, 10.4), np.full(n, 9.6)])
    design = prf_images(prf, rows, cols, rows[0], cols[0], (4, 4), (13, 13))
    assert design.shape == (n, 2, 169)
    np.testing.assert_allclose(design.sum(axis=2), 1.0, atol=0.01)  # the box holds them
    design = np.concatenate([design, np.ones((n, 1, 169))], axis=1)
    truth = np.array([5000.0, 2000.0, 3.0])
    sigma = np.full((n, 169), 10.0)
    sigma[:, ::7] = 30.0
    data = np.einsum("nkp,k->np", design, truth) + rng.normal(0.0, sigma)
    data[0, :] = np.nan  # no data: NaN
    data[1, :5] = np.nan  # missing pixels are left out
    coef, err = solve_fluxes(design, data, sigma**2)
    assert np.all(np.isnan(coef[0])) and np.all(np.isnan(err[0]))
    pull = (coef[1:] - truth) / err[1:]
    np.testing.assert_allclose(pull.mean(axis=0), 0.0, atol=0.1)
    np.testing.assert_allclose(pull.std(axis=0), 1.0, atol=0.05)
    noiseless, _ = solve_fluxes(design[2:3], np.einsum("nkp,k->np", design[2:3], truth), sigma[2:3])
    np.testing.assert_allclose(noiseless[0], truth, rtol=1e-9)


def test_smooth_local_linear_matches_a_direct_fit():
    """Window sums from cumulative sums give the same line, covariance and chi-square as a
    straight-line fit per window; a step makes the windows across it fail the line."""
    rng = np.random.default_rng(3)
    n, half = 300, 0.13
    t = np.sort(rng.uniform(0.0, 6.0, n))
    t[40] = np.nan
    use = np.isfinite(t) & (rng.random(n) > 0.1)
    sigma = np.column_stack([np.full(n, 2.0), rng.uniform(0.5, 1.5, n)])
    truth = np.column_stack([1000 + 3 * np.nan_to_num(t), -5 + np.sin(np.nan_to_num(t))])
    values = truth + rng.normal(0.0, sigma)
    cov = np.zeros((n, 2, 2))
    cov[:, 0, 0], cov[:, 1, 1] = sigma[:, 0] ** 2, sigma[:, 1] ** 2
    cov[:, 0, 1] = cov[:, 1, 0] = 0.3 * sigma[:, 0] * sigma[:, 1]
    smooth, smooth_cov, excess = smooth_local_linear(t, values, cov, use, half)
    assert np.all(np.isnan(smooth[40]))
    for k in rng.choice(np.flatnonzero(np.isfinite(t)), 25, replace=False):
        w = np.flatnonzero(use & (np.abs(np.nan_to_num(t, nan=1e9) - t[k]) <= half))
        design = np.column_stack([np.ones(w.size), t[w] - t[k]])
        weights = np.linalg.pinv(design)[0]  # the value at t[k] from each cadence
        np.testing.assert_allclose(smooth[k], weights @ values[w], rtol=1e-9, atol=1e-8)
        expected_cov = np.einsum("i,ijk->jk", weights**2, cov[w])
        np.testing.assert_allclose(smooth_cov[k], expected_cov, rtol=1e-8, atol=1e-12)
        resid = values[w] - design @ np.linalg.lstsq(design, values[w], rcond=None)[0]
        dof = w.size - 2
        chi2 = np.sum(resid**2, axis=0) / cov[w][:, [0, 1], [0, 1]].mean(axis=0)
        np.testing.assert_allclose(excess[k], (chi2 - dof) / np.sqrt(2 * dof), rtol=1e-6)
    assert abs(np.nanmedian(excess)) < 1.0  # a line describes the smooth series
    values[t > 3.0, 0] += 20.0  # a 10-sigma jump
    _, _, jumped = smooth_local_linear(t, values, cov, use, half)
    near = np.abs(t - 3.0) < half / 2
    assert np.all(jumped[near, 0] > 4.0) and np.nanmedian(jumped[~near, 0]) < 1.0


def test_prf_images_lose_the_light_off_the_box():
    prf = AnalyticPRF()
    rows, cols = np.array([[0.0]]), np.array([[20.3]])
    inside = prf_images(prf, rows, cols, rows[0], cols[0], (0, 0), (10, 40))[0, 0]
    assert 0.5 < inside.sum() < 0.75  # on the edge: half of it is cut
    whole = prf_images(prf, rows, cols, rows[0], cols[0], (-10, 0), (30, 40))[0, 0]
    np.testing.assert_allclose(whole.sum(), 1.0, rtol=1e-6)


def _truth_flux(folder, starid, cadenceno):
    truth = read_truth(next((folder / "truth").glob("truth_*.hdf5")))
    k = np.searchsorted(truth["ffiindex"], cadenceno)
    index = int(np.flatnonzero(truth["stars"]["starid"] == starid)[0])
    return truth, truth["flux"][k, index], index


@pytest.mark.parametrize("star", ["A", "B"])
def test_isolated_star_gets_its_whole_flux(small_sector, sector_copy, star):
    """The fitted flux is the star's total flux (the PRF is normalised), cadence by cadence
    within the errors the covariance gives."""
    starid = small_sector[star][0]
    phot = _method(LinPSFPhotometry, starid, sector_copy)
    assert phot.run().status == STATUS.OK
    lc = phot.columns
    _, true_flux, _ = _truth_flux(sector_copy, starid, lc.cadenceno)
    good = np.isfinite(lc.flux)
    assert good.mean() > 0.9
    ratio = lc.flux[good] / true_flux[good]
    assert abs(np.median(ratio) - 1) < 0.005
    pull = (lc.flux - true_flux)[good] / lc.flux_err[good]
    assert 0.6 < np.std(pull) < 1.5
    assert phot.n_fitted >= 1 and phot.contamination == 0.0
    assert 0 <= phot.crowding < 0.1


def test_blended_neighbour_is_fitted_out(small_sector, sector_copy):
    """The star of the small sector with the brightest neighbour 1.5-4 px away: its linear-PSF
    flux is its own (truth within 1 %), where the aperture collects the neighbour too."""
    truth = read_truth(next((sector_copy / "truth").glob("truth_*.hdf5")))
    stars = truth["stars"]
    r0, r1, c0, c1 = np.asarray(truth["attrs"]["region"])
    best, best_light = None, 0.0
    for i in np.flatnonzero(stars["tmag"] < 14):
        d = np.hypot(stars["row"] - stars["row"][i], stars["col"] - stars["col"][i])
        near = (d > 1.5) & (d < 4)
        inside = r0 + 6 < stars["row"][i] < r1 - 6 and c0 + 6 < stars["col"][i] < c1 - 6
        if near.any() and inside:
            light = float(np.max(10 ** (-0.4 * (stars["tmag"][near] - stars["tmag"][i]))))
            if light > best_light:
                best, best_light = i, light
    assert best is not None and best_light > 0.02
    starid = int(stars["starid"][best])
    phot = _method(LinPSFPhotometry, starid, sector_copy)
    assert phot.run().status == STATUS.OK
    lc = phot.columns
    _, true_flux, _ = _truth_flux(sector_copy, starid, lc.cadenceno)
    good = np.isfinite(lc.flux)
    assert abs(np.median(lc.flux[good] / true_flux[good]) - 1) < 0.01
    assert phot.n_fitted >= 2 and phot.crowding > 0
    pull = (lc.flux - true_flux)[good] / lc.flux_err[good]
    assert np.std(pull) < 2.0
    print(f"TIC {starid}: neighbour light {best_light:.2f}, PSF_CONT {phot.crowding:.3f}")


def test_linpsf_task_writes_its_light_curve(small_sector, sector_copy):
    starid = small_sector["A"][0]
    task = {"priority": 1, "starid": starid, "sector": 1, "camera": 1, "ccd": 4}
    task |= {"cadence": 1800, "datasource": "ffi", "method": None}
    result = photometry_task(task, sector_copy, sector_copy / "lc", method="linpsf")
    assert result.status == STATUS.OK and result.method_used == "linpsf"
    path = sector_copy / result.details["filepath_lightcurve"]
    with fits.open(path) as hdul:
        header = hdul[0].header
        assert header["PHOTMET"] == "linpsf" and 0 <= header["PSF_CONT"] < 0.1
        assert header["PSF_NFIT"] >= 1 and header["PSF_NPIX"] == result.details["mask_size"]
        assert np.isfinite(hdul["LIGHTCURVE"].data["FLUX_RAW_ERR"]).mean() > 0.9
    settings = settings_from_header(header)
    for name in PhotometrySettings.keys():
        assert f"photometry.{name}" in settings


def _transit_fit(phot, folder, starid):
    """Depth ratio (measured over true relative signal) and its error, scatter about the
    truth over the median flux error, median flux over the truth and median distance of the
    centroid from the true position, on the good cadences."""
    lc = phot.columns
    truth = read_truth(next((folder / "truth").glob("truth_*.hdf5")))
    index = int(np.flatnonzero(truth["stars"]["starid"] == starid)[0])
    cadences = np.searchsorted(truth["ffiindex"], lc.cadenceno)
    true_flux = truth["flux"][cadences, index]
    good = phot.target.source.good & np.isfinite(lc.flux)
    flux = lc.flux[good] / np.median(lc.flux[good])
    true = true_flux[good] / np.median(true_flux[good])
    assert np.ptp(true) > 2e-3  # the transit is in the data
    slope = np.sum((true - 1) * (flux - 1)) / np.sum((true - 1) ** 2)
    noise = np.median(lc.flux_err[good] / lc.flux[good])
    slope_error = noise / np.sqrt(np.sum((true - 1) ** 2))
    scatter = np.std(flux - true) / noise
    position_error = np.hypot(
        lc.centroid_row[good] - truth["row"][cadences[good], index],
        lc.centroid_column[good] - truth["col"][cadences[good], index],
    )
    level = np.median(flux * np.median(lc.flux[good]) / true_flux[good])
    return slope, slope_error, scatter, level, float(np.median(position_error))


def test_saturated_star_is_fitted_on_its_wings(halo_sector, bright_starid):
    """A Tmag-4 star: its saturated core and bleed columns are left out, its shifts fitted;
    the transit is recovered within its error whether or not the bleed runs off the data
    (the wings hold a few % of the light: the depth's error is ~3 %), with the scatter about
    the truth within the errors, and the flux is the star's whole flux."""
    where, folder = halo_sector
    phot = _method(LinPSFPhotometry, bright_starid, folder)
    assert phot.run().status == STATUS.OK
    assert phot.n_saturated > 10 and phot.method_keywords["PSF_SHFT"][0]
    slope, error, scatter, level, position_error = _transit_fit(phot, folder, bright_starid)
    print(
        f"{where}: depth {slope:.3f} +- {error:.3f}, scatter/errors {scatter:.2f}, flux/truth "
        f"{level:.4f}, centroid error {position_error:.4f} px"
    )
    assert abs(slope - 1) < 3 * error and error < 0.05
    assert scatter < 1.5
    assert abs(level - 1) < 0.01
    assert position_error < 0.01  # the fitted shifts follow the star


def test_stars_on_the_bleed_are_skipped(halo_sector, bright_starid):
    """The catalogued stars on the saturated target's saturated pixels and bleed columns are
    its skip targets (their own photometry would measure the target's bleed)."""
    where, folder = halo_sector
    phot = _method(LinPSFPhotometry, bright_starid, folder)
    assert phot.run().status == STATUS.OK
    cat = phot.target.catalog
    full = phot.target.sumimage >= 0.8 * SATURATED_RATE
    rows = np.floor(cat["row"] + 0.5).astype(int)
    cols = np.floor(cat["column"] + 0.5).astype(int)
    h, w = full.shape
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    on = np.zeros(rows.size, dtype=bool)
    on[inside] = full[rows[inside], cols[inside]]
    expected = {int(s) for s in cat["starid"][on]} - {bright_starid}
    assert expected <= set(phot.skip_targets)
    assert bright_starid not in phot.skip_targets
    print(f"{where}: {len(phot.skip_targets)} skip targets, {len(expected)} on the bleed")
