"""What a photometry method hands to the light-curve writer: columns and stamp images."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np


@dataclass
class LightCurveColumns:
    """The columns of a light curve, one value per cadence.

    ``time``, ``flux``, ``flux_err`` and ``cadenceno`` are required; the writer fills the
    others (None) with their defaults (NaN, or 0 for integers).
    """

    time: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray
    cadenceno: np.ndarray
    timecorr: np.ndarray | None = None
    flux_bkg: np.ndarray | None = None
    quality: np.ndarray | None = None
    pixel_quality: np.ndarray | None = None
    centroid_row: np.ndarray | None = None
    centroid_column: np.ndarray | None = None
    pos_corr_row: np.ndarray | None = None
    pos_corr_column: np.ndarray | None = None

    def as_dict(self) -> dict[str, Any]:
        """The columns by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class TableExtension:
    """An extra binary-table extension of the stamp (e.g. halo photometry's ``WEIGHTMAP``).

    The writer gives it the stamp images' WCS and ``EXTNAME``.
    """

    #: Extension name.
    name: str
    #: The table's columns (:class:`astropy.io.fits.Column`).
    columns: tuple


@dataclass
class StampImages:
    """The images of a light curve's stamp.

    Attributes
    ----------
    sumimage : ndarray
        The average image [e-/s].
    aperture : ndarray of int
        The ``APERTURE`` bitmask (:class:`tessphot.lightcurve.ApertureBits`).
    stamp_origin : tuple of int
        Science-area ``(row, column)`` of the stamp's pixel ``[0, 0]``.
    wcs : WCS, Header or sequence of cards, optional
        The reference WCS (shifted to the stamp by the writer).
    extensions : tuple of TableExtension
        Extra extensions after ``APERTURE``.
    """

    sumimage: np.ndarray
    aperture: np.ndarray
    stamp_origin: tuple[int, int]
    wcs: Any = None
    extensions: tuple[TableExtension, ...] = field(default_factory=tuple)
