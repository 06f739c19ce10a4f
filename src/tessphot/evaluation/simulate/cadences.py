"""The simulated cadences: time stamps, the orbit gap, momentum dumps and quality.

The time stamps are regular over the sector, or those of the real sector-1 FFIs (setting
``timing``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tessphot.config.simulate import SimulationConfig
from tessphot.constants import FFIINDEX_SECTOR1_FIRST, FFIINDEX_SECTOR1_TSTART_TJD, ffi_cadence
from tessphot.geometry import SectorGeometry

#: Momentum dumps: interval [d] and offset range of the first dump after the start [d].
DUMP_INTERVAL = 3.125
FIRST_DUMP_OFFSET = (0.3, 1.5)
#: SPOC quality bits set on a momentum-dump cadence (Desat 32 + ManualExclude 128 + CoarsePoint 4).
DUMP_QUALITY = 32 | 128 | 4
#: Files of the real sector-1 data: FFI cadence numbers and their quality flags.
SECTOR1_CADENCES = "cadences_s0001.txt"
SECTOR1_QUALITY = "quality_s0001.txt"


@dataclass
class Cadences:
    """Time stamps of the simulated cadences (TJD, spacecraft clock)."""

    tstart: np.ndarray
    tstop: np.ndarray
    ffiindex: np.ndarray
    quality: np.ndarray
    dumps: np.ndarray
    #: Start and end [TJD] of each orbit's data over the whole sector (also when only the
    #: first cadences are simulated).
    orbits: list[tuple[float, float]]


def require_sector1_dir(value: str | None, what: str) -> str:
    """The folder of real sector-1 data, or an error naming the option that needs it.

    Parameters
    ----------
    value : str or None
        ``SimulationConfig.sector1_dir``.
    what : str
        The option that needs the folder (for the message).

    Returns
    -------
    str
        ``value``.

    Raises
    ------
    ValueError
        When ``value`` is None.
    """
    if value is None:
        raise ValueError(f"{what} needs the folder of real sector-1 data (--sector1-dir)")
    return value


def make_cadences(
    config: SimulationConfig, geometry: SectorGeometry, rng: np.random.Generator
) -> Cadences:
    """The sector's FFI cadences: regular stamps, an orbit gap, momentum dumps, quality.

    Parameters
    ----------
    config : SimulationConfig
        The simulation's settings (sector, number of cadences, source of the quality flags).
    geometry : SectorGeometry
        The sector's geometry (start, end, orbit gap).
    rng : numpy.random.Generator
        The simulation's random generator (draws the first momentum dump).

    Returns
    -------
    Cadences
    """
    cad = ffi_cadence(config.sector) / 86400.0
    if config.timing == "sector1":
        tstart, ffiindex, orbits = _sector1_timing(config, cad)
    elif config.timing == "regular":
        tstart, ffiindex, orbits = _regular_timing(config, geometry, cad)
    else:
        raise ValueError(f"timing must be 'regular' or 'sector1', not {config.timing!r}")
    if config.cadences is not None:
        if config.cadences < 1:
            raise ValueError("--cadences must be at least 1")
        tstart, ffiindex = tstart[: config.cadences], ffiindex[: config.cadences]
    tstop = tstart + cad
    quality, dumps = _quality(config, geometry, rng, tstart, tstop)
    return Cadences(tstart, tstop, ffiindex, quality, dumps, orbits)


def _regular_timing(config: SimulationConfig, geometry: SectorGeometry, cad: float):
    """Regular cadences from the sector's start to its end, less the orbit gap."""
    n_all = int(np.floor((geometry.tjd_end - geometry.tjd_start) / cad))
    tstart = geometry.tjd_start + cad * np.arange(n_all)
    gap0, gap1 = geometry.orbit_gap
    keep = (tstart + cad <= gap0) | (tstart >= gap1)
    tstart = tstart[keep]
    first_index = FFIINDEX_SECTOR1_FIRST + int(
        round((geometry.tjd_start - FFIINDEX_SECTOR1_TSTART_TJD) / cad)
    )
    ffiindex = first_index + np.flatnonzero(keep)
    orbits = [(geometry.tjd_start, gap0), (gap1, geometry.tjd_end)]
    return tstart, ffiindex, orbits


def _sector1_timing(config: SimulationConfig, cad: float):
    """The real sector-1 FFI cadences (their numbers, hence the real orbit gap) and orbits."""
    if config.sector != 1:
        raise ValueError(f"timing 'sector1' is for sector 1, not sector {config.sector}")
    folder = Path(require_sector1_dir(config.sector1_dir, "--timing sector1"))
    ffiindex = np.loadtxt(folder / SECTOR1_CADENCES).astype(np.int64)
    tstart = FFIINDEX_SECTOR1_TSTART_TJD + cad * (ffiindex - FFIINDEX_SECTOR1_FIRST)
    gap = int(np.argmax(np.diff(ffiindex)))
    orbits = [(tstart[0], tstart[gap] + cad), (tstart[gap + 1], tstart[-1] + cad)]
    return tstart, ffiindex, [(float(a), float(b)) for a, b in orbits]


def _quality(
    config: SimulationConfig,
    geometry: SectorGeometry,
    rng: np.random.Generator,
    tstart: np.ndarray,
    tstop: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Quality flags and momentum-dump cadences, synthetic or those of real sector 1."""
    n = tstart.size
    quality = np.zeros(n, dtype=np.int32)
    dumps = np.zeros(n, dtype=bool)
    if config.quality == "sector1":
        folder = Path(require_sector1_dir(config.sector1_dir, "--quality sector1"))
        real = np.loadtxt(folder / SECTOR1_QUALITY)
        quality = real.astype(np.int32)[np.arange(n) % real.size]
        dumps = (quality & 32) > 0
    elif config.quality == "synthetic":
        first = geometry.tjd_start + rng.uniform(*FIRST_DUMP_OFFSET)
        for t_dump in np.arange(first, geometry.tjd_end, DUMP_INTERVAL):
            hit = (tstart <= t_dump) & (t_dump < tstop)
            dumps |= hit
        quality[dumps] |= DUMP_QUALITY
    else:
        raise ValueError(f"quality must be 'synthetic' or 'sector1', not {config.quality!r}")
    return quality, dumps
