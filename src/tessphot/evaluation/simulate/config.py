"""Settings of a simulation."""

from __future__ import annotations

from dataclasses import dataclass, field

from tessphot.constants import SCIENCE_SIZE

#: Data release written by default: the first with correct time stamps (see tessphot.timefix).
DEFAULT_DATA_RELEASE = 30
#: Fraction of stars that are variable by default.
DEFAULT_VARIABLE_FRACTION = 0.3


@dataclass
class SimulationConfig:
    """Settings of a simulation (every one is written to the headers and the truth file)."""

    sector: int = 1
    camera: int = 1
    ccd: int = 4
    #: Number of cadences (None: the whole sector).
    cadences: int | None = None
    #: Stars of the power-law population on the region (None: scales with the area).
    stars: int | None = None
    #: Extra bright, saturating stars (Tmag 2-6) on the region.
    bright: int = 2
    #: Size of a square crop of the science area (None: full 2048x2048 frames).
    size: int | None = None
    #: Science-area (row, column) of the crop's first pixel (None: centred).
    origin: tuple[int, int] | None = None
    seed: int = 42
    #: Folder with SPOC PRF models (None: analytic PRF).
    prf_dir: str | None = None
    variable_fraction: float = DEFAULT_VARIABLE_FRACTION
    #: Folder with the real sector-1 data (cadence quality, TessVectors); enables the two below.
    sector1_dir: str | None = None
    #: 'random' or 'sector1' (real quaternions; needs sector1_dir).
    jitter: str = "random"
    #: 'synthetic' or 'sector1' (real FFI quality flags; needs sector1_dir).
    quality: str = "synthetic"
    data_rel: int = DEFAULT_DATA_RELEASE
    compress: bool = True
    #: Place the demo star (TIC 182092046) at the region's centre.
    demo_star: bool = False
    #: Stars placed on the region: ``(starid, tmag, row, col)`` [science-area px], or
    #: ``(starid, tmag, row, col, signal)`` with ``signal`` a mapping that replaces the
    #: star's drawn signal, e.g. ``{"kind": "transit", "amplitude": 0.004, "period": 2.5,
    #: "duration": 0.15}`` (:func:`tessphot.evaluation.simulate.variability.chosen_signal`).
    extra_stars: list = field(default_factory=list)

    def region(self) -> tuple[int, int, int, int]:
        """Science-area region ``(row0, row1, col0, col1)`` (half-open) that is simulated."""
        if self.size is None:
            return 0, SCIENCE_SIZE, 0, SCIENCE_SIZE
        if not 1 <= self.size <= SCIENCE_SIZE:
            raise ValueError(f"--size must be 1-{SCIENCE_SIZE}, not {self.size}")
        if self.origin is None:
            r0 = c0 = (SCIENCE_SIZE - self.size) // 2
        else:
            r0, c0 = self.origin
        if not (0 <= r0 <= SCIENCE_SIZE - self.size and 0 <= c0 <= SCIENCE_SIZE - self.size):
            raise ValueError(f"crop at {self.origin} of size {self.size} leaves the CCD")
        return r0, r0 + self.size, c0, c0 + self.size
