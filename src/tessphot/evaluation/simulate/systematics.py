"""Common-mode systematics of the raw flux: thermal ramps, drifts, dump steps, residual sky.

Switched on by the setting ``[simulate] systematics`` (off by default; off, nothing here is
drawn or applied and the simulation is exactly the one without it). Their random numbers
come from a stream of their own (:data:`SYSTEMATICS_STREAM`), so that everything else a seed
draws (stars, signals, jitter, noise) is the same with and without them.

**Multiplicative.** Every star's flux is rendered times ``1 + m``, with
``m(t) = sum_k B_k h_k(t)``: a basis of time series ``h_k`` shared by the CCD
(:data:`COMPONENTS`, evaluated at mid-exposure) and coefficients ``B_k`` that vary smoothly
with the star's great-circle distance ``d`` from the camera's optical axis (the camera
centre, the distance todo's ``cbv_area`` rings are made of), as ``x = d / R`` with ``R`` =
:data:`~tessphot.tasks.schema.CBV_AREA_RADIUS_DEG` (``x`` about 1 at the field's far corner):

* ``thermal``: ``h = exp(-(t - t_start) / tau)`` after each orbit's start;
  ``B = -A_th (f + (1 - f) x^2)`` with ``f`` = :data:`THERMAL_AXIS_FRACTION` (the focus
  settles after each downlink; apertures lose more light at the field's edge);
* ``drift``: ``h = 2 (t - t_mid) / (t_end - t_start)`` over each orbit (-1 to 1);
  ``B = A_dr ((2 x - 1) + G u.(p - p_c) / (S / 2))``, a radial term changing sign across the
  field plus a gradient :data:`DRIFT_GRADIENT` along a drawn direction ``u`` over the CCD
  (pixel ``p``, centre ``p_c``, size ``S``);
* ``dumps``: ``h`` is a level drawn (unit normal) for every stretch between momentum dumps,
  new at each dump cadence and at each orbit's start; ``B = A_du (f + (1 - f) x)`` with
  ``f`` = :data:`EDGE_AXIS_FRACTION`.

**Additive.** ``a(row, col) g(t)`` is added to the image (not to the truth's ``background``):
the map ``a`` is a sum of :data:`N_WAVES` plane waves with wavelengths in
:data:`WAVELENGTHS` (finer than the background estimator's 32-px mesh, so most of it
survives the background subtraction), of unit rms, times ``A_add (f + (1 - f) x)``;
``g(t) = exp((t - t_end) / ramp)`` within each orbit (1 at its end; ``ramp`` is the
scattered light's ``scatter_ramp``). For an aperture ``P`` the additive flux is
``g(t) sum_P a``.

The amplitudes ``A_th``, ``A_dr``, ``A_du`` (relative flux) and ``A_add`` [e-/s/px] are the
settings ``systematics_thermal``, ``_drift``, ``_dumps`` and ``_additive``; ``tau`` is
``systematics_thermal_time``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS

from tessphot.config.simulate import SimulationConfig
from tessphot.constants import SCIENCE_SIZE
from tessphot.evaluation.simulate.cadences import Cadences
from tessphot.geometry import SectorGeometry, angular_distance_deg
from tessphot.tasks.schema import CBV_AREA_RADIUS_DEG

#: Names of the multiplicative components: the columns of the basis and coefficients.
COMPONENTS = ("thermal", "drift", "dumps")
#: Stream of the systematics' random numbers (spawn key of the seed's sequence).
SYSTEMATICS_STREAM = 0x5157
#: Fraction of the thermal ramp's amplitude on the optical axis (``x = 0``).
THERMAL_AXIS_FRACTION = 0.2
#: Fraction of the dump steps' and the additive light's amplitude on the optical axis.
EDGE_AXIS_FRACTION = 0.5
#: Relative weight of the drift's gradient across the CCD (per half CCD).
DRIFT_GRADIENT = 0.5
#: Plane waves of the additive map and their range of wavelengths [px].
N_WAVES = 48
WAVELENGTHS = (4.0, 16.0)


def _orbit_index(tmid: np.ndarray, orbits: list[tuple[float, float]]) -> np.ndarray:
    """Index of the orbit of every time: the last orbit started at or before it."""
    starts = np.array([start for start, _ in orbits])
    return np.clip(np.searchsorted(starts, tmid, side="right") - 1, 0, len(orbits) - 1)


def _dump_segments(cadences: Cadences) -> np.ndarray:
    """Index of the stretch between momentum dumps (and orbit starts) of every cadence."""
    tmid = 0.5 * (cadences.tstart + cadences.tstop)
    orbit = _orbit_index(tmid, cadences.orbits)
    dumps = np.asarray(cadences.dumps, dtype=bool)
    new = dumps & ~np.concatenate([[False], dumps[:-1]])
    new |= np.concatenate([[True], np.diff(orbit) != 0])
    return np.cumsum(new) - 1


@dataclass(frozen=True)
class SystematicsModel:
    """The common-mode systematics of one simulation (see the module's docstring).

    Parameters
    ----------
    thermal, drift, dumps : float
        Relative amplitudes ``A_th``, ``A_dr``, ``A_du`` at ``x = 1``.
    thermal_time : float
        e-folding time ``tau`` of the thermal ramps [d].
    additive : float
        rms ``A_add`` of the additive map at ``x = 1`` [e-/s/px].
    ramp : float
        e-folding time of the additive light's rise towards an orbit's end [d].
    axis : tuple of float
        RA, Dec of the camera's optical axis [deg].
    drift_direction : tuple of float
        Unit vector ``u`` (row, column) of the drift's gradient over the CCD.
    dump_levels : tuple of float
        Level of every stretch between dumps (unit normal draws).
    waves : tuple of tuple of float
        Every plane wave of the additive map: row and column wavenumbers [rad/px], phase.
    """

    thermal: float
    thermal_time: float
    drift: float
    dumps: float
    additive: float
    ramp: float
    axis: tuple[float, float]
    drift_direction: tuple[float, float]
    dump_levels: tuple[float, ...]
    waves: tuple[tuple[float, float, float], ...]

    @classmethod
    def draw(
        cls, config: SimulationConfig, geometry: SectorGeometry, cadences: Cadences
    ) -> SystematicsModel:
        """The systematics of a simulation, drawn from their own random stream.

        Parameters
        ----------
        config : SimulationConfig
            The settings (seed, ``systematics_*`` amplitudes, ``scatter_ramp``).
        geometry : SectorGeometry
            The sector's geometry (the camera's optical axis).
        cadences : Cadences
            The cadences (momentum dumps, orbits).

        Returns
        -------
        SystematicsModel
        """
        seed = np.random.SeedSequence(config.seed, spawn_key=(SYSTEMATICS_STREAM,))
        rng = np.random.default_rng(seed)
        wavelength = rng.uniform(*WAVELENGTHS, N_WAVES)
        angle = rng.uniform(0.0, 2 * np.pi, N_WAVES)
        phase = rng.uniform(0.0, 2 * np.pi, N_WAVES)
        k = 2 * np.pi / wavelength
        direction = rng.normal(size=2)
        direction /= np.hypot(*direction)
        levels = rng.standard_normal(int(_dump_segments(cadences)[-1]) + 1)
        return cls(
            thermal=float(config.systematics_thermal),
            thermal_time=float(config.systematics_thermal_time),
            drift=float(config.systematics_drift),
            dumps=float(config.systematics_dumps),
            additive=float(config.systematics_additive),
            ramp=float(config.scatter_ramp),
            axis=(float(geometry.camera_ra), float(geometry.camera_dec)),
            drift_direction=(float(direction[0]), float(direction[1])),
            dump_levels=tuple(float(v) for v in levels),
            waves=tuple(
                (float(kk * np.sin(a)), float(kk * np.cos(a)), float(p))
                for kk, a, p in zip(k, angle, phase, strict=True)
            ),
        )

    def axis_distance(self, wcs: WCS, rows, cols) -> np.ndarray:
        """Distance ``x`` of science-area pixels from the optical axis, in units of ``R``.

        Parameters
        ----------
        wcs : astropy.wcs.WCS
            The science area's WCS (pixel = 0-based science column, row).
        rows, cols : array_like
            Science-area positions [px] (any shape, the same).

        Returns
        -------
        numpy.ndarray
            ``d / CBV_AREA_RADIUS_DEG`` (shape of ``rows``).
        """
        rows = np.asarray(rows, dtype=float)
        cols = np.asarray(cols, dtype=float)
        ra, dec = wcs.all_pix2world(cols.ravel(), rows.ravel(), 0)
        distance = angular_distance_deg(ra, dec, *self.axis) / CBV_AREA_RADIUS_DEG
        return np.reshape(distance, rows.shape)

    def coefficients(self, wcs: WCS, rows, cols) -> np.ndarray:
        """The coefficients ``B_k`` of stars at science-area positions (star, component)."""
        rows = np.atleast_1d(np.asarray(rows, dtype=float))
        cols = np.atleast_1d(np.asarray(cols, dtype=float))
        x = self.axis_distance(wcs, rows, cols)
        half = SCIENCE_SIZE / 2
        centre = (SCIENCE_SIZE - 1) / 2
        across = (
            self.drift_direction[0] * (rows - centre) + self.drift_direction[1] * (cols - centre)
        ) / half
        thermal = -self.thermal * (THERMAL_AXIS_FRACTION + (1 - THERMAL_AXIS_FRACTION) * x**2)
        drift = self.drift * ((2 * x - 1) + DRIFT_GRADIENT * across)
        dumps = self.dumps * (EDGE_AXIS_FRACTION + (1 - EDGE_AXIS_FRACTION) * x)
        return np.column_stack([thermal, drift, dumps])

    def basis(self, cadences: Cadences) -> np.ndarray:
        """The time series ``h_k`` at every cadence's mid-exposure (cadence, component)."""
        tmid = 0.5 * (cadences.tstart + cadences.tstop)
        orbit = _orbit_index(tmid, cadences.orbits)
        start = np.array([cadences.orbits[o][0] for o in orbit])
        end = np.array([cadences.orbits[o][1] for o in orbit])
        thermal = np.exp(-np.clip(tmid - start, 0.0, None) / self.thermal_time)
        drift = (2 * tmid - start - end) / (end - start)
        dumps = np.asarray(self.dump_levels)[_dump_segments(cadences)]
        return np.column_stack([thermal, drift, dumps])

    def additive_profile(self, cadences: Cadences) -> np.ndarray:
        """The additive light's time profile ``g`` at every cadence (1 at an orbit's end)."""
        tmid = 0.5 * (cadences.tstart + cadences.tstop)
        end = np.array([cadences.orbits[o][1] for o in _orbit_index(tmid, cadences.orbits)])
        return np.exp(np.clip(tmid - end, None, 0.0) / self.ramp)

    def additive_map(self, wcs: WCS, shape: tuple[int, int], origin=(0, 0)) -> np.ndarray:
        """The additive map ``a`` [e-/s/px] on a region of the science area (float32).

        Parameters
        ----------
        wcs : astropy.wcs.WCS
            The science area's WCS.
        shape : tuple of int
            Shape (ny, nx) of the region.
        origin : tuple of int
            Science-area (row, column) of the region's first pixel.

        Returns
        -------
        numpy.ndarray
            The map at an orbit's end (float32: the values the simulation adds).
        """
        rows = origin[0] + np.arange(shape[0], dtype=float)
        cols = origin[1] + np.arange(shape[1], dtype=float)
        field = np.zeros(shape)
        for k_row, k_col, phase in self.waves:
            # cos(a + b) with a = k_row row + phase, b = k_col col: two outer products.
            a, b = k_row * rows + phase, k_col * cols
            field += np.outer(np.cos(a), np.cos(b)) - np.outer(np.sin(a), np.sin(b))
        field *= np.sqrt(2.0 / len(self.waves))
        grid_rows, grid_cols = np.meshgrid(rows, cols, indexing="ij")
        x = self.axis_distance(wcs, grid_rows, grid_cols)
        envelope = self.additive * (EDGE_AXIS_FRACTION + (1 - EDGE_AXIS_FRACTION) * x)
        return (envelope * field).astype(np.float32)


@dataclass
class AppliedSystematics:
    """The systematics as applied to one simulation: what the truth file keeps of them."""

    model: SystematicsModel
    #: (cadence, component) time series and (star, component) coefficients.
    basis: np.ndarray
    coefficients: np.ndarray
    #: The additive map [e-/s/px] (float32) of the region and its time profile.
    additive_map: np.ndarray
    additive_profile: np.ndarray

    @classmethod
    def build(
        cls,
        model: SystematicsModel,
        cadences: Cadences,
        wcs: WCS,
        star_rows: np.ndarray,
        star_cols: np.ndarray,
        shape: tuple[int, int],
        origin: tuple[int, int],
    ) -> AppliedSystematics:
        """The systematics of every cadence, of stars at reference positions, on a region."""
        return cls(
            model=model,
            basis=model.basis(cadences),
            coefficients=model.coefficients(wcs, star_rows, star_cols),
            additive_map=model.additive_map(wcs, shape, origin),
            additive_profile=model.additive_profile(cadences),
        )

    def factor(self, k: int) -> np.ndarray:
        """``1 + m`` of every star at cadence ``k`` (multiplies its rendered flux)."""
        return 1.0 + self.coefficients @ self.basis[k]

    def additive(self, k: int) -> np.ndarray:
        """The additive image at cadence ``k`` [e-/s/px] (added to the stars and sky)."""
        return self.additive_map.astype(np.float64) * self.additive_profile[k]
