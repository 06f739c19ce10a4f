"""CBVs from a file: SPOC's published vectors (the real reference file) or another run's."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
from astropy.io import fits

from tessphot.correct import stage
from tessphot.correct.cbv_file import read_cbv, write_cbv
from tessphot.correct.external import external_cbvs, resample
from tessphot.correct.fit import fit_cbvs
from tessphot.correct.stage import run_corrections
from tessphot.io.errors import FileProblem

SPOC_CBV = "reference/tess2019085135100-s0010-2-4-0140-s_cbv.fits"


@pytest.fixture
def spoc(test_data):
    return test_data / SPOC_CBV


def test_spoc_vectors_of_a_camera_and_ccd(spoc):
    cbvs = external_cbvs(spoc, 2, 4, 0)
    assert cbvs.n_vectors == 16 and cbvs.n_spikes == 6
    assert abs(cbvs.cadence - 120.0) < 0.01 and cbvs.time.size == 100
    assert cbvs.settings["source"].startswith("SPOC ")
    with pytest.raises(FileProblem, match="no SPOC CBVs of camera 1 CCD 4"):
        external_cbvs(spoc, 1, 4, 0)


def test_resampled_to_longer_exposures_are_their_means(spoc):
    cbvs = external_cbvs(spoc, 2, 4, 0)
    # 10-min exposures centred on every fifth 2-min cadence's middle.
    time = cbvs.time[2:-2:5]
    coarse = resample(cbvs, time, np.arange(time.size), 600.0)
    expected = np.array([cbvs.vectors[k - 2 : k + 3].mean(axis=0) for k in range(2, 98, 5)])
    np.testing.assert_allclose(coarse.vectors, expected[: time.size], rtol=1e-6)
    assert coarse.n_spikes == 0 and not coarse.gap.any()
    # On their own cadences they are unchanged; outside their span they are gaps.
    same = resample(cbvs, cbvs.time, cbvs.cadenceno, 120.0)
    np.testing.assert_allclose(same.vectors, cbvs.vectors, rtol=1e-6)
    assert same.n_spikes == 6
    outside = resample(cbvs, cbvs.time + 1.0, cbvs.cadenceno + 1000, 120.0)
    assert outside.gap.all()


def test_a_lone_star_is_corrected_with_file_vectors(spoc):
    # The reference file's 100 cadences are flat (a format sample): smooth vectors on its
    # cadences stand in for a sector's.
    cbvs = external_cbvs(spoc, 2, 4, 0)
    x = np.linspace(-1, 1, cbvs.time.size)
    shapes = np.column_stack([x, x**2 - 1 / 3, np.exp(-3 * (x + 1))])
    cbvs = replace(cbvs, vectors=shapes / np.linalg.norm(shapes, axis=0))
    rng = np.random.default_rng(8)
    systematics = cbvs.vectors @ np.array([0.02, -0.01, 0.015])
    flux = 5e4 * (1 + systematics) * (1 + 1e-4 * rng.standard_normal(cbvs.time.size))
    fit = fit_cbvs(flux, cbvs, good=np.ones(cbvs.time.size, bool))
    corrected = flux / fit.model - 1
    assert fit.method == "ls" and np.std(systematics) > 1e-3
    assert np.std(corrected) < 1.2e-4


def test_stage_with_a_cbv_file(run_copy, tmp_path, spoc, monkeypatch):
    other = tmp_path / "other"
    shutil.copytree(run_copy, other)
    # SPOC's file holds another camera: a clear ERROR for every light curve.
    report = run_corrections(run_copy, settings={"cbv_file": str(spoc)})
    assert report.counts == {"ERROR": report.corrected}
    assert "no SPOC CBVs of camera 1 CCD 4" in report.errors[0]
    # Vectors from a file used for stars on their own (a group too small for its own
    # vectors): a ramp over the small sector's cadences, written as a tessphot CBV file.
    first = run_corrections(other)
    (made,) = first.cbv_files
    mine = read_cbv(made)
    ramp = np.linspace(-1, 1, mine.time.size)
    vectors = (ramp / np.linalg.norm(ramp))[:, None]
    cbv_file = write_cbv(tmp_path / "mine_cbv.fits", replace(mine, vectors=vectors))
    monkeypatch.setattr(stage, "MIN_GROUP_STARS", 10_000)
    report = run_corrections(run_copy, settings={"cbv_file": str(cbv_file)})
    assert not report.errors and set(report.counts) <= {"OK", "WARNING"}
    for path in (run_copy / "lightcurves").rglob("*-tasoc_lc.fits.gz"):
        with fits.open(path) as hdus:
            header = hdus[0].header
            assert header["CORRMET"] == "cbv" and header["CBV_NUM"] <= 1
            assert np.isfinite(hdus["LIGHTCURVE"].data["FLUX_CORR"]).any()
