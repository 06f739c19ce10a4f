"""Pieces of the simulator: cadences, detector, variability, background, jitter."""

from __future__ import annotations

import numpy as np
import pytest

from tessphot.config.simulate import SimulationConfig
from tessphot.evaluation.simulate import detector, variability
from tessphot.evaluation.simulate.background import BackgroundModel
from tessphot.evaluation.simulate.cadences import DUMP_QUALITY, make_cadences
from tessphot.evaluation.simulate.jitter import random_jitter, read_tess_vectors, sector1_jitter
from tessphot.evaluation.simulate.sector import simulate_sector
from tessphot.geometry import sector_geometry


@pytest.mark.parametrize(("sector", "cadence"), [(1, 1800), (27, 600), (56, 200)])
def test_cadences_per_sector(sector, cadence):
    geometry = sector_geometry(sector, 1, 1)
    cad = make_cadences(SimulationConfig(sector=sector), geometry, np.random.default_rng(0))
    step = np.diff(cad.tstart) * 86400
    assert np.median(step) == pytest.approx(cadence)
    # Cadence numbers are continuous, with a jump over the orbit gap only.
    jumps = np.flatnonzero(np.diff(cad.ffiindex) != 1)
    assert jumps.size == 1
    gap = cad.tstart[jumps[0] + 1] - cad.tstop[jumps[0]]
    assert 0.9 < gap < 1.3
    assert cad.ffiindex[jumps[0] + 1] - cad.ffiindex[jumps[0]] == round(
        (cad.tstart[jumps[0] + 1] - cad.tstart[jumps[0]]) * 86400 / cadence
    )
    # A sector is about 26 days of data.
    assert 24 < (cad.tstop[-1] - cad.tstart[0]) < 28
    # Momentum dumps every ~3.1 days are flagged.
    dumps = np.flatnonzero(cad.dumps)
    assert 6 <= dumps.size <= 9
    assert np.all(cad.quality[dumps] == DUMP_QUALITY)
    assert np.all(cad.quality[~cad.dumps] == 0)


def test_sector1_cadences_match_the_real_sequence(test_data):
    geometry = sector_geometry(1, 1, 4)
    cad = make_cadences(
        SimulationConfig(quality="sector1", sector1_dir=str(test_data / "sector001")),
        geometry,
        np.random.default_rng(0),
    )
    real_index = np.loadtxt(test_data / "sector001" / "cadences_s0001.txt", dtype=int)
    real_quality = np.loadtxt(test_data / "sector001" / "quality_s0001.txt", dtype=int)
    assert cad.ffiindex[0] == real_index[0] == 4697
    n = min(cad.ffiindex.size, real_index.size)
    np.testing.assert_array_equal(cad.quality[:n], real_quality[:n])
    assert cad.dumps.sum() == np.sum((real_quality[:n] & 32) > 0)


def test_sector1_jitter_from_quaternions(test_data):
    shifts = sector1_jitter(test_data / "sector001", 1, 300)
    assert shifts.shape == (300, 3)
    # Real pointing: a few hundredths of a pixel, tiny roll.
    assert 0.001 < np.std(shifts[:, :2]) < 0.2
    assert np.all(np.abs(shifts[:, 2]) < 1e-4)
    vectors = read_tess_vectors(test_data / "sector001" / "TessVectors_S001_C1_FFI.xz")
    assert "Quat1_Med" in vectors and vectors["Cadence"].size > 1200


def test_random_jitter_jumps_at_dumps():
    rng = np.random.default_rng(1)
    dumps = np.zeros(400, dtype=bool)
    dumps[200] = True
    shifts = random_jitter(rng, 400, dumps)
    before = shifts[150:199, :2].mean(axis=0)
    after = shifts[202:250, :2].mean(axis=0)
    jump = np.hypot(*(after - before))
    assert 0.05 < jump < 0.6
    quiet = random_jitter(np.random.default_rng(2), 5000, np.zeros(5000, dtype=bool))
    assert np.std(quiet[:, 0]) == pytest.approx(0.02, rel=0.3)


def test_bleed_conserves_charge_and_stays_in_column():
    charge = np.full((50, 5), 100.0)
    charge[25, 2] = 10 * detector.FULL_WELL
    out = detector.bleed(charge)
    assert out.sum() == pytest.approx(charge.sum())
    assert out.max() <= detector.FULL_WELL
    np.testing.assert_array_equal(out[:, [0, 1, 3, 4]], charge[:, [0, 1, 3, 4]])
    full = np.flatnonzero(out[:, 2] >= detector.FULL_WELL)
    # 10 full wells of charge over a 100 e- floor: 9 full pixels and two partly full ends.
    assert full.size == 9 and full.min() <= 25 <= full.max()
    assert out[20, 2] > 100 and out[30, 2] > 100
    # Near an edge the charge running off the array is lost.
    edge = np.zeros((10, 1))
    edge[0, 0] = 6 * detector.FULL_WELL
    out = detector.bleed(edge)
    assert out.sum() < edge.sum() and out.max() == detector.FULL_WELL


def test_exposure_keywords():
    e = detector.Exposure(1800)
    assert (e.num_frames, e.num_coadded) == (900, 720)
    assert e.exposure_time == pytest.approx(1425.6)
    assert e.deadc == pytest.approx(0.792)
    assert detector.Exposure(200).num_coadded == 80


def test_expose_noise_statistics():
    rng = np.random.default_rng(3)
    rate = np.full((300, 300), 80.0)
    exposure = detector.Exposure(600)
    rn = np.full(300, 9.0)
    image, uncert = detector.expose(rng, rate, exposure, rn)
    expected = np.sqrt(80.0 * exposure.exposure_time + exposure.num_coadded * 81.0)
    expected /= exposure.exposure_time
    assert np.std(image) == pytest.approx(expected, rel=0.02)
    assert np.mean(image) == pytest.approx(80.0, abs=3 * expected / 300)
    np.testing.assert_allclose(uncert, expected, rtol=1e-5)


def test_signals_amplitudes():
    rng = np.random.default_rng(4)
    signals = variability.draw_signals(rng, 1000, 0.5, 1000.0)
    table = signals.table
    kinds = set(np.unique(table["kind"]).tolist())
    assert kinds == set(variability.KIND_NAMES)
    assert 0.4 < np.mean(table["kind"] > 0) < 0.6
    sin = table["kind"] == variability.SINUSOID
    assert table["amplitude"][sin].min() >= 1e-4 and table["amplitude"][sin].max() <= 5e-2
    t = np.linspace(1000, 1027, 6000)
    flux = signals.relative_flux(t)
    i = np.flatnonzero(sin)[0]
    assert (flux[i].max() - flux[i].min()) / 2 == pytest.approx(table["amplitude"][i], rel=0.01)
    j = np.flatnonzero(table["kind"] == variability.TRANSIT)[0]
    assert 1 - flux[j].min() == pytest.approx(table["amplitude"][j], rel=1e-6)
    assert flux[table["kind"] == variability.CONSTANT].std() == 0
    red = table["kind"] == variability.RED_NOISE
    measured = flux[red].std(axis=1)
    assert np.median(measured / table["amplitude"][red]) == pytest.approx(1.0, abs=0.35)
    # Exposure averages smooth a short-period sinusoid by the sinc factor.
    avg = signals.exposure_average(1000.0, 1000.0 + 1800 / 86400)
    assert avg.shape == (1000,)


def test_background_levels_and_scattered_light():
    model = BackgroundModel.draw(
        np.random.default_rng(5), boresight=(-100.0, 2150.0), orbits=[(0.0, 13.0), (14.0, 27.0)]
    )
    mid = model.evaluate(6.5, (64, 64), (1000, 1000))
    end = model.evaluate(12.9, (64, 64), (1000, 1000))
    assert 20 < mid.mean() < 250
    assert end.mean() > mid.mean() + 20  # scattered light brightens towards the orbit end
    assert model.scatter_amplitude(6.5) < 0.05 * model.scatter_amplitude(12.9)
    corner = model.evaluate(6.5, (64, 64), (0, 1984))
    far = model.evaluate(6.5, (64, 64), (1984, 0))
    assert corner.mean() > far.mean() - model.zodi_level * 0.3  # glow near the boresight
    np.testing.assert_array_equal(mid, model.evaluate(6.5, (64, 64), (1000, 1000)))


def test_bad_configuration_is_refused(tmp_path):
    with pytest.raises(ValueError, match="size"):
        simulate_sector(SimulationConfig(size=5000), tmp_path, progress=False)
    with pytest.raises(ValueError, match="leaves the CCD"):
        simulate_sector(SimulationConfig(size=100, origin=(2000, 0)), tmp_path, progress=False)
    with pytest.raises(ValueError, match="sector1-dir"):
        simulate_sector(
            SimulationConfig(size=16, cadences=1, jitter="sector1"), tmp_path, progress=False
        )
    with pytest.raises(ValueError, match="unknown sector"):
        simulate_sector(SimulationConfig(sector=999, size=16), tmp_path, progress=False)
    with pytest.raises(ValueError, match="camera"):
        sector_geometry(1, 5, 1)
    assert not list(tmp_path.rglob("*.fits*"))


def test_early_data_release_carries_the_time_offset(tmp_path):
    from astropy.io import fits

    from tessphot.timefix import stamp_error

    new = simulate_sector(
        SimulationConfig(size=16, cadences=1, stars=3, camera=2, ccd=3, compress=False),
        tmp_path / "a",
        progress=False,
    )
    old = simulate_sector(
        SimulationConfig(size=16, cadences=1, stars=3, camera=2, ccd=3, data_rel=5, compress=False),
        tmp_path / "b",
        progress=False,
    )
    h_new = fits.getheader(new["ffis"][0], 0)
    h_old = fits.getheader(old["ffis"][0], 0)
    shift = (h_old["TSTART"] - h_new["TSTART"]) * 86400
    assert shift == pytest.approx(stamp_error(5, None, 2, 3, "start"), abs=1e-4)
    assert shift == pytest.approx(1.969 - 1.5 - 0.04, abs=1e-4)
