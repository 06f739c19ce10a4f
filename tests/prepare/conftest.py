"""Simulated sectors run through the catalog and prepare stages (built once per session)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tessphot.catalog.make import make_catalogs
from tessphot.catalog.sources.file import FileSource
from tessphot.config.simulate import PRFDifferenceSettings, SimulationConfig
from tessphot.evaluation.simulate.sector import simulate_sector
from tessphot.prepare.run import prepare_ccd


@dataclass
class Prepared:
    folder: Path
    config: SimulationConfig
    truth: Path
    hdf5: Path
    ffis: list


def simulate_and_catalog(folder: Path, config: SimulationConfig) -> dict:
    result = simulate_sector(config, folder, progress=False)
    make_catalogs(
        config.sector, folder, FileSource([result["catalog"]]), [config.camera], [config.ccd]
    )
    return result


def build(folder: Path, config: SimulationConfig, prf_dir=None, workers=1, **kw) -> Prepared:
    result = simulate_and_catalog(folder, config)
    out = prepare_ccd(
        folder,
        config.sector,
        config.camera,
        config.ccd,
        workers=workers,
        prf_dir=prf_dir,
        progress=False,
        **kw,
    )
    return Prepared(folder, config, result["truth"], out, result["ffis"])


@pytest.fixture(scope="session")
def crowded(tmp_path_factory, prf_dir) -> Prepared:
    """A crowded 128x128 crop at the start of an orbit (strong, changing scattered light),
    with two saturated stars, the real PRF and 48 cadences."""
    config = SimulationConfig(
        sector=1,
        camera=1,
        ccd=4,
        size=128,
        origin=(300, 1500),
        cadences=48,
        stars=700,
        bright=2,
        seed=21,
        prf_dir=str(prf_dir),
    )
    return build(tmp_path_factory.mktemp("crowded"), config, prf_dir=str(prf_dir))


@pytest.fixture(scope="session")
def builder():
    """The functions that simulate, catalog and prepare a sector."""
    return build, simulate_and_catalog


#: The region of bright, isolated stars the effective PRF's tests simulate.
BRIGHT_REGION = {"size": 200, "origin": (300, 1500), "stars": 800, "seed": 7}


def bright_region(
    prf_dir, prf: PRFDifferenceSettings, *, cadences: int, **extra
) -> SimulationConfig:
    """The bright region (:data:`BRIGHT_REGION`) with PRF differences ``prf``."""
    return SimulationConfig(
        sector=1,
        camera=1,
        ccd=4,
        cadences=cadences,
        prf_dir=str(prf_dir),
        prf=prf,
        **BRIGHT_REGION,
        **extra,
    )


@pytest.fixture(scope="session")
def region_config():
    """The maker of the bright region's simulation settings (tests cannot import conftest)."""
    return bright_region
