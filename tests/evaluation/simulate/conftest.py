"""Simulated sectors shared by the simulator tests (built once per session)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from tessphot.config.simulate import SimulationConfig
from tessphot.evaluation.simulate import detector
from tessphot.evaluation.simulate.sector import simulate_sector
from tessphot.evaluation.simulate.truth import read_truth
from tessphot.io import find_ffis, read_ffi


@dataclass
class Simulation:
    """A simulated sector read back: images, truth and config."""

    config: SimulationConfig
    folder: Path
    ffis: list[Path]
    truth: Path
    catalog: Path

    def frames(self):
        return [read_ffi(p) for p in self.ffis]

    def truth_arrays(self):
        return read_truth(self.truth)


def _simulate(folder: Path, config: SimulationConfig) -> Simulation:
    result = simulate_sector(config, folder, progress=False)
    return Simulation(config, folder, find_ffis(folder), result["truth"], result["catalog"])


@pytest.fixture(scope="session")
def sim_real_prf(tmp_path_factory, prf_dir) -> Simulation:
    """A 128x128 crop, 40 cadences, with the real SPOC PRF and two saturated stars.

    Besides the random population, a grid of nine Tmag 8.5-10.5 stars gives enough bright
    stars for the astrometric and jitter checks.
    """
    grid = [
        (
            900_000_000 + 10 * i + j,
            8.5 + 0.25 * (3 * i + j),
            600 + 24.3 + 40 * i,
            700 + 25.7 + 38 * j,
        )
        for i in range(3)
        for j in range(3)
    ]
    config = SimulationConfig(
        sector=1,
        camera=1,
        ccd=4,
        size=128,
        origin=(600, 700),
        cadences=40,
        stars=600,
        bright=2,
        seed=7,
        prf_dir=str(prf_dir),
        compress=True,
        extra_stars=grid,
    )
    return _simulate(tmp_path_factory.mktemp("sim_real_prf"), config)


@pytest.fixture(scope="session")
def sim_full_sector(tmp_path_factory) -> Simulation:
    """A whole sector (1800-s cadence) on a 48x48 crop with the analytic PRF, with two
    unsaturated bright stars (Tmag 7.2 and 9.4) placed on it."""
    config = SimulationConfig(
        sector=1,
        camera=4,
        ccd=2,
        size=48,
        cadences=None,
        stars=25,
        bright=0,
        seed=11,
        compress=False,
        extra_stars=[(910_000_001, 7.2, 1012.4, 1013.7), (910_000_002, 9.4, 1033.8, 1031.2)],
    )
    return _simulate(tmp_path_factory.mktemp("sim_full_sector"), config)


@pytest.fixture(scope="session")
def isolated():
    """Function selecting uncontaminated stars (see :func:`_isolated`)."""
    return _isolated


def _isolated(stars, region, tmag_range, prf=None, half=3, max_contamination=0.01):
    """Indices of stars in ``tmag_range``, at least ``half + 3`` px inside the region, whose
    (2 half + 1)^2 box receives less than ``max_contamination`` of the star's own flux in
    there from all other stars (PRF-rendered, saturation ignored), and that lie away from the
    bleed columns of saturated stars."""
    from tessphot.prf import AnalyticPRF

    prf = prf or AnalyticPRF()
    r0, r1, c0, c1 = region
    flux = 10 ** (-0.4 * (stars["tmag"] - 20.44))
    box = 2 * half + 1
    keep = []
    for i, s in enumerate(stars):
        if not tmag_range[0] <= s["tmag"] <= tmag_range[1]:
            continue
        if not (
            r0 + half + 3 <= s["row"] < r1 - half - 3 and c0 + half + 3 <= s["col"] < c1 - half - 3
        ):
            continue
        bleeding = (stars["tmag"] < 6.5) & (np.abs(stars["col"] - s["col"]) < half + 3)
        if np.any(bleeding & (np.arange(stars.size) != i)):
            continue
        origin = (int(round(s["row"])) - half, int(round(s["col"])) - half)
        near = np.hypot(stars["row"] - s["row"], stars["col"] - s["col"]) < 3 * half + 15
        own = prf.render([s["row"]], [s["col"]], [flux[i]], (box, box), origin).sum()
        others = near & (np.arange(stars.size) != i)
        light = prf.render(
            stars["row"][others], stars["col"][others], flux[others], (box, box), origin
        ).sum()
        if light < max_contamination * own:
            keep.append(i)
    return np.array(keep, dtype=int)


def _noiseless(rng, rate, exposure, read_noise_cols):
    """The detector without noise: the image is the true rate."""
    return rate.astype(np.float32), np.ones(rate.shape, dtype=np.float32)


def _noiseless_runs(factory, prefix: str, configs: dict[str, SimulationConfig]) -> dict:
    """Noiseless simulations of each config: their truth, images, first header, truth path."""
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(detector, "expose", _noiseless)
        for name, config in configs.items():
            result = simulate_sector(config, factory.mktemp(f"{prefix}_{name}"), progress=False)
            out[name] = {
                "truth": read_truth(result["truth"]),
                "images": np.array([fits.getdata(p, 1) for p in result["ffis"]], dtype=float),
                "header": fits.getheader(result["ffis"][0], 1),
                "path": result["truth"],
            }
    return out


@pytest.fixture(scope="session")
def noiseless_runs():
    """``noiseless_runs(tmp_path_factory, prefix, {name: config})``: noiseless simulations
    read back (tests cannot import conftest)."""
    return _noiseless_runs
