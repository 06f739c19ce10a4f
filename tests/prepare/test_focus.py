"""The effective PRF's change with time (focus): measured by prepare, stored, used by PSF fits.

On small simulated sectors at the start of sector 1's first orbit with the real SPOC PRF
and the simulator's PRF differences: once with its focus change (the PRF 2 % broader at the
orbit's start, settling over a day) and once without it.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from tessphot.config.photometry import PhotometrySettings
from tessphot.config.prepare import BackgroundSettings, EffectivePRFSettings, MotionSettings
from tessphot.config.simulate import PRFDifferenceSettings, SimulationConfig
from tessphot.evaluation.simulate.truth import read_truth
from tessphot.io import find_ffis
from tessphot.photometry.psf import PSFPhotometry
from tessphot.photometry.target import open_target
from tessphot.prepare.cube import PreparedCube
from tessphot.prepare.effective_prf import FOCUS_GROUP, GROUP, read_effective_prf
from tessphot.prepare.focus import build_focus_change, catalog_stars
from tessphot.prepare.frames import load_frame
from tessphot.prepare.reference import FOCUS_PENDING, finish_part
from tessphot.prepare.stars import region_stars
from tessphot.prf.effective import EffectivePRF
from tessphot.prf.focus import FocusedPRF
from tessphot.sources import clear_cache

#: Cadences: 16 hours of an orbit's start (the bright region of the effective PRF's tests).
CADENCES = 32


def _config(make, prf_dir, focus_change: float) -> SimulationConfig:
    return make(
        prf_dir,
        PRFDifferenceSettings(enabled=True, focus_change=focus_change, halo_fraction=0.0),
        cadences=CADENCES,
        bright=0,
        variable_fraction=0.0,
    )


@pytest.fixture(scope="module")
def focused(tmp_path_factory, builder, region_config, prf_dir):
    """The sector with the default focus change, prepared."""
    build, _ = builder
    config = _config(region_config, prf_dir, 0.02)
    return build(tmp_path_factory.mktemp("focus"), config, prf_dir=str(prf_dir))


@pytest.fixture(scope="module")
def unfocused(tmp_path_factory, builder, region_config, prf_dir):
    """The same sector without a focus change (width and shape still differ), prepared."""
    build, _ = builder
    config = _config(region_config, prf_dir, 0.0)
    return build(tmp_path_factory.mktemp("nofocus"), config, prf_dir=str(prf_dir))


def _stored(path) -> dict:
    with h5py.File(path, "r") as h5:
        group = h5[GROUP][FOCUS_GROUP]
        return {**dict(group.attrs), **{name: group[name][()] for name in group}}


def test_focus_change_recovered(focused):
    stored = _stored(focused.hdf5)
    assert stored["significant"] and stored["n_stars"] >= 5
    focus = read_truth(focused.truth)["prf_differences"]["focus"]
    measured, smoothed, error = stored["measured"], stored["smoothed"], stored["error"]
    ok = np.isfinite(measured)
    assert ok.sum() >= CADENCES - 2
    # The measured scale follows the truth's focus relative to the average image's PRF:
    # the change over the 16 hours (about 1 %) within a few per cent of itself, ...
    relative = focus / np.mean(focus[ok])
    slope = np.polyfit(relative[ok], smoothed[ok], 1)[0]
    assert slope == pytest.approx(1.0, abs=0.1)
    change = smoothed[ok][0] - smoothed[ok][-1]
    assert change == pytest.approx(relative[ok][0] - relative[ok][-1], rel=0.1)
    # ... each cadence's scale within its uncertainty of the truth (less a common offset:
    # the static effective PRF's own width error, which the scale corrects too).
    residual = measured[ok] - relative[ok]
    pull = (residual - np.median(residual)) / error[ok]
    assert np.median(np.abs(pull)) < 1.5
    np.testing.assert_allclose(stored["scale"], smoothed)


def test_no_focus_change_reported_without_one(unfocused):
    stored = _stored(unfocused.hdf5)
    assert not stored["significant"]
    assert stored["significance"] < EffectivePRFSettings().focus_significance
    np.testing.assert_array_equal(stored["scale"], 1.0)
    with PreparedCube(unfocused.hdf5) as cube:
        prf = cube.effective_prf()
    assert isinstance(prf, EffectivePRF) and not isinstance(prf, FocusedPRF)


def test_focus_round_trip(focused, tmp_path):
    """Stored and read back through the cube's reader: the stored scale, cadence by cadence."""
    with PreparedCube(focused.hdf5) as cube:
        prf = cube.effective_prf()
        n = cube.n_cadences
    assert isinstance(prf, FocusedPRF)
    np.testing.assert_array_equal(prf.scale, _stored(focused.hdf5)["scale"])
    assert prf.scale.size == n and prf.amplitude > 0.003
    np.testing.assert_allclose(prf.tables, prf.static.tables, rtol=1e-12, atol=1e-20)
    # Measured again on a copy: the same, but for the motion the file got after the focus
    # was measured (calibrated with it: 8e-6 in scale here); switched off: nothing measured,
    # nothing changed.
    copy = tmp_path / focused.hdf5.name
    copy.write_bytes(focused.hdf5.read_bytes())
    with PreparedCube(copy) as cube:
        catalogued = catalog_stars(cube, focused.folder)
    again = build_focus_change(copy, EffectivePRFSettings(), catalogued=catalogued)
    np.testing.assert_allclose(again.scale, prf.scale, rtol=0, atol=0.01 * prf.amplitude)
    assert build_focus_change(copy, EffectivePRFSettings(focus=False)) is None
    with h5py.File(copy, "r") as h5:
        back = read_effective_prf(h5[GROUP].file)
    np.testing.assert_array_equal(back.scale, again.scale)


def _psf_error(folder, starid: int, truth: dict, *, focus: bool) -> float:
    """Rms of the PSF flux's relative error against the truth (scale fitted), fixed time."""
    settings = PhotometrySettings.from_mapping({"effective_prf_focus": focus})
    clear_cache()
    phot = PSFPhotometry(open_target(starid, folder, 1, 1, 4, settings=settings), settings)
    phot.run()
    flux = np.asarray(phot.columns.flux, dtype=float)
    index = int(np.flatnonzero(truth["stars"]["starid"] == starid)[0])
    true = truth["flux"][:, index]
    ok = np.isfinite(flux)
    scale = np.sum(flux[ok] * true[ok]) / np.sum(true[ok] ** 2)
    return float(np.std(flux[ok] / (scale * true[ok]) - 1))


def test_psf_photometry_follows_the_focus(focused):
    truth = read_truth(focused.truth)
    stars = truth["stars"]
    with PreparedCube(focused.hdf5) as cube:
        origin, shape = cube.origin, cube.shape
    inside = (
        (stars["row"] > origin[0] + 15)
        & (stars["row"] < origin[0] + shape[0] - 15)
        & (stars["col"] > origin[1] + 15)
        & (stars["col"] < origin[1] + shape[1] - 15)
        & (stars["tmag"] > 8.5)
        & (stars["tmag"] < 10.5)
    )
    # The brightest such star without a neighbour within 4 Tmag of it and 8 px.
    for i in np.flatnonzero(inside)[np.argsort(stars["tmag"][inside])]:
        d = np.hypot(stars["row"] - stars["row"][i], stars["col"] - stars["col"][i])
        if not np.any((d > 0) & (d < 8) & (stars["tmag"] < stars["tmag"][i] + 4)):
            starid = int(stars["starid"][i])
            break
    static = _psf_error(focused.folder, starid, truth, focus=False)
    focused_error = _psf_error(focused.folder, starid, truth, focus=True)
    # The static PRF's flux follows the focus (its width 1 % off over the 16 hours).
    assert focused_error < 0.3 * static


def test_a_pending_focus_is_measured_when_the_run_resumes(focused, tmp_path, prf_dir):
    """Killed after the file was complete but before its focus and motion were finished:
    finishing the part again measures them, with the motion calibrated with the focus."""
    part = tmp_path / (focused.hdf5.name + ".part")
    part.write_bytes(focused.hdf5.read_bytes())
    with h5py.File(focused.hdf5, "r") as h5:
        motion = h5["motion"][:]
    with h5py.File(part, "r+") as h5:
        del h5[GROUP][FOCUS_GROUP]
        h5["motion"].attrs["rms_residual"] = -1.0
        h5.attrs[FOCUS_PENDING] = True
    first = load_frame(str(find_ffis(focused.folder)[0]), None)
    mos = MotionSettings()
    stars = region_stars(focused.folder, 1, 1, 4, first, prf_dir, mos, BackgroundSettings())
    finish_part(part, mos, stars, str(prf_dir), np.zeros(1), EffectivePRFSettings())
    with h5py.File(part, "r") as h5:
        assert not h5.attrs[FOCUS_PENDING]
        assert FOCUS_GROUP in h5[GROUP]
        assert h5["motion"].attrs["n_stars"] == stars.ref_rows.size
        assert h5["motion"].attrs["rms_residual"] >= 0  # fitted again
        # As the run that was not killed, but for the focus measured on the motion that run
        # fitted with it (1e-5 in scale): under 1e-5 px.
        np.testing.assert_allclose(h5["motion"][:], motion, rtol=0, atol=1e-5)
