"""The sky level of K2P2 (:mod:`tessphot.photometry.k2p2`): the mode of the pixel values.

A Gaussian kernel density estimate of the faint pixels, its maximum refined, and the robust
noise below it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import minimize_scalar

from tessphot.config.k2p2 import K2P2Settings
from tessphot.lightcurve.diagnostics import MAD_TO_SIGMA
from tessphot.photometry.errors import K2P2NoFlux

#: Scott's rule for a Gaussian kernel: bandwidth = 1.059 A n^(-1/5) (statsmodels' 'scott').
SCOTT_FACTOR = 1.059
#: Interquartile range of a unit Gaussian.
IQR_TO_SIGMA = 1.349
#: Points of the grid on which the density is evaluated before refining its maximum.
KDE_GRID_POINTS = 100
#: Largest number of (grid point, sample) pairs evaluated at once by the density.
KDE_BLOCK_ELEMENTS = 1 << 20


class Sky(NamedTuple):
    """The sky of a sum image: its mode, noise, the cut above it and the KDE bandwidth."""

    mode: float
    noise: float
    cut: float
    bandwidth: float


def _gaussian_density(sample: np.ndarray, bandwidth: float):
    """Unnormalised Gaussian kernel density of a 1-D sample (kernel sd ``bandwidth``).

    The same shape as ``scipy.stats.gaussian_kde`` with that bandwidth, evaluated directly
    (in blocks that bound the memory), which is many times faster for small samples.
    """
    sample = np.asarray(sample, dtype=np.float64)
    scale = 1.0 / (np.sqrt(2.0) * bandwidth)

    def density(x) -> np.ndarray:
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        out = np.empty(x.size)
        step = max(1, KDE_BLOCK_ELEMENTS // max(sample.size, 1))
        for start in range(0, x.size, step):
            d = (x[start : start + step, None] - sample[None, :]) * scale
            out[start : start + step] = np.exp(-(d * d)).sum(axis=1)
        return out

    return density


def sky_level(image: np.ndarray, finite: np.ndarray, settings: K2P2Settings) -> Sky:
    """Sky mode (KDE of the pixel values), the robust noise below it, and the cut."""
    positive = finite & (image > 0)
    if not positive.any():
        raise K2P2NoFlux("no positive flux in the sum image")
    sample = np.sort(image[positive] if settings.sky_positive_only else image[finite])
    keep = max(1, int(sample.size * (1.0 - settings.sample_trim)))
    trimmed = sample[:keep]
    capped = trimmed[trimmed < settings.flux_cap]
    if capped.size:
        trimmed = capped
    n = trimmed.size
    spread = 0.0
    if n > 1:
        q75, q25 = np.percentile(trimmed, [75, 25])
        spread = min(float(np.std(trimmed, ddof=1)), float(q75 - q25) / IQR_TO_SIGMA)
        if spread <= 0:
            spread = float(np.std(trimmed, ddof=1))
    bandwidth = SCOTT_FACTOR * spread * n ** (-0.2)
    if bandwidth > 0:
        kde = _gaussian_density(trimmed, bandwidth)
        grid = np.linspace(trimmed[0], trimmed[-1], KDE_GRID_POINTS)
        density = kde(grid)
        best = int(np.argmax(density))
        lo = grid[max(best - 1, 0)]
        hi = grid[min(best + 1, grid.size - 1)]
        mode = float(grid[best])
        if hi > lo:
            found = minimize_scalar(
                lambda x: -kde(x)[0],
                bounds=(lo, hi),
                method="bounded",
                options={"xatol": 1e-6 * max(abs(hi), 1.0)},
            )
            if found.success and -found.fun >= density[best]:
                mode = float(found.x)
    else:
        bandwidth = 0.0
        mode = float(np.median(trimmed))
    below = trimmed[trimmed < mode]
    mad = MAD_TO_SIGMA * float(np.median(mode - below)) if below.size else 0.0
    # The noise of the sky for the significance of masks: all finite pixels below the mode.
    all_below = image[finite & (image < mode)]
    noise = MAD_TO_SIGMA * float(np.median(mode - all_below)) if all_below.size else mad
    return Sky(mode=mode, noise=noise, cut=mode + settings.thresh * mad, bandwidth=bandwidth)
