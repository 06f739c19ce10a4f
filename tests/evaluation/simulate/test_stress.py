"""The whole-sector stress settings (issue 14): real sector-1 timing, steep scattered light,
strong red noise; and the preset file of the whole-sector benchmark."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tessphot.config import load_settings
from tessphot.config.simulate import SimulationConfig
from tessphot.evaluation.simulate import variability
from tessphot.evaluation.simulate.background import BackgroundModel
from tessphot.evaluation.simulate.cadences import make_cadences
from tessphot.geometry import sector_geometry

PRESET = Path(__file__).resolve().parents[3] / "benchmarks" / "sector_stress.toml"
#: Sector-1 FFI cadence [d].
CADENCE = 1800 / 86400


def _cadences(test_data, **values):
    config = SimulationConfig(sector1_dir=str(test_data / "sector001"), **values)
    return make_cadences(config, sector_geometry(1, 1, 4), np.random.default_rng(0))


def test_sector1_timing_is_the_real_sequence(test_data):
    """All 1282 real cadences, their numbers, the orbit gap and their quality flags."""
    cad = _cadences(test_data, timing="sector1", quality="sector1")
    real_index = np.loadtxt(test_data / "sector001" / "cadences_s0001.txt", dtype=int)
    real_quality = np.loadtxt(test_data / "sector001" / "quality_s0001.txt", dtype=int)
    assert cad.tstart.size == 1282
    np.testing.assert_array_equal(cad.ffiindex, real_index)
    np.testing.assert_array_equal(cad.quality, real_quality)
    np.testing.assert_allclose(np.diff(cad.tstart)[np.diff(real_index) == 1], CADENCE)
    # One orbit gap of 55 missing cadences (about 1.1 d), between the two orbits.
    gap = int(np.argmax(np.diff(cad.tstart)))
    assert cad.tstart[gap + 1] - cad.tstop[gap] == pytest.approx(55 * CADENCE)
    (s1, e1), (s2, e2) = cad.orbits
    assert (s1, e1) == pytest.approx((cad.tstart[0], cad.tstop[gap]))
    assert (s2, e2) == pytest.approx((cad.tstart[gap + 1], cad.tstop[-1]))
    # Momentum dumps are the real ones (Desat flag).
    assert cad.dumps.sum() == np.sum((real_quality & 32) > 0) > 0


def test_first_cadences_keep_the_whole_sector_orbits(test_data):
    whole = _cadences(test_data, timing="sector1")
    first = _cadences(test_data, timing="sector1", cadences=120)
    np.testing.assert_array_equal(first.ffiindex, whole.ffiindex[:120])
    assert first.orbits == whole.orbits


def test_sector1_timing_needs_sector1_and_its_data(test_data):
    with pytest.raises(ValueError, match="sector1-dir"):
        make_cadences(
            SimulationConfig(timing="sector1"), sector_geometry(1, 1, 4), np.random.default_rng(0)
        )
    with pytest.raises(ValueError, match="sector 1"):
        make_cadences(
            SimulationConfig(sector=2, timing="sector1", sector1_dir=str(test_data)),
            sector_geometry(2, 1, 4),
            np.random.default_rng(0),
        )


def test_scattered_light_peak_and_ramp_are_settings():
    orbits = [(0.0, 13.0), (14.0, 27.0)]
    drawn = BackgroundModel.draw(np.random.default_rng(5), (-100.0, 2150.0), orbits)
    given = BackgroundModel.draw(
        np.random.default_rng(5), (-100.0, 2150.0), orbits, scatter_peak=480.0, ramp=0.5
    )
    # The other draws stay the same.
    assert given.zodi_level == drawn.zodi_level and given.glow_level == drawn.glow_level
    assert given.scatter_peak == 480.0
    # Full at the orbits' starts and ends; 1 d (two ramp times) before an end, e^-2 of it.
    for t in (0.0, 13.0, 14.0, 27.0):
        assert given.scatter_amplitude(t) == pytest.approx(480.0)
    assert given.scatter_amplitude(13.0 - 1.0) == pytest.approx(480.0 * np.exp(-2), rel=1e-3)
    assert given.scatter_amplitude(6.5) < 1e-4 * 480.0


def test_red_noise_reaches_its_maximum():
    rng = np.random.default_rng(2)
    table = variability.draw_signals(rng, 4000, 1.0, 1000.0, red_noise_max=0.01).table
    red = table["amplitude"][table["kind"] == variability.RED_NOISE]
    assert red.min() >= variability.RED_NOISE_RMS_MIN
    assert red.max() <= 0.01
    # Log-uniform over two decades: a quarter of them above 10^-2.5.
    assert np.mean(red > 10**-2.5) == pytest.approx(0.25, abs=0.05)


def test_stress_preset_makes_the_stress_case(test_data):
    """The benchmark's preset: 1282 real cadences, >= 30 % variable stars, red noise to 1 %,
    sinusoids to 5 %, scattered light of several hundred e-/s at the orbits' ends."""
    simulate = load_settings(PRESET)["simulate"]
    config = SimulationConfig(**(simulate | {"sector1_dir": str(test_data / "sector001")}))
    cad = make_cadences(config, sector_geometry(1, 1, 4), np.random.default_rng(0))
    assert cad.tstart.size == 1282 and config.jitter == "sector1"
    assert config.variable_fraction >= 0.3
    assert config.red_noise_max == pytest.approx(0.01)
    assert variability.SINUSOID_AMPLITUDE[1] == pytest.approx(0.05)
    model = BackgroundModel.draw(
        np.random.default_rng(1),
        (-100.0, 2150.0),
        cad.orbits,
        scatter_peak=config.scatter_peak,
        ramp=config.scatter_ramp,
    )
    ends = [model.scatter_amplitude(t) for orbit in cad.orbits for t in orbit]
    assert min(ends) >= 300
    # Steep: down to a tenth within two days of each end.
    assert model.scatter_amplitude(cad.orbits[0][1] - 2.0) < 0.1 * min(ends)
