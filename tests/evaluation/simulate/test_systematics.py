"""Simulated common-mode systematics: off by default, their truth reproduces the images,
realistic amplitudes, ramps at orbit starts, steps at momentum dumps, smooth over the CCD."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.io import fits

from tessphot.config import SettingsError, load_settings
from tessphot.config.simulate import SimulationConfig
from tessphot.constants import SCIENCE_SIZE, tmag_to_flux
from tessphot.evaluation.simulate.cadences import make_cadences
from tessphot.evaluation.simulate.sector import simulate_sector
from tessphot.evaluation.simulate.systematics import (
    COMPONENTS,
    WAVELENGTHS,
    SystematicsModel,
)
from tessphot.evaluation.simulate.truth import read_truth
from tessphot.geometry import angular_distance_deg, sector_geometry
from tessphot.prf import load_prf
from tessphot.tasks.schema import CBV_AREA_RADIUS_DEG, cbv_area

#: A small simulation: 40x40 px, 80 cadences of 30 min (a momentum dump in the window),
#: scattered-light ramp long enough for the additive light to show at the sector's start.
SMALL = dict(size=40, cadences=80, stars=40, bright=0, seed=9, compress=False, scatter_ramp=30.0)
#: Relative precision of the float32 images [relative to the pixel value].
FLOAT32 = 2 * np.finfo(np.float32).eps
#: Momentum-dump quality bit.
DESAT = 32


@pytest.fixture(scope="module")
def pair(tmp_path_factory, noiseless_runs):
    """The same noiseless simulation without and with systematics, as truth dicts and images."""
    configs = {
        name: SimulationConfig(**SMALL, systematics=on)
        for name, on in (("off", False), ("on", True))
    }
    return noiseless_runs(tmp_path_factory, "systematics", configs)


def _cadences(**values):
    config = SimulationConfig(sector=1, camera=1, ccd=4, **values)
    geometry = sector_geometry(1, 1, 4)
    return config, geometry, make_cadences(config, geometry, np.random.default_rng(0))


def _model(**values):
    config, geometry, cadences = _cadences(**values)
    return SystematicsModel.draw(config, geometry, cadences), geometry, cadences


def test_off_by_default_and_off_means_untouched(tmp_path):
    """Off, the tunables change nothing: images and truth as without them, no group, no card."""
    assert SimulationConfig().systematics is False
    small = dict(size=24, cadences=3, stars=10, bright=0, seed=4, compress=False)
    plain = simulate_sector(SimulationConfig(**small), tmp_path / "a", progress=False)
    tuned = simulate_sector(
        SimulationConfig(
            **small,
            systematics_thermal=0.05,
            systematics_drift=0.05,
            systematics_dumps=0.05,
            systematics_additive=10.0,
            systematics_thermal_time=0.1,
        ),
        tmp_path / "b",
        progress=False,
    )
    for pa, pb in zip(plain["ffis"], tuned["ffis"], strict=True):
        np.testing.assert_array_equal(fits.getdata(pa, 1), fits.getdata(pb, 1))
        assert "SIMSYST" not in fits.getheader(pb, 1)
    a, b = read_truth(plain["truth"]), read_truth(tuned["truth"])
    assert b["systematics"] is None
    for key in ("flux", "row", "col", "background", "jitter", "stars", "signals"):
        np.testing.assert_array_equal(a[key], b[key])
    with h5py.File(tuned["truth"]) as h5:
        assert "systematics" not in h5


def test_settings_are_checked_and_read_from_a_file(tmp_path):
    with pytest.raises(SettingsError, match="systematics_thermal"):
        SimulationConfig(systematics_thermal=-0.01)
    with pytest.raises(SettingsError, match="systematics_thermal_time"):
        SimulationConfig(systematics_thermal_time=0.0)
    with pytest.raises(SettingsError, match="systematics_dumps"):
        SimulationConfig(systematics_dumps=0.5)
    path = tmp_path / "settings.toml"
    path.write_text("[simulate]\nsystematics = true\nsystematics_additive = 1.5\n")
    simulate = load_settings(path)["simulate"]
    assert simulate["systematics"] is True and simulate["systematics_additive"] == 1.5


def test_truth_reproduces_the_difference_of_the_images(pair):
    """On minus off (same seed, no noise) is what the truth says: the stars' light times m
    plus the additive map times its profile, to float32 precision."""
    off, on = pair["off"]["truth"], pair["on"]["truth"]
    sys = on["systematics"]
    assert sys is not None and sys["components"] == COMPONENTS
    m = sys["basis"] @ sys["coefficients"].T
    # Everything else is the same: positions, sky, jitter, the intrinsic fluxes.
    for key in ("row", "col", "background", "jitter", "stars", "signals"):
        np.testing.assert_array_equal(off[key], on[key])
    np.testing.assert_allclose(on["flux"], off["flux"] * (1 + m), rtol=1e-13)
    prf = load_prf(None, 1, 1, 4)
    r0, r1, c0, c1 = on["attrs"]["region"]
    assert sys["origin"] == (r0, c0) and sys["additive_map"].shape == (r1 - r0, c1 - c0)
    stars = on["stars"]
    worst = 0.0
    for k in range(m.shape[0]):
        predicted = (
            prf.render(
                on["row"][k],
                on["col"][k],
                on["flux"][k] - off["flux"][k],
                (r1 - r0, c1 - c0),
                (r0, c0),
                node_rows=stars["row"],
                node_cols=stars["col"],
            )
            + sys["additive_map"].astype(float) * sys["additive_profile"][k]
        )
        difference = pair["on"]["images"][k] - pair["off"]["images"][k]
        scale = np.abs(pair["on"]["images"][k]) + np.abs(pair["off"]["images"][k])
        assert np.all(np.abs(difference - predicted) <= FLOAT32 * scale + 1e-9)
        worst = max(worst, float(np.max(np.abs(predicted))))
    # ... and there was something to see: the systematics change pixels by > 0.1 e-/s.
    assert worst > 0.1
    assert pair["on"]["header"]["SIMSYST"] is True
    assert pair["on"]["header"]["SIMSTHRM"] == pytest.approx(SimulationConfig().systematics_thermal)


def test_steps_at_the_momentum_dumps(pair):
    """The dump component changes only at the dump cadences (the simulator's quality flags)."""
    truth = pair["on"]["truth"]
    dumps = (truth["quality"] & DESAT) > 0
    assert dumps.any()
    level = truth["systematics"]["basis"][:, COMPONENTS.index("dumps")]
    steps = np.flatnonzero(np.diff(level) != 0) + 1
    first_of_run = np.flatnonzero(dumps & ~np.concatenate([[False], dumps[:-1]]))
    np.testing.assert_array_equal(steps, first_of_run)
    # The step dominates the change of m across it; smooth terms move far less per cadence.
    m = truth["systematics"]["basis"] @ truth["systematics"]["coefficients"].T
    jump = np.abs(m[steps[0]] - m[steps[0] - 1])
    smooth = np.abs(np.diff(m, axis=0))[np.arange(m.shape[0] - 1) != steps[0] - 1].max(axis=0)
    assert np.all(jump > 5 * smooth)


def test_thermal_ramps_after_each_orbit_start():
    model, _, cadences = _model(systematics=True)
    basis = model.basis(cadences)
    thermal = basis[:, COMPONENTS.index("thermal")]
    tmid = 0.5 * (cadences.tstart + cadences.tstop)
    for start, end in cadences.orbits:
        inside = (tmid >= start) & (tmid <= end)
        ramp = thermal[inside]
        assert ramp[0] == pytest.approx(1.0, abs=0.02)
        assert np.all(np.diff(ramp) < 0)
        one_tau = np.argmin(np.abs(tmid[inside] - start - model.thermal_time))
        assert ramp[one_tau] == pytest.approx(np.exp(-1), abs=0.02)
        assert ramp[-1] < 1e-4
    # Drift: -1 to 1 over each orbit.
    drift = basis[:, COMPONENTS.index("drift")]
    assert drift.min() == pytest.approx(-1, abs=0.01) and drift.max() == pytest.approx(1, abs=0.01)


def test_additive_light_rises_towards_orbit_ends_and_survives_the_mesh():
    model, geometry, cadences = _model(systematics=True)
    profile = model.additive_profile(cadences)
    tmid = 0.5 * (cadences.tstart + cadences.tstop)
    for start, end in cadences.orbits:
        inside = (tmid >= start) & (tmid <= end)
        assert np.all(np.diff(profile[inside]) > 0)
        assert profile[inside][-1] == pytest.approx(1.0, abs=0.02)
        assert profile[inside][0] < 1e-3
    # Structure finer than the background's 32-px mesh: box means are a small part of it.
    image = model.additive_map(geometry.science_wcs, (256, 256), (896, 896)).astype(float)
    boxes = image.reshape(8, 32, 8, 32).mean(axis=(1, 3))
    assert np.std(boxes) < 0.15 * np.std(image)
    assert np.std(image) == pytest.approx(model.additive, rel=0.5)
    # No power on scales longer than the longest wavelength: neighbours correlate, far
    # pixels do not.
    assert WAVELENGTHS[1] < 32


def test_amplitudes_of_0p1_to_1_percent():
    """Over a sector, m spans 0.1-1 % for stars all over the CCD; the additive light in a
    typical aperture is 0.1-1 % of a Tmag 12-13 star's flux at an orbit's end."""
    model, geometry, cadences = _model(systematics=True)
    grid = np.linspace(0, SCIENCE_SIZE - 1, 9)
    rows, cols = (v.ravel() for v in np.meshgrid(grid, grid, indexing="ij"))
    m = model.basis(cadences) @ model.coefficients(geometry.science_wcs, rows, cols).T
    spread = m.max(axis=0) - m.min(axis=0)
    assert 1e-3 <= spread.min() and spread.max() <= 1.2e-2
    image = model.additive_map(geometry.science_wcs, (200, 200), (900, 900)).astype(float)
    sums = image.reshape(50, 4, 50, 4).sum(axis=(1, 3)).ravel()  # 16-px apertures
    for tmag in (12.0, 13.0):
        relative = np.std(sums) / tmag_to_flux(tmag)
        assert 1e-3 <= relative <= 1e-2, (tmag, relative)


def test_smooth_over_the_ccd_with_the_distance_from_the_optical_axis():
    model, geometry, _ = _model(systematics=True)
    wcs = geometry.science_wcs
    grid = np.arange(0, SCIENCE_SIZE, 128.0)
    rows, cols = (v.ravel() for v in np.meshgrid(grid, grid, indexing="ij"))
    # The distance is the one of todo's cbv_area: great circle to the camera centre.
    ra, dec = wcs.all_pix2world(cols, rows, 0)
    distance = angular_distance_deg(ra, dec, geometry.camera_ra, geometry.camera_dec)
    x = model.axis_distance(wcs, rows, cols)
    np.testing.assert_allclose(x * CBV_AREA_RADIUS_DEG, distance, rtol=1e-12)
    assert len(set(cbv_area(1, 4, distance))) >= 2  # the CCD spans rings
    coefficients = model.coefficients(wcs, rows, cols)
    # The thermal loss grows with the distance from the axis (same rank order).
    thermal = -coefficients[:, COMPONENTS.index("thermal")]
    assert np.all(np.diff(thermal[np.argsort(distance)]) > 0)
    # Smooth: neighbouring pixels differ by a tiny fraction of the range over the CCD.
    near = model.coefficients(wcs, rows + 1.0, cols + 1.0)
    span = coefficients.max(axis=0) - coefficients.min(axis=0)
    assert np.all(np.abs(near - coefficients).max(axis=0) < 2e-3 * span)
    assert np.all(span > 0)


def test_systematics_draws_leave_the_others_alone(pair):
    """The systematics have their own random stream: stars, sky and pointing are the same."""
    off, on = pair["off"]["truth"], pair["on"]["truth"]
    assert Path(pair["on"]["path"]).is_file()
    np.testing.assert_array_equal(off["stars"], on["stars"])
    np.testing.assert_array_equal(off["quality"], on["quality"])
