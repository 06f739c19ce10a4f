"""The raw light curves of a group of targets, on one grid of cadences.

The corrections of one sector, camera, CCD, cadence and CBV area use all its light
curves at once: :func:`read_group` reads them into a (star, cadence) matrix aligned on the
cadence numbers, with the cadences every star may use (no TESS quality flag that makes
photometry unusable) and the momentum dumps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tessphot.io.errors import FileProblem
from tessphot.lightcurve.diagnostics import DEFAULT_QUALITY_BITMASK
from tessphot.lightcurve.update import read_lightcurve_file

logger = logging.getLogger(__name__)

#: TESS quality bit of a reaction-wheel desaturation (momentum dump).
MOMENTUM_DUMP_FLAG = 32


@dataclass(frozen=True)
class RawLightCurve:
    """The columns of one light curve that the corrections use."""

    time: np.ndarray
    cadenceno: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray
    #: TESS quality flags (``PIXEL_QUALITY``).
    pixel_quality: np.ndarray


def read_raw(path: Path) -> RawLightCurve:
    """The raw flux of a light-curve file.

    Raises
    ------
    FileProblem
        When the file is missing, damaged or not a TASOC-format light curve.
    """
    lc = read_lightcurve_file(path)
    try:
        return RawLightCurve(
            time=lc.column("TIME"),
            cadenceno=lc.column("CADENCENO", np.int64),
            flux=lc.column("FLUX_RAW"),
            flux_err=lc.column("FLUX_RAW_ERR"),
            pixel_quality=lc.column("PIXEL_QUALITY", np.int64),
        )
    except ValueError as err:  # a column missing
        raise FileProblem(path, f"not a light curve of the TASOC format ({err})") from None


@dataclass
class GroupData:
    """The light curves of a group on a common grid of cadences."""

    #: (n_cadences,) the grid: cadence numbers and mid-times [BTJD] (NaN if unknown).
    cadenceno: np.ndarray
    time: np.ndarray
    #: (n_stars, n_cadences) raw flux and its error [e-/s]; NaN where missing.
    flux: np.ndarray
    flux_err: np.ndarray
    #: (n_cadences,) cadences with no excluding quality flag in any light curve.
    good: np.ndarray
    #: (n_cadences,) momentum-dump cadences.
    dumps: np.ndarray
    #: (n_stars,) index of each star's row in the cadence grid of its own file.
    rows: list[np.ndarray]


def align(curves: list[RawLightCurve]) -> GroupData:
    """Put light curves on the grid of all their cadence numbers."""
    grid = np.unique(np.concatenate([c.cadenceno for c in curves]))
    n = grid.size
    flux = np.full((len(curves), n), np.nan)
    flux_err = np.full((len(curves), n), np.nan)
    time = np.full(n, np.nan)
    flags = np.zeros(n, dtype=np.int64)
    rows = []
    for k, curve in enumerate(curves):
        index = np.searchsorted(grid, curve.cadenceno)
        rows.append(index)
        flux[k, index] = curve.flux
        flux_err[k, index] = curve.flux_err
        known = np.isfinite(curve.time)
        time[index[known]] = curve.time[known]
        flags[index] |= curve.pixel_quality
    good = ((flags & DEFAULT_QUALITY_BITMASK) == 0) & np.isfinite(time)
    return GroupData(
        cadenceno=grid,
        time=time,
        flux=flux,
        flux_err=flux_err,
        good=good,
        dumps=(flags & MOMENTUM_DUMP_FLAG) != 0,
        rows=rows,
    )
