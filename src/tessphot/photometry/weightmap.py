"""Halo photometry's pixel weights and their ``WEIGHTMAP`` extension of the light curve."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.io import fits

from tessphot.lightcurve import TableExtension


@dataclass(frozen=True)
class WeightMap:
    """Halo photometry's pixel weights, one map per range of cadences.

    Attributes
    ----------
    cadenceno1, cadenceno2 : array_like of int, shape (n,)
        First and last cadence number each map applies to.
    sat_pixels : array_like of int, shape (n,)
        Number of saturated pixels.
    weights : array_like, shape (n, rows, columns)
        The maps.
    """

    cadenceno1: Any
    cadenceno2: Any
    sat_pixels: Any
    weights: Any

    def extension(self) -> TableExtension:
        """The ``WEIGHTMAP`` table extension of the light curve.

        Raises
        ------
        ValueError
            For maps that are not (n, rows, columns) or columns of another length.
        """
        weights = np.asarray(self.weights, dtype=np.float32)
        if weights.ndim != 3:
            raise ValueError(f"weight maps must be (n, rows, columns), not {weights.shape}")
        n, rows, cols = weights.shape
        arrays: Sequence[tuple[str, Any]] = (
            ("CADENCENO1", self.cadenceno1),
            ("CADENCENO2", self.cadenceno2),
            ("SAT_PIXELS", self.sat_pixels),
        )
        columns = []
        for name, values in arrays:
            values = np.asarray(values, dtype=np.int32)
            if values.shape != (n,):
                raise ValueError(
                    f"weight map column {name} has shape {values.shape}, expected ({n},)"
                )
            columns.append(fits.Column(name=name, format="J", array=values))
        columns.append(
            fits.Column(
                name="WEIGHTMAP", format=f"{rows * cols}E", dim=f"({cols},{rows})", array=weights
            )
        )
        return TableExtension("WEIGHTMAP", tuple(columns))
