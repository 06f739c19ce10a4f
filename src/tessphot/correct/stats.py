"""Robust statistics of light curves shared by the vectors and the fits: noise and spread.

The point-to-point scatter itself is :func:`tessphot.lightcurve.diagnostics.ptp`.
"""

from __future__ import annotations

import numpy as np

from tessphot.lightcurve.diagnostics import MAD_TO_SIGMA

#: Point-to-point differences of white noise have sqrt(2) times its standard deviation.
SQRT2 = np.sqrt(2.0)


def robust_std(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Standard deviation from the median absolute deviation (NaN ignored).

    Parameters
    ----------
    values : ndarray
        The values.
    axis : int, optional
        Axis along which to compute it (None: all values).
    """
    median = np.nanmedian(values, axis=axis, keepdims=True)
    mad = np.nanmedian(np.abs(values - median), axis=axis)
    return MAD_TO_SIGMA * mad


def ptp_sigma(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """White-noise standard deviation from the differences of consecutive values.

    Smooth trends and steps barely touch it (a median of the differences), so it measures
    the noise of a light curve whatever its systematics (NaN ignored).

    Parameters
    ----------
    values : ndarray
        The values, consecutive along ``axis``.
    axis : int
        Axis of time.
    """
    diffs = np.diff(values, axis=axis)
    return MAD_TO_SIGMA * np.nanmedian(np.abs(diffs), axis=axis) / SQRT2
