"""The low-frequency variability of a light curve, and how much of it a correction removes."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d


def lowpass(values: np.ndarray, window: int) -> np.ndarray:
    """Running mean of consecutive values over ``window`` of them (edges: nearest value).

    Parameters
    ----------
    values : ndarray
        A light curve without NaN (gaps between cadences are ignored).
    window : int
        Width of the running mean [cadences].
    """
    return uniform_filter1d(np.asarray(values, dtype=float), max(1, int(window)), mode="nearest")


def variance_removed(before: np.ndarray, after: np.ndarray, window: int) -> float:
    """Fraction of the low-frequency variance of a light curve a correction removed.

    Parameters
    ----------
    before, after : ndarray
        The relative flux before and after the correction, on the same cadences (no NaN).
    window : int
        Width of the running mean that keeps the low frequencies [cadences].

    Returns
    -------
    float
        ``1 - var(lowpass(after)) / var(lowpass(before))`` (negative: variance added).
    """
    reference = float(np.var(lowpass(before, window)))
    if not reference > 0:
        return 0.0
    return 1.0 - float(np.var(lowpass(after, window))) / reference
