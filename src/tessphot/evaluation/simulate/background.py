"""Sky background: zodiacal light with a gradient, plus scattered light that varies in time.

The scattered light takes its spatial structure from real FFIs (sector 2, camera 1, CCD 1,
binned 16x16 over the CCD, 20 two-hour bins: ``data/scattered_light_s0002_1-1.npz``, from
``ffi_sl_cube_sector002_1-1_test.fits``) and brightens towards the ends of each orbit, when
the Earth and Moon rise towards the cameras. A glow grows towards the camera boresight.
All terms are smooth analytic functions of (row, column, time), so the truth is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
from scipy.interpolate import RectBivariateSpline

from tessphot.config.simulate import DEFAULT_SCATTER_RAMP
from tessphot.constants import SCIENCE_SIZE

#: Zodiacal level range [e-/s/px] drawn per simulation (at the CCD centre).
ZODI_LEVEL = (30.0, 150.0)
#: Peak-to-peak relative gradient of the zodiacal light across the CCD.
ZODI_GRADIENT = 0.25
#: Peak scattered-light level at the very end of an orbit [e-/s/px] (drawn in this range
#: unless the setting ``scatter_peak`` gives it).
SCATTER_PEAK = (60.0, 200.0)
#: Corner glow near the camera boresight: amplitude [e-/s/px] and e-folding length [px].
GLOW_LEVEL = (20.0, 80.0)
GLOW_SCALE = 350.0


def _load_template() -> tuple[np.ndarray, np.ndarray]:
    """Real scattered-light maps (n_bins, 16, 16) normalised to [0, 1], and bin centres."""
    with resources.files("tessphot.data").joinpath("scattered_light_s0002_1-1.npz").open("rb") as f:
        data = np.load(f)
        cube = data["cube"].astype(np.float64)
    cube = cube - cube.min(axis=(1, 2), keepdims=True)
    cube /= cube.max(axis=(1, 2), keepdims=True)
    n = cube.shape[1]
    centres = (np.arange(n) + 0.5) * SCIENCE_SIZE / n - 0.5
    return cube, centres


@dataclass
class BackgroundModel:
    """Deterministic sky background of one CCD over a sector.

    Parameters
    ----------
    zodi_level : float
        Zodiacal level at the CCD centre [e-/s/px].
    zodi_gradient : tuple of float
        Relative gradient per CCD width along (row, column).
    scatter_peak : float
        Scattered light at an orbit's end [e-/s/px].
    glow_level : float
        Corner-glow amplitude at the boresight [e-/s/px].
    boresight : tuple of float
        Science-area (row, column) of the camera boresight (off the CCD, near a corner).
    orbits : list of (float, float)
        Start and end [TJD] of each orbit's data.
    ramp : float
        e-folding time of the scattered-light rise towards an orbit's start and end [d].
    """

    zodi_level: float
    zodi_gradient: tuple[float, float]
    scatter_peak: float
    glow_level: float
    boresight: tuple[float, float]
    orbits: list[tuple[float, float]]
    ramp: float = DEFAULT_SCATTER_RAMP

    def __post_init__(self):
        self._maps, self._centres = _load_template()

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        boresight,
        orbits,
        *,
        scatter_peak: float | None = None,
        ramp: float = DEFAULT_SCATTER_RAMP,
    ) -> BackgroundModel:
        """A background with levels drawn from the realistic ranges.

        Parameters
        ----------
        rng : numpy.random.Generator
            The simulation's random generator.
        boresight : tuple of float
            Science-area (row, column) of the camera boresight.
        orbits : list of (float, float)
            Start and end [TJD] of each orbit's data.
        scatter_peak : float or None
            Scattered light at an orbit's end [e-/s/px]; None draws it from
            :data:`SCATTER_PEAK` (drawn either way, so that the other draws stay the same).
        ramp : float
            e-folding time of the scattered-light rise [d].

        Returns
        -------
        BackgroundModel
        """
        direction = rng.normal(size=2)
        direction *= ZODI_GRADIENT / np.hypot(*direction)
        zodi_level = float(rng.uniform(*ZODI_LEVEL))
        drawn_peak = float(rng.uniform(*SCATTER_PEAK))
        return cls(
            zodi_level=zodi_level,
            zodi_gradient=(float(direction[0]), float(direction[1])),
            scatter_peak=drawn_peak if scatter_peak is None else float(scatter_peak),
            glow_level=float(rng.uniform(*GLOW_LEVEL)),
            boresight=(float(boresight[0]), float(boresight[1])),
            orbits=[(float(a), float(b)) for a, b in orbits],
            ramp=float(ramp),
        )

    def scatter_amplitude(self, t: float) -> float:
        """Scattered-light scale at time ``t`` [TJD]: rises exponentially towards orbit ends."""
        for start, end in self.orbits:
            if start - 1.0 <= t <= end + 1.0:
                ramp = np.exp(-(t - start) / self.ramp) + np.exp((t - end) / self.ramp)
                return float(self.scatter_peak * min(ramp, 1.0))
        return 0.0

    def _template(self, t: float) -> RectBivariateSpline:
        # Cycle slowly through the real maps so the structure changes within the orbit.
        start = self.orbits[0][0]
        phase = ((t - start) / 0.5) % self._maps.shape[0]
        i = int(phase)
        f = phase - i
        m = (1 - f) * self._maps[i] + f * self._maps[(i + 1) % self._maps.shape[0]]
        return RectBivariateSpline(self._centres, self._centres, m, kx=3, ky=3)

    def evaluate(self, t: float, shape: tuple[int, int], origin=(0, 0)) -> np.ndarray:
        """Background image [e-/s/px] at time ``t`` [TJD] on a region of the science area."""
        rows = origin[0] + np.arange(shape[0], dtype=float)
        cols = origin[1] + np.arange(shape[1], dtype=float)
        centre = (SCIENCE_SIZE - 1) / 2
        zodi = self.zodi_level * (
            1
            + self.zodi_gradient[0] * (rows[:, None] - centre) / SCIENCE_SIZE
            + self.zodi_gradient[1] * (cols[None, :] - centre) / SCIENCE_SIZE
        )
        dist = np.hypot(rows[:, None] - self.boresight[0], cols[None, :] - self.boresight[1])
        glow = self.glow_level * np.exp(-dist / GLOW_SCALE)
        out = zodi + glow
        amp = self.scatter_amplitude(t)
        if amp > 0:
            template = np.clip(self._template(t)(rows, cols), 0.0, None)
            out = out + amp * template
        return out
