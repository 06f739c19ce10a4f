"""Synthetic light curves of a CBV area with known common trends, spikes and stellar signals.

Three trends shared by every star (a thermal ramp after each orbit's start, a drift over
each orbit, level steps at momentum dumps), with coefficients varying smoothly with the
position on the CCD; a spike on every momentum dump's cadence (one pattern over the dumps,
amplitude smooth with position); white noise; sinusoids and transits on some stars.
And ``run_copy``: a copy of the small sector's photometry run, to correct.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

import numpy as np
import pytest

#: Cadence [s] and its length in days.
CADENCE = 1800.0
DAY = CADENCE / 86400.0
#: Thermal time constant [d].
THERMAL_TAU = 1.5


@dataclass
class Sector:
    """A synthetic CBV area: raw fluxes and their truth."""

    flux: np.ndarray  # (stars, cadences) e-/s
    time: np.ndarray
    cadenceno: np.ndarray
    good: np.ndarray
    dumps: np.ndarray
    trends: np.ndarray  # (cadences, 3) time series
    coefficients: np.ndarray  # (stars, 3)
    spike_pattern: np.ndarray  # (cadences,), zero off the dumps
    noise: np.ndarray  # relative white noise per star
    signal: np.ndarray  # (stars, cadences) relative intrinsic signal
    white: np.ndarray  # (stars, cadences) relative white noise drawn
    rows: np.ndarray
    cols: np.ndarray
    tmags: np.ndarray
    variable: np.ndarray  # bool per star
    systematics: np.ndarray = field(default_factory=lambda: np.empty(0))


def _trends(time: np.ndarray, orbit: np.ndarray, dumps: np.ndarray, rng) -> np.ndarray:
    """Thermal, drift and dump-step time series."""
    thermal = np.zeros_like(time)
    drift = np.zeros_like(time)
    for o in np.unique(orbit):
        t = time[orbit == o]
        thermal[orbit == o] = np.exp(-(t - t[0]) / THERMAL_TAU)
        drift[orbit == o] = 2.0 * (t - t.mean()) / (t[-1] - t[0])
    segment = np.cumsum(dumps | np.r_[True, np.diff(orbit) != 0]) - 1
    steps = rng.normal(size=segment.max() + 1)[segment]
    trends = np.column_stack([thermal, drift, steps])
    return trends - trends.mean(axis=0)


def make_sector(
    n_stars: int = 300,
    n_cadences: int = 1000,
    *,
    seed: int = 1,
    amplitudes: tuple[float, ...] = (3e-3, 1.5e-3, 8e-4),
    spike_amplitude: float = 2e-3,
    variable_fraction: float = 0.15,
) -> Sector:
    """A synthetic CBV area (set the amplitudes to zero for pure noise)."""
    rng = np.random.default_rng(seed)
    cadenceno = np.arange(n_cadences) + 4697
    time = 1325.3 + np.arange(n_cadences) * DAY
    half = n_cadences // 2
    good = np.ones(n_cadences, bool)
    good[half - 20 : half + 20] = False  # the orbit gap
    good[rng.choice(n_cadences, 10, replace=False)] = False
    orbit = (np.arange(n_cadences) >= half).astype(int)
    dumps = np.zeros(n_cadences, bool)
    dumps[np.r_[100 : half - 20 : 150, half + 60 : n_cadences : 150]] = True
    trends = _trends(time, orbit, dumps, rng)
    rows, cols = rng.uniform(0, 2048, (2, n_stars))
    x = np.hypot(rows, cols) / np.hypot(2048, 2048)
    u, v = rows / 2048 - 0.5, cols / 2048 - 0.5
    shape = np.column_stack([-(0.3 + 0.7 * x**2), 2 * v + 0.5 * u, 2 * u - 0.3 * v + 0.2])
    coefficients = shape * np.asarray(amplitudes)
    spike_pattern = np.where(dumps, rng.uniform(0.5, 1.5, n_cadences), 0.0)
    spike_coeff = spike_amplitude * (0.5 + 0.5 * rows / 2048)
    tmags = rng.uniform(8.0, 13.0, n_stars)
    noise = 1e-4 * 10 ** (0.2 * (tmags - 10.0))
    white = rng.normal(size=(n_stars, n_cadences)) * noise[:, None]
    signal = np.zeros((n_stars, n_cadences))
    variable = rng.random(n_stars) < variable_fraction
    for i in np.flatnonzero(variable):
        if rng.random() < 0.6:
            period = 10 ** rng.uniform(-1, 1)
            signal[i] = rng.uniform(1e-3, 5e-3) * np.sin(
                2 * np.pi * time / period + rng.uniform(0, 6.3)
            )
        else:
            period, phase = rng.uniform(3, 8), rng.uniform(0, 1)
            signal[i] = -2e-3 * (((time / period - phase) % 1.0) * period < 0.15)
    systematics = coefficients @ trends.T + spike_coeff[:, None] * spike_pattern[None, :]
    base = 1e5 * 10 ** (-0.4 * (tmags - 10.0))
    flux = base[:, None] * (1 + systematics) * (1 + signal) * (1 + white)
    flux[:, ~good] = np.where(rng.random((n_stars, (~good).sum())) < 0.5, np.nan, flux[:, ~good])
    flux[:, half - 20 : half + 20] = np.nan
    return Sector(
        flux, time, cadenceno, good, dumps, trends, coefficients, spike_pattern, noise,
        signal, white, rows, cols, tmags, variable, systematics,
    )  # fmt: skip


@pytest.fixture(scope="session")
def synthetic():
    """The module's maker of synthetic areas and its cadence (tests cannot import conftest)."""
    import types

    return types.SimpleNamespace(make_sector=make_sector, cadence=CADENCE)


@pytest.fixture(scope="session")
def sector() -> Sector:
    """The default synthetic CBV area (300 stars, 1000 cadences, 3 trends)."""
    return make_sector()


@pytest.fixture(scope="session")
def cbvs(sector):
    """CBVs of the default synthetic area."""
    from tessphot.correct.cbv import build_cbvs

    return build_cbvs(
        sector.flux, good=sector.good, cadenceno=sector.cadenceno, time=sector.time,
        dumps=sector.dumps, sector=1, camera=1, ccd=4, cadence=CADENCE, cbv_area=141,
    )  # fmt: skip


@pytest.fixture
def run_copy(photometry_run, tmp_path):
    """A copy of the small sector's photometry run (todo.sqlite and light curves)."""
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy2(photometry_run["todo"], folder / "todo.sqlite")
    shutil.copytree(photometry_run["output"], folder / "lightcurves")
    return folder
