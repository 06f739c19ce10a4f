"""The simulated sector a benchmark runs on, made once and kept between runs."""

from __future__ import annotations

import time
from pathlib import Path

from tessphot.io import find_ffis
from tessphot.simulate.config import SimulationConfig
from tessphot.simulate.sector import simulate_sector


def ensure_simulated(folder: Path, config: SimulationConfig) -> None:
    """Simulate ``config`` into ``folder`` unless it already holds FFIs."""
    if folder.is_dir() and find_ffis(folder):
        return
    began = time.perf_counter()
    simulate_sector(config, folder, progress=True)
    print(
        f"simulated {config.cadences} cadences of {config.size}x{config.size} px in "
        f"{time.perf_counter() - began:.0f} s ({'SPOC' if config.prf_dir else 'analytic'} PRF)"
    )
