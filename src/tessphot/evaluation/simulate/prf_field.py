"""The simulated PRF's width and shape over the CCD, and its focus over each orbit.

The fields of :mod:`tessphot.evaluation.simulate.prf_differences` (its docstring says what
they are): the width factor ``s``, the ellipticity ``e`` and the stretch's direction ``p``
as smooth functions of the CCD position, drawn once per seed from a stream of their own, and
the focus factor ``f`` of every cadence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from tessphot.config.simulate import PRFDifferenceSettings
from tessphot.constants import SCIENCE_SIZE

#: Stream of the PRF differences' random numbers (spawn key of the seed's sequence).
PRF_STREAM = 0x9F0
#: Relative spread of the width and ellipticity changes over the CCD about their means.
FIELD_SPREAD = 0.5
#: Largest turn of the stretch's direction over the CCD [deg].
ANGLE_SPREAD = 45.0
#: Points per axis of the grid over the CCD on which the fields are scaled.
FIELD_GRID = 65
#: Number of quadratic terms of a field.
N_TERMS = 5
#: Science-area span of the fields and the nodes (positions beyond are clamped) [px].
CCD_SPAN = (0.0, SCIENCE_SIZE - 1.0)


def _terms(rows: ArrayLike, cols: ArrayLike) -> np.ndarray:
    """The quadratic terms (n, N_TERMS) of the fields at positions (clamped to the CCD)."""
    half = (CCD_SPAN[1] - CCD_SPAN[0]) / 2
    centre = (CCD_SPAN[0] + CCD_SPAN[1]) / 2
    u = (np.clip(np.asarray(cols, dtype=float), *CCD_SPAN) - centre) / half
    v = (np.clip(np.asarray(rows, dtype=float), *CCD_SPAN) - centre) / half
    return np.stack([u, v, u**2 - 1 / 3, u * v, v**2 - 1 / 3], axis=-1)


def _scaled_terms(rng: np.random.Generator) -> tuple[float, ...]:
    """Drawn coefficients of a field, scaled to an absolute value of at most 1 on the CCD."""
    coefficients = rng.normal(size=N_TERMS)
    grid = np.linspace(*CCD_SPAN, FIELD_GRID)
    values = _terms(*np.meshgrid(grid, grid, indexing="ij")) @ coefficients
    return tuple(float(c) for c in coefficients / np.abs(values).max())


def shape_matrices(width: ArrayLike, ellipticity: ArrayLike, angle: ArrayLike) -> np.ndarray:
    """The matrices ``A = s (I + e Q)`` (row, column) of widths, ellipticities and angles.

    Parameters
    ----------
    width, ellipticity : array_like, shape (n,)
        Width factors ``s`` and ellipticities ``e``.
    angle : array_like, shape (n,)
        Directions of the stretch [deg], from the column axis towards the row axis.

    Returns
    -------
    ndarray, shape (n, 2, 2)
    """
    s, e = np.atleast_1d(width), np.atleast_1d(ellipticity)
    two = 2 * np.radians(np.atleast_1d(angle))
    out = np.empty((s.size, 2, 2))
    out[:, 0, 0] = s * (1 - e * np.cos(two))
    out[:, 1, 1] = s * (1 + e * np.cos(two))
    out[:, 0, 1] = out[:, 1, 0] = s * e * np.sin(two)
    return out


@dataclass(frozen=True)
class PRFField:
    """The width and shape of the PRF over the CCD (see the module's docstring).

    Parameters
    ----------
    width_change, ellipticity, angle : float
        The settings ``w``, ``E`` and ``p0`` [deg].
    width_terms, ellipticity_terms, angle_terms : tuple of float
        The coefficients of ``P_s``, ``P_e``, ``P_p``.
    """

    width_change: float
    ellipticity: float
    angle: float
    width_terms: tuple[float, ...] = (0.0,) * N_TERMS
    ellipticity_terms: tuple[float, ...] = (0.0,) * N_TERMS
    angle_terms: tuple[float, ...] = (0.0,) * N_TERMS

    @classmethod
    def draw(cls, settings: PRFDifferenceSettings, seed: int) -> PRFField:
        """The field of a simulation, drawn from its own random stream."""
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(PRF_STREAM,)))
        return cls(
            settings.width_change,
            settings.ellipticity,
            settings.angle,
            *(_scaled_terms(rng) for _ in range(3)),
        )

    @property
    def changes_shape(self) -> bool:
        """Whether the field changes the PRF at all."""
        return self.width_change != 0 or self.ellipticity != 0

    def evaluate(
        self, rows: ArrayLike, cols: ArrayLike
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Width factor ``s``, ellipticity ``e`` and direction ``p`` [deg] at positions.

        Parameters
        ----------
        rows, cols : array_like, shape (n,)
            Science-area positions (clamped to the CCD).

        Returns
        -------
        width, ellipticity, angle : numpy.ndarray
        """
        terms = _terms(np.atleast_1d(rows), np.atleast_1d(cols))
        width = 1 + self.width_change * (1 + FIELD_SPREAD * terms @ self.width_terms)
        ellipticity = self.ellipticity * (1 + FIELD_SPREAD * terms @ self.ellipticity_terms)
        angle = self.angle + ANGLE_SPREAD * terms @ self.angle_terms
        return width, ellipticity, angle

    def matrices(self, rows: ArrayLike, cols: ArrayLike) -> np.ndarray:
        """The matrices ``A`` (n, 2, 2) at positions, without the focus change."""
        return shape_matrices(*self.evaluate(rows, cols))


def focus_curve(
    tmid: np.ndarray, orbits: list[tuple[float, float]], *, change: float, time: float
) -> np.ndarray:
    """The focus factor ``f`` of the PRF's width at times.

    Parameters
    ----------
    tmid : numpy.ndarray
        Mid-exposure times [TJD].
    orbits : list of (float, float)
        Start and end of every orbit [TJD].
    change : float
        Relative width change ``F`` at an orbit's start.
    time : float
        Its e-folding time ``tau`` [d].

    Returns
    -------
    numpy.ndarray
        ``1 + F exp(-(t - t0) / tau)``, ``t0`` the start of the last orbit started by ``t``.
    """
    tmid = np.asarray(tmid, dtype=float)
    starts = np.array([start for start, _ in orbits])
    which = np.clip(np.searchsorted(starts, tmid, side="right") - 1, 0, starts.size - 1)
    return 1 + change * np.exp(-np.clip(tmid - starts[which], 0.0, None) / time)
