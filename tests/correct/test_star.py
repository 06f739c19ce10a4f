"""One light curve through ``correct_star``: a jump injected into its raw flux comes out
corrected in ``FLUX_CORR``, flagged in ``QUALITY`` and counted in ``CORRJUMP``, with every
corrector (CBVs, none); ``FLUX_RAW`` stays as it was."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits

from tessphot.config.correct import CorrectSettings
from tessphot.correct.cbv import build_cbvs
from tessphot.correct.fit import fit_cbvs
from tessphot.correct.prior import NeighbourPriors
from tessphot.correct.quality import QUALITY_JUMP_ADDITIVE_CONSTANT, QUALITY_SIGMA_CLIP
from tessphot.correct.star import StarJob, correct_star
from tessphot.correct.store import CorrectionTask
from tessphot.tasks import STATUS

#: A light-curve file of the TASOC format with 1282 rows: the container written to.
REFERENCE = (
    "lightcurves/hlsp_tasoc_tess_ffi_tic00261136679-s0001-cam4-ccd2-c1800_tess_v05_ens-lc.fits"
)
N_ROWS = 1282
#: The injected jump: its first cadence and size [relative flux].
JUMP_ROW = 900
JUMP = 2e-3


@pytest.fixture(scope="module")
def area(synthetic):
    """A synthetic CBV area of as many cadences as the file has rows, its CBVs and the
    prior of :func:`_star` from its neighbours (a MAP fit, as the stage makes)."""
    sector = synthetic.make_sector(n_stars=200, n_cadences=N_ROWS, seed=3)
    cbvs = build_cbvs(
        sector.flux, good=sector.good, cadenceno=sector.cadenceno, time=sector.time,
        dumps=sector.dumps, sector=1, camera=1, ccd=4, cadence=synthetic.cadence, cbv_area=141,
    )  # fmt: skip
    coefficients = np.array(
        [fit_cbvs(f, cbvs, good=sector.good).ls_coefficients for f in sector.flux]
    )
    priors = NeighbourPriors(sector.rows, sector.cols, sector.tmags, coefficients)
    star = _star(sector)
    prior = priors.prior(sector.rows[star], sector.cols[star], sector.tmags[star], exclude=star)
    return sector, cbvs, prior


def _star(sector) -> int:
    """A constant star of the area with noise well under the jump."""
    quiet = np.flatnonzero(~sector.variable & (sector.noise < JUMP / 10))
    return int(quiet[0])


def _job(tmp_path, test_data, sector, flux, settings, *, fresh=True, **corrector) -> StarJob:
    """The job of a light curve whose file holds ``flux`` as its ``FLUX_RAW`` (``fresh``:
    the file made anew, else the one corrected before)."""
    path = tmp_path / "lc.fits"
    if fresh:
        shutil.copy(test_data / REFERENCE, path)
        path.chmod(0o644)
        with fits.open(path, mode="update") as hdus:
            hdus["LIGHTCURVE"].data["FLUX_RAW"] = np.nan_to_num(flux, nan=0.0)
            hdus["LIGHTCURVE"].data["QUALITY"] = 0
    task = CorrectionTask(
        priority=1, starid=261136679, sector=1, camera=1, ccd=4, cadence=1800, cbv_area=141,
        tmag=10.0, lightcurve="lc.fits", row=1000.0, column=1000.0, contamination=0.0,
    )  # fmt: skip
    return StarJob(
        task=task,
        folders=(tmp_path, tmp_path),
        flux=flux,
        flux_err=np.full(N_ROWS, 1.0),
        rows=np.arange(N_ROWS),
        good=sector.good,
        time=sector.time,
        settings=CorrectSettings.from_mapping(settings),
        dumps=sector.dumps,
        **corrector,
    )


def _read(tmp_path):
    with fits.open(tmp_path / "lc.fits") as hdus:
        table = hdus["LIGHTCURVE"].data
        return (
            hdus[0].header.copy(),
            np.array(table["FLUX_CORR"]),
            np.array(table["QUALITY"]),
            np.array(table["FLUX_RAW"]),
        )


def _step(ppm, good, row=JUMP_ROW, n=48):
    """Median of the day after ``row`` minus the day before [ppm] (good cadences)."""
    rows = np.flatnonzero(good & np.isfinite(ppm))
    k = np.searchsorted(rows, row)
    return float(np.median(ppm[rows[k : k + n]]) - np.median(ppm[rows[k - n : k]]))


@pytest.mark.parametrize("corrector", ["cbv", "none"])
def test_a_jump_is_corrected_flagged_and_counted(tmp_path, test_data, area, corrector):
    sector, cbvs, prior = area
    star = _star(sector)
    flux = sector.flux[star].copy()
    flux[JUMP_ROW:] *= 1 + JUMP
    if corrector == "cbv":
        kwargs = {"cbvs": cbvs, "prior": prior}
    else:  # the relative raw flux: the star's systematics taken out beforehand
        flux /= 1 + sector.systematics[star]
        kwargs = {"unfitted": "a star on its own"}
    noise = sector.noise[star] * 1e6  # [ppm]
    result = correct_star(_job(tmp_path, test_data, sector, flux, {}, **kwargs))
    assert result.status == (STATUS.OK if corrector == "cbv" else STATUS.WARNING)
    header, ppm, quality, raw = _read(tmp_path)
    # The fit takes part of the star's own jump into its vectors (the steps at the momentum
    # dumps): the smaller steps this leaves in FLUX_CORR at the dumps are corrected too.
    assert 1 <= header["CORRJUMP"] <= (3 if corrector == "cbv" else 1)
    flagged = np.flatnonzero(quality & QUALITY_JUMP_ADDITIVE_CONSTANT)
    assert np.min(np.abs(flagged - JUMP_ROW)) <= 1
    dumps = np.flatnonzero(sector.dumps)
    others = flagged[np.abs(flagged - JUMP_ROW) > 1]
    assert np.isin(others, np.r_[dumps, dumps + 1]).all()
    assert not np.any(quality & ~(QUALITY_JUMP_ADDITIVE_CONSTANT | QUALITY_SIGMA_CLIP))
    assert abs(_step(ppm, sector.good)) < 5 * noise * np.sqrt(np.pi / 48)
    np.testing.assert_array_equal(raw, np.nan_to_num(flux, nan=0.0))

    # Switched off: the jump stays in FLUX_CORR, unflagged, and a correction made again
    # leaves no flag of the earlier one.
    settings = {"jumps": {"enabled": False}}
    correct_star(_job(tmp_path, test_data, sector, flux, settings, fresh=False, **kwargs))
    header, ppm, quality, _ = _read(tmp_path)
    assert header["CORRJUMP"] == 0 and not np.any(quality & QUALITY_JUMP_ADDITIVE_CONSTANT)
    assert _step(ppm, sector.good) == pytest.approx(JUMP * 1e6, rel=0.3)


def test_no_jump_without_one(tmp_path, test_data, area):
    sector, cbvs, prior = area
    star = _star(sector)
    job = _job(tmp_path, test_data, sector, sector.flux[star], {}, cbvs=cbvs, prior=prior)
    assert correct_star(job).method == "map"
    header, _, quality, _ = _read(tmp_path)
    assert header["CORRJUMP"] == 0 and not np.any(quality & QUALITY_JUMP_ADDITIVE_CONSTANT)
