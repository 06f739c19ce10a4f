"""PSF photometry (positions and fluxes fitted): the engine on synthetic data, and fluxes and
positions against the simulator's truth for stars with a poor catalogue position or that
move."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (the cubes are Blosc-compressed)
import numpy as np
import pytest
from astropy.io import fits

from tessphot.config.photometry import PhotometrySettings
from tessphot.constants import FIRST_SCIENCE_CCD_COLUMN, FIRST_SCIENCE_CCD_ROW
from tessphot.evaluation.simulate.truth import read_truth
from tessphot.lightcurve.writer import settings_from_header
from tessphot.photometry.linpsf import LinPSFPhotometry
from tessphot.photometry.psf import PSFPhotometry
from tessphot.photometry.psf_offsets import _Scene, fit_offsets
from tessphot.photometry.scene import ccd_prf
from tessphot.photometry.target import open_target
from tessphot.photometry.task import photometry_task
from tessphot.prepare.blocks import replace_images, stored_images
from tessphot.prf import AnalyticPRF, prf_images
from tessphot.sources import clear_cache, ffi_source
from tessphot.tasks import STATUS

#: Where the catalogue puts star A wrongly, relative to its true position [px].
CATALOGUE_ERROR = (0.6, -0.35)
#: The drift given to a star over the data [px] (row, column).
DRIFT = (0.5, -0.3)


def _method(cls, starid, folder, settings=None):
    """A photometry method on a target of the test sector (camera 1, CCD 4)."""
    return cls(open_target(starid, folder, 1, 1, 4, settings=settings), settings)


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def _truth(folder: Path, starid: int, cadenceno: np.ndarray):
    """True flux, row and column of a star at the cadences."""
    truth = read_truth(next((folder / "truth").glob("truth_*.hdf5")))
    k = np.searchsorted(truth["ffiindex"], cadenceno)
    i = int(np.flatnonzero(truth["stars"]["starid"] == starid)[0])
    return truth["flux"][k, i], truth["row"][k, i], truth["col"][k, i]


def _shift_catalogue(folder: Path, starid: int, d_row: float, d_col: float) -> None:
    """Move a star in the catalogue by (d_row, d_col) px."""
    data = ffi_source(folder, 1, 1, 4, 19.0)
    i = data.star(starid)
    ra, dec = data.wcs.all_pix2world(data.stars.col[i] + d_col, data.stars.row[i] + d_row, 0)
    clear_cache()
    con = sqlite3.connect(next(folder.glob("catalog_*.sqlite")))
    with con:
        con.execute(
            "UPDATE catalog SET ra = ?, decl = ? WHERE starid = ?", (float(ra), float(dec), starid)
        )
    con.close()


def _move_star(folder: Path, starid: int, shift) -> tuple[np.ndarray, np.ndarray]:
    """Move a star on the prepared images: its light at its true position plus
    ``shift(time) -> (d_row, d_col)`` instead of at its true position (the PRF of the
    simulation). Returns its new true rows and columns per cadence."""
    truth = read_truth(next((folder / "truth").glob("truth_*.hdf5")))
    i = int(np.flatnonzero(truth["stars"]["starid"] == starid)[0])
    with h5py.File(next(folder.glob("sector*.hdf5")), "r+") as h5:
        origin = tuple(int(v) for v in h5.attrs["origin"])
        prf = ccd_prf(h5.attrs.get("settings"), "", 1, 1, 4)
        cube = stored_images(h5, 0, h5["images"].shape[0])
        k = np.searchsorted(truth["ffiindex"], h5["cadenceno"][()])
        d_row, d_col = shift(h5["time"][()])
        rows, cols = truth["row"][k, i][:, None], truth["col"][k, i][:, None]
        nodes = truth["stars"]["row"][i : i + 1], truth["stars"]["col"][i : i + 1]
        shape = cube.shape[1:]
        moved = prf_images(prf, rows + d_row[:, None], cols + d_col[:, None], *nodes, origin, shape)
        still = prf_images(prf, rows, cols, *nodes, origin, shape)
        light = (moved - still)[:, 0] * truth["flux"][k, i][:, None]
        replace_images(h5, cube + light.reshape(cube.shape).astype(cube.dtype))
    clear_cache()
    return rows[:, 0] + d_row, cols[:, 0] + d_col


def _run(cls, folder: Path, starid: int, **psf):
    phot = _method(cls, starid, folder, {"psf": psf} if psf else {})
    status = phot.run().status
    return phot, status


def _scores(phot, true_flux, true_row=None, true_col=None):
    """Median flux ratio, pulls, and the largest position error [px] of a light curve."""
    lc = phot.columns
    good = np.isfinite(lc.flux)
    ratio = float(np.median(lc.flux[good] / true_flux[good]))
    pull = (lc.flux - true_flux)[good] / lc.flux_err[good]
    position = np.nan
    if true_row is not None:
        position = float(
            np.max(np.hypot(lc.centroid_row - true_row, lc.centroid_column - true_col)[good])
        )
    return ratio, pull, position


# ------------------------------------------------------------------------------------------
# The engine on synthetic data


def test_offsets_and_drifts_of_two_stars_are_recovered():
    """Two blended stars at wrong positions, one drifting: the fit over all cadences finds
    both offsets and the drift within their errors."""
    rng = np.random.default_rng(7)
    prf = AnalyticPRF()
    n = 300
    tau = np.linspace(-10.0, 10.0, n)
    cat_rows = np.array([10.3, 12.1])
    cat_cols = np.array([10.6, 8.9])
    offsets = np.array([[0.45, -0.3], [-0.2, 0.25]])
    drifts = np.array([[0.01, 0.02], [0.0, 0.0]])
    true_rows = cat_rows + offsets[:, 0] + tau[:, None] * drifts[:, 0]
    true_cols = cat_cols + offsets[:, 1] + tau[:, None] * drifts[:, 1]
    origin, shape = (4, 4), (13, 13)
    images = prf_images(prf, true_rows, true_cols, cat_rows, cat_cols, origin, shape)
    fluxes = np.array([8000.0, 4000.0]) * (1 + 0.05 * np.sin(tau / 3))[:, None]
    sigma = 4.0
    data = np.einsum("nsp,ns->np", images, fluxes) + 2.0 + rng.normal(0.0, sigma, (n, 169))
    scene = _Scene(
        prf=prf,
        rows=np.tile(cat_rows, (n, 1)),
        cols=np.tile(cat_cols, (n, 1)),
        node_rows=cat_rows,
        node_cols=cat_cols,
        origin=origin,
        shape=shape,
        pixels=np.ones(169, dtype=bool),
        cat_flux=np.array([8000.0, 4000.0]),
        fit_order=np.array([0, 1]),
        fixed=np.array([], dtype=int),
        n_offset=2,
        background=True,
    )
    fit = fit_offsets(
        scene,
        np.arange(n),
        data,
        np.full((n, 169), sigma**-2),
        tau,
        (-10.0, 10.0),
        drift=True,
        bound=2.0,
        tolerance=1e-4,
        max_iterations=30,
    )
    assert fit.converged and not fit.problem and 2 <= fit.iterations < 30
    errors = np.sqrt(np.diagonal(fit.covariance)).reshape(2, 2, 2)
    assert np.all(errors > 0) and np.all(errors < 0.01)
    assert np.all(np.abs(fit.offsets - offsets) < 5 * errors[0] + 0.005)
    assert np.all(np.abs(fit.drifts - drifts) < 5 * errors[1] + 0.0005)


# ------------------------------------------------------------------------------------------
# Against the simulator's truth


@pytest.mark.parametrize("star", ["A", "B"])
def test_isolated_star_flux_and_position(small_sector, sector_copy, star):
    """The flux of an isolated star is its true flux within the errors, and its fitted
    position its true one."""
    starid = small_sector[star][0]
    phot, status = _run(PSFPhotometry, sector_copy, starid)
    assert status == STATUS.OK and not phot.errors
    lc = phot.columns
    true_flux, true_row, true_col = _truth(sector_copy, starid, lc.cadenceno)
    assert np.isfinite(lc.flux).mean() > 0.9
    ratio, pull, position = _scores(phot, true_flux, true_row, true_col)
    assert abs(ratio - 1) < 0.005
    assert abs(np.mean(pull)) < 0.5 and 0.6 < np.std(pull) < 1.5
    assert position < 0.02
    keys = phot.method_keywords
    assert keys["PSF_CONV"][0] and keys["PSF_NBAD"][0] == 0 and keys["PSF_POS"][0] == "sector"
    assert abs(keys["PSF_DROW"][0]) < 0.02 and abs(keys["PSF_DCOL"][0]) < 0.02
    assert 0 < keys["PSF_EROW"][0] < 0.01 and phot.contamination == 0.0
    assert 0 <= phot.crowding < 0.1


def test_wrong_catalogue_position_is_found(small_sector, sector_copy):
    """A star whose catalogue position is 0.7 px off: linear PSF photometry loses much of
    its flux; PSF photometry finds the offset and the whole flux."""
    starid = small_sector["A"][0]
    _shift_catalogue(sector_copy, starid, *CATALOGUE_ERROR)
    linear, _ = _run(LinPSFPhotometry, sector_copy, starid)
    true_flux, true_row, true_col = _truth(sector_copy, starid, linear.columns.cadenceno)
    linear_ratio, linear_pull, _ = _scores(linear, true_flux)
    assert linear_ratio < 0.9 and abs(np.mean(linear_pull)) > 10
    phot, status = _run(PSFPhotometry, sector_copy, starid)
    assert status == STATUS.OK
    ratio, pull, position = _scores(phot, true_flux, true_row, true_col)
    assert abs(ratio - 1) < 0.01 and abs(np.mean(pull)) < 0.5 and np.std(pull) < 1.5
    assert position < 0.05
    keys = phot.method_keywords
    assert abs(keys["PSF_DROW"][0] + CATALOGUE_ERROR[0]) < 0.05
    assert abs(keys["PSF_DCOL"][0] + CATALOGUE_ERROR[1]) < 0.05
    assert keys["PSF_CONV"][0] and keys["PSF_NIT"][0] >= 2


def test_neighbour_with_a_wrong_position_is_fitted(small_sector, sector_copy):
    """A faint star 1.5-4 px from the bright star B, whose catalogue position is 0.6 px off:
    B's offset is fitted too, and the faint star's flux is right (linear PSF photometry puts
    B's light into it)."""
    truth = read_truth(next((sector_copy / "truth").glob("truth_*.hdf5")))
    stars = truth["stars"]
    b = int(np.flatnonzero(stars["starid"] == small_sector["B"][0])[0])
    distance = np.hypot(stars["row"] - stars["row"][b], stars["col"] - stars["col"][b])
    near = np.flatnonzero((distance > 1.5) & (distance < 4))
    starid = int(stars["starid"][near[np.argmin(stars["tmag"][near])]])
    _shift_catalogue(sector_copy, small_sector["B"][0], -CATALOGUE_ERROR[0], CATALOGUE_ERROR[1])
    linear, _ = _run(LinPSFPhotometry, sector_copy, starid)
    true_flux, true_row, true_col = _truth(sector_copy, starid, linear.columns.cadenceno)
    linear_ratio, _, _ = _scores(linear, true_flux)
    assert abs(linear_ratio - 1) > 0.5
    phot, status = _run(PSFPhotometry, sector_copy, starid)
    assert status == STATUS.OK and phot.method_keywords["PSF_NPOS"][0] == 2
    ratio, pull, position = _scores(phot, true_flux, true_row, true_col)
    assert abs(ratio - 1) < 0.01 and np.std(pull) < 1.5 and position < 0.05
    np.testing.assert_allclose(
        phot.offset_fit.offsets[1], [CATALOGUE_ERROR[0], -CATALOGUE_ERROR[1]], atol=0.02
    )


def test_drifting_star_is_followed(small_sector, sector_copy):
    """A star drifting by half a pixel over the data (a wrong proper motion): the drift of
    the offsets follows it; constant offsets cannot."""
    starid = small_sector["A"][0]

    def drift(time):
        x = (time - time[0]) / (time[-1] - time[0])
        return DRIFT[0] * x, DRIFT[1] * x

    true_row, true_col = _move_star(sector_copy, starid, drift)
    phot, status = _run(PSFPhotometry, sector_copy, starid)
    assert status == STATUS.OK
    lc = phot.columns
    true_flux, _, _ = _truth(sector_copy, starid, lc.cadenceno)
    ratio, pull, position = _scores(phot, true_flux, true_row, true_col)
    assert abs(ratio - 1) < 0.005 and 0.6 < np.std(pull) < 1.5 and position < 0.02
    span = float(np.ptp(phot.target.source.time))
    keys = phot.method_keywords
    assert abs(keys["PSF_VROW"][0] - DRIFT[0] / span) < 0.02
    assert abs(keys["PSF_VCOL"][0] - DRIFT[1] / span) < 0.02
    constant, _ = _run(PSFPhotometry, sector_copy, starid, drift=False)
    _, constant_pull, constant_position = _scores(constant, true_flux, true_row, true_col)
    assert constant_position > 0.2 and np.std(constant_pull) > 10


def test_star_moving_per_cadence_is_followed(small_sector, sector_copy):
    """A star that wobbles and jumps (motion no model over the data describes): the
    per-cadence positions follow it, with fluxes and errors as good as for a still star."""
    starid = small_sector["B"][0]

    def wobble(time):
        x = (time - time[0]) / (time[-1] - time[0])
        return 0.3 * np.sin(4 * np.pi * x), np.where(x > 0.5, 0.4, 0.0)

    true_row, true_col = _move_star(sector_copy, starid, wobble)
    sector, _ = _run(PSFPhotometry, sector_copy, starid)
    true_flux, _, _ = _truth(sector_copy, starid, sector.columns.cadenceno)
    _, sector_pull, sector_position = _scores(sector, true_flux, true_row, true_col)
    assert sector_position > 0.2 and np.std(sector_pull) > 10
    phot, status = _run(PSFPhotometry, sector_copy, starid, positions="cadence")
    assert status == STATUS.OK and phot.method_keywords["PSF_POS"][0] == "cadence"
    ratio, pull, position = _scores(phot, true_flux, true_row, true_col)
    assert abs(ratio - 1) < 0.005
    assert abs(np.mean(pull)) < 0.5 and 0.6 < np.std(pull) < 1.5
    assert position < 0.02 and phot.failed_cadences == 0


def test_failed_position_fit_falls_back_with_a_warning(small_sector, sector_copy):
    """A position fit that does not converge, or that runs into psf_max_offset, is
    abandoned: catalogue positions (linear PSF photometry's fluxes), a WARNING saying why."""
    starid = small_sector["A"][0]
    _shift_catalogue(sector_copy, starid, *CATALOGUE_ERROR)
    linear, _ = _run(LinPSFPhotometry, sector_copy, starid)
    phot, status = _run(PSFPhotometry, sector_copy, starid, max_iterations=1)
    assert status == STATUS.WARNING
    assert any("did not converge in 1 iterations" in e for e in phot.errors)
    assert not phot.method_keywords["PSF_CONV"][0]
    assert phot.method_keywords["PSF_DROW"][0] == 0.0
    np.testing.assert_allclose(phot.columns.flux, linear.columns.flux, rtol=1e-6)
    bounded, status = _run(PSFPhotometry, sector_copy, starid, max_offset=0.4)
    assert status == STATUS.WARNING
    assert any("ran into the bound psf_max_offset = 0.4 px" in e for e in bounded.errors)
    cadence, status = _run(PSFPhotometry, sector_copy, starid, max_offset=0.4, positions="cadence")
    assert status == STATUS.WARNING and cadence.failed_cadences > 0
    assert any("per-cadence position fit failed" in e for e in cadence.errors)
    assert np.isfinite(cadence.columns.flux).mean() > 0.9


def _task(starid: int) -> dict:
    task = {"priority": 1, "starid": starid, "sector": 1, "camera": 1, "ccd": 4}
    return task | {"cadence": 1800, "datasource": "ffi", "method": None}


def test_psf_task_writes_its_light_curve(small_sector, sector_copy):
    starid = small_sector["A"][0]
    _shift_catalogue(sector_copy, starid, *CATALOGUE_ERROR)
    result = photometry_task(
        _task(starid),
        sector_copy,
        sector_copy / "lc",
        method="psf",
        settings={"psf": {"positions": "cadence"}},
    )
    assert result.status == STATUS.OK and result.method_used == "psf"
    assert result.details["errors"] == []
    path = sector_copy / result.details["filepath_lightcurve"]
    with fits.open(path) as hdul:
        header = hdul[0].header
        assert header["PHOTMET"] == "psf" and header["PSF_POS"] == "cadence"
        assert abs(header["PSF_DROW"] + CATALOGUE_ERROR[0]) < 0.05 and header["PSF_CONV"]
        assert header["PSF_NPIX"] == result.details["mask_size"] and 0 <= header["PSF_CONT"]
        for key in ("PSF_DCOL", "PSF_EROW", "PSF_ECOL", "PSF_VROW", "PSF_VCOL", "PSF_TREF"):
            assert np.isfinite(header[key])
        data = hdul["LIGHTCURVE"].data
        assert np.isfinite(data["FLUX_RAW_ERR"]).mean() > 0.9
        _, true_row, true_col = _truth(sector_copy, starid, data["CADENCENO"])
        row = data["MOM_CENTR2"] - FIRST_SCIENCE_CCD_ROW
        col = data["MOM_CENTR1"] - FIRST_SCIENCE_CCD_COLUMN
        assert np.nanmax(np.hypot(row - true_row, col - true_col)) < 0.05
    settings = settings_from_header(header)
    for name in PhotometrySettings.keys():
        assert f"photometry.{name}" in settings
    assert settings["photometry.psf.positions"] == "cadence"


def test_psf_task_errors_are_clear(small_sector, sector_copy):
    """No data in the fit region, or an invalid setting: an ERROR with a clear message."""
    starid = small_sector["A"][0]
    invalid = {"psf_positions": "everywhere"}
    result = photometry_task(
        _task(starid), sector_copy, sector_copy / "lc", method="psf", settings=invalid
    )
    assert result.status == STATUS.ERROR
    assert "invalid setting psf_positions = 'everywhere'" in result.details["errors"][0]
    clear_cache()
    path = next(sector_copy.glob("sector*.hdf5"))
    with h5py.File(path, "r+") as h5:
        r0, c0 = (int(v) for v in h5.attrs["origin"])
        rows = slice(int(small_sector["A"][2]) - r0 - 5, int(small_sector["A"][2]) - r0 + 6)
        cols = slice(int(small_sector["A"][3]) - c0 - 5, int(small_sector["A"][3]) - c0 + 6)
        h5["sumimage"][rows, cols] = np.nan
    clear_cache()
    result = photometry_task(_task(starid), sector_copy, sector_copy / "lc", method="psf")
    assert result.status == STATUS.ERROR and result.method_used == "psf"
    assert result.details["errors"] == [f"ERROR: TIC {starid}: no data within the fit radius"]
