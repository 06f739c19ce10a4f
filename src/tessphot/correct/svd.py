"""Robust SVD of the chosen light curves, and how many of its vectors are significant.

Each star's relative flux is divided by its point-to-point noise (floored at a quantile of
the stars' noises, so that the brightest few do not decide alone) and centred: white noise
then has unit variance everywhere, and a matrix of it (``n`` stars by ``m`` cadences) has no
singular value much above the Marchenko-Pastur edge ``sqrt(n) + sqrt(m)``.

**Significance.** A vector is kept when its singular value exceeds ``significance`` times
the larger of that edge and the top singular value of the residual (data minus the vectors
found so far) with every star's time series circularly shifted by its own random lag. The
shift keeps each star's own red noise and intrinsic variability but breaks what stars share,
so this second level is what incoherent signals of the same power give by chance; it rises
above the edge when the stars are not white. (Permuting the raw data instead would let the
strongest trends raise the level above the weaker real ones.)

**Robustness.** Passes of (SVD, clipping): single values further than ``element_sigma``
from the model are replaced by it (cosmic rays, flares); stars whose residual rms stands
out (``clip_sigma`` robust sigma above the median of the stars), or that hold more than
``max_leverage`` times their even share of a vector (a vector made by one variable star),
are dropped; the SVD is done again until nothing changes or ``iterations`` passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from sklearn.utils.extmath import randomized_svd

from tessphot.config.correct import CBVSettings
from tessphot.correct.stats import robust_std

#: Extra random directions and power iterations of the randomized SVD.
OVERSAMPLES = 10
POWER_ITERATIONS = 4
#: Matrices with fewer elements than this get an exact SVD.
EXACT_SVD_SIZE = 200_000


@dataclass
class Decomposition:
    """The significant vectors of a set of light curves.

    Attributes
    ----------
    vectors : ndarray, shape (n_cadences, k)
        Orthonormal time series (right singular vectors), signs such that the stars'
        weights on each sum to a positive number.
    singular_values : ndarray
        Every singular value computed (at least ``k``), of the whitened matrix.
    explained : ndarray
        Fraction of the whitened matrix's total power in each of them.
    threshold : float
        The singular value above which a vector counts.
    rows : ndarray of int
        The rows (stars) the vectors were made from, after clipping.
    """

    vectors: np.ndarray
    singular_values: np.ndarray
    explained: np.ndarray
    threshold: float
    rows: np.ndarray


def whitening_weights(noise: np.ndarray, quantile: float) -> np.ndarray:
    """One over each star's noise, the noise floored at its ``quantile`` among the stars.

    Parameters
    ----------
    noise : ndarray
        Point-to-point noise of each star (relative flux).
    quantile : float
        The floor's quantile (0-1).
    """
    finite = noise[np.isfinite(noise) & (noise > 0)]
    floor = np.quantile(finite, quantile) if finite.size else 1.0
    return 1.0 / np.maximum(np.nan_to_num(noise, nan=np.inf), floor)


def top_svd(matrix: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` leading singular triplets (exact for small matrices, randomized otherwise).

    Parameters
    ----------
    matrix : ndarray, shape (n, m)
        The matrix.
    k : int
        How many (at most ``min(n, m)``).
    seed : int
        Seed of the randomized SVD.
    """
    k = min(k, *matrix.shape)
    if matrix.size <= EXACT_SVD_SIZE or k + OVERSAMPLES >= min(matrix.shape):
        u, s, vt = scipy.linalg.svd(matrix, full_matrices=False, check_finite=False)
        return u[:, :k], s[:k], vt[:k]
    return randomized_svd(
        matrix, k, n_oversamples=OVERSAMPLES, n_iter=POWER_ITERATIONS, random_state=seed
    )


def leading_count(values: np.ndarray, threshold: float) -> int:
    """How many of the leading (descending) values exceed the threshold."""
    above = values > threshold
    return int(above.size if above.all() else np.argmin(above))


def shifted_level(residual: np.ndarray, rng: np.random.Generator) -> float:
    """Top singular value of the residual with each row circularly shifted by a random lag.

    Parameters
    ----------
    residual : ndarray, shape (n, m)
        The residual.
    rng : numpy.random.Generator
        For the lags.
    """
    n, m = residual.shape
    lags = rng.integers(0, m, size=n)
    index = (np.arange(m)[None, :] + lags[:, None]) % m
    shifted = np.take_along_axis(residual, index, axis=1)
    return float(top_svd(shifted, 1, int(rng.integers(2**31)))[1][0])


def _threshold(whitened, u, s, vt, settings, rng) -> tuple[float, int, np.ndarray]:
    """The significance threshold, the number of vectors above it and the residual."""
    n, m = whitened.shape
    edge = settings.significance * (np.sqrt(n) + np.sqrt(m))
    k = leading_count(s, edge)
    residual = whitened - (u[:, :k] * s[:k]) @ vt[:k]
    threshold = settings.significance * max(np.sqrt(n) + np.sqrt(m), shifted_level(residual, rng))
    k_final = leading_count(s, threshold)
    if k_final != k:
        residual = whitened - (u[:, :k_final] * s[:k_final]) @ vt[:k_final]
    return threshold, k_final, residual


def _outlier_stars(u: np.ndarray, residual: np.ndarray, settings: CBVSettings) -> np.ndarray:
    """Stars whose residual stands out or that hold too much of a vector."""
    rms = np.sqrt(np.mean(residual**2, axis=1))
    spread = max(float(robust_std(rms)), 1e-12)
    loud = rms > np.median(rms) + settings.clip_sigma * spread
    leverage = u.shape[0] * np.max(u**2, axis=1) if u.shape[1] else np.zeros(len(rms))
    return loud | (leverage > settings.max_leverage)


def robust_svd(
    values: np.ndarray, weights: np.ndarray, settings: CBVSettings, rng: np.random.Generator
) -> Decomposition:
    """The significant vectors of light curves, by passes of SVD and clipping.

    Parameters
    ----------
    values : ndarray, shape (n_stars, n_cadences)
        Relative fluxes (gaps filled, spikes split off). Not changed.
    weights : ndarray, shape (n_stars,)
        :func:`whitening_weights` of the stars.
    settings : CBVSettings
        ``max_vectors``, ``significance``, ``clip_sigma``, ``max_leverage``,
        ``element_sigma``, ``iterations``, ``min_stars``.
    rng : numpy.random.Generator
        Random numbers (the shifts, the randomized SVD).
    """
    values = values.copy()
    keep = np.ones(values.shape[0], bool)
    u = s = vt = np.empty((0, 0))
    threshold, k, power = np.inf, 0, 1.0
    for iteration in range(settings.iterations):
        rows = np.flatnonzero(keep)
        if len(rows) < settings.min_stars:
            k = 0
            break
        whitened = weights[rows, None] * values[rows]
        offset = whitened.mean(axis=1, keepdims=True)
        whitened -= offset
        power = float(np.sum(whitened**2)) or 1.0
        u, s, vt = top_svd(whitened, settings.max_vectors + 1, int(rng.integers(2**31)))
        threshold, k, residual = _threshold(whitened, u, s, vt, settings, rng)
        k = min(k, settings.max_vectors)
        if k == 0 or iteration == settings.iterations - 1:
            break
        wild = np.abs(residual) > settings.element_sigma
        model = whitened - residual + offset
        residual[wild] = 0.0
        outliers = _outlier_stars(u[:, :k], residual, settings)
        if not wild.any() and not outliers.any():
            break
        values[rows] = np.where(wild, model / weights[rows, None], values[rows])
        keep[rows[outliers]] = False
    rows = np.flatnonzero(keep)
    signs = np.where(u[:, :k].sum(axis=0) < 0, -1.0, 1.0) if k else np.ones(0)
    vectors = (vt[:k] * signs[:, None]).T if k else np.empty((values.shape[1], 0))
    return Decomposition(vectors, s, s**2 / power, float(threshold), rows)
