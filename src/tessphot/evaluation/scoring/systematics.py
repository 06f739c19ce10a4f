"""The simulated systematics of targets, as the scorers need them (raw and corrected flux).

A simulation with ``[simulate] systematics`` renders every star's flux times ``1 + m`` (the
truth's ``flux`` is that rendered flux) and adds ``a(row, col) g(t)`` to the images
(:mod:`tessphot.evaluation.simulate.systematics`). In the raw flux of any fixed aperture
they are therefore ``m(t)`` times the light of the stars in it (the target's and, the trends
being smooth over the CCD, its neighbours' alike) plus ``g(t) sum_aperture a``: two known
time series with scales that depend on the aperture (:meth:`TargetSystematics.raw_columns`),
exactly known for a given aperture (:meth:`TargetSystematics.additive_flux`,
:func:`aperture_pixels`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from tessphot.constants import FIRST_SCIENCE_CCD_COLUMN, FIRST_SCIENCE_CCD_ROW
from tessphot.lightcurve.format import ApertureBits


@dataclass
class TargetSystematics:
    """The systematics of a simulation for some of its stars (the targets).

    Attributes
    ----------
    basis : numpy.ndarray
        (cadence, component) time series ``h_k``.
    coefficients : numpy.ndarray
        (target, component) coefficients ``B_k``: ``m = coefficients @ basis.T``.
    additive_map : numpy.ndarray
        (y, x) additive light at ``g = 1`` [e-/s/px] on the simulated region.
    origin : tuple of int
        Science-area (row, column) of the map's first pixel.
    additive_profile : numpy.ndarray
        (cadence,) its time profile ``g``.
    components : tuple of str
        Names of the components.
    """

    basis: np.ndarray
    coefficients: np.ndarray
    additive_map: np.ndarray
    origin: tuple[int, int]
    additive_profile: np.ndarray
    components: tuple[str, ...]

    @classmethod
    def select(cls, arrays: dict | None, index: np.ndarray) -> TargetSystematics | None:
        """The systematics of the stars ``index`` of a truth file (None without any).

        Parameters
        ----------
        arrays : dict or None
            :func:`tessphot.evaluation.simulate.truth.read_systematics` of the truth file.
        index : numpy.ndarray
            Indices of the targets in the truth's ``stars`` table.

        Returns
        -------
        TargetSystematics or None
        """
        if arrays is None:
            return None
        return cls(
            basis=np.asarray(arrays["basis"], dtype=float),
            coefficients=np.asarray(arrays["coefficients"], dtype=float)[np.asarray(index, int)],
            additive_map=np.asarray(arrays["additive_map"]),
            origin=tuple(int(v) for v in arrays["origin"]),
            additive_profile=np.asarray(arrays["additive_profile"], dtype=float),
            components=tuple(arrays["components"]),
        )

    def multiplicative(self, i: int) -> np.ndarray:
        """``m(t)`` of target ``i`` on every cadence (its flux was rendered times ``1 + m``)."""
        return self.basis @ self.coefficients[i]

    def additive_flux(self, rows, cols) -> np.ndarray:
        """The additive light in an aperture on every cadence [e-/s].

        Parameters
        ----------
        rows, cols : array_like of int
            Science-area pixels of the aperture.

        Returns
        -------
        numpy.ndarray
            ``g(t) sum_aperture a``.

        Raises
        ------
        ValueError
            For a pixel off the simulated region.
        """
        y = np.asarray(rows, dtype=int) - self.origin[0]
        x = np.asarray(cols, dtype=int) - self.origin[1]
        ny, nx = self.additive_map.shape
        if np.any((y < 0) | (y >= ny) | (x < 0) | (x >= nx)):
            raise ValueError("aperture pixels off the simulated region")
        return self.additive_profile * float(np.sum(self.additive_map[y, x], dtype=float))

    def raw_columns(self, i: int, cadences: np.ndarray) -> np.ndarray:
        """The shapes of the systematics in a raw flux of target ``i``: ``m`` and ``g``.

        Parameters
        ----------
        i : int
            The target.
        cadences : numpy.ndarray
            Indices of the cadences.

        Returns
        -------
        numpy.ndarray
            (cadence, 2): ``m(t)`` (to multiply the light of the aperture's stars) and
            ``g(t)`` (to multiply ``sum_aperture a``).
        """
        return np.column_stack([self.multiplicative(i)[cadences], self.additive_profile[cadences]])


def aperture_pixels(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """Science-area pixels of the photometric mask of a TASOC light curve.

    Parameters
    ----------
    path : path-like
        The light-curve file (its ``APERTURE`` image and SPOC's physical WCS cards).

    Returns
    -------
    rows, cols : numpy.ndarray of int
        The pixels with the ``PHOTOMETRIC`` bit.
    """
    with fits.open(path, memmap=False) as hdul:
        return photometric_pixels(hdul["APERTURE"])


def photometric_pixels(hdu: fits.ImageHDU) -> tuple[np.ndarray, np.ndarray]:
    """Science-area pixels with the ``PHOTOMETRIC`` bit of an open ``APERTURE`` image.

    As :func:`aperture_pixels`, for a light curve already open.
    """
    bits = np.asarray(hdu.data)
    row0 = int(hdu.header["CRVAL2P"]) - FIRST_SCIENCE_CCD_ROW
    col0 = int(hdu.header["CRVAL1P"]) - FIRST_SCIENCE_CCD_COLUMN
    y, x = np.nonzero(bits & ApertureBits.PHOTOMETRIC)
    return y + row0, x + col0
