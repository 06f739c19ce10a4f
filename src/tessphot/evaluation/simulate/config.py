"""Settings of a simulation (moved to :mod:`tessphot.config.simulate`)."""

from tessphot.config.simulate import (
    DEFAULT_DATA_RELEASE,
    DEFAULT_VARIABLE_FRACTION,
    SimulationConfig,
)

__all__ = ["DEFAULT_DATA_RELEASE", "DEFAULT_VARIABLE_FRACTION", "SimulationConfig"]
