"""The sectors of one saturated star (``halo_sector``)."""

from __future__ import annotations

import pytest

#: The saturated star of the halo sectors: TIC, Tmag, science column; its row is the
#: sector's (centre, or 3 px from the bottom edge so that its bleed runs off the data).
BRIGHT = (900_000_010, 4.0, 1023.6)
ROWS = {"centre": 1020.3, "edge": 1003.3}


@pytest.fixture(scope="session")
def bright_starid() -> int:
    """TIC of the saturated star of ``halo_sector``."""
    return BRIGHT[0]


@pytest.fixture(scope="module", params=list(ROWS))
def halo_sector(request, tmp_path_factory):
    """A 48x48 px, 96-cadence sector with a Tmag-4 star carrying a 0.28 % transit."""
    from tessphot.config import load_settings
    from tessphot.config.simulate import SimulationConfig
    from tessphot.demo import prepare_simulated
    from tessphot.evaluation.simulate.sector import simulate_sector

    folder = tmp_path_factory.mktemp(f"halo_{request.param}")
    starid, tmag, col = BRIGHT
    config = SimulationConfig(
        sector=1,
        camera=1,
        ccd=4,
        size=48,
        cadences=96,
        stars=20,
        bright=0,
        seed=4,
        variable_fraction=1.0,
        extra_stars=[(starid, tmag, ROWS[request.param], col)],
    )
    simulate_sector(config, folder, progress=False)
    prepare_simulated(folder, load_settings(), progress=False, workers=1)
    return request.param, folder
