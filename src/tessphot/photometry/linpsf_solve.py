"""The linear algebra of linear PSF photometry.

Normal equations and their solution, the first pass and its smoothing in time.
"""

from __future__ import annotations

import numpy as np

from tessphot.photometry.goodness import FitChi2, residual_chi2
from tessphot.prf import HALF_WIDTH, PRFModel, prf_images

#: Fixed stars putting less than this fraction of the target's light on the fit region are
#: left out of the model (each costs a PRF image per cadence; the fit's noise is far above
#: what they change).
MIN_FIXED_LIGHT = 1.0e-4
#: Fit radius of targets that may saturate: the whole PRF footprint, since their core and
#: bleed columns are left out of the fit [px].
SATURATED_FIT_RADIUS = HALF_WIDTH + 0.5
#: Step of the central differences of a PRF image's derivatives [px].
SHIFT_STEP = 0.05
#: Hours in a day.
HOURS_PER_DAY = 24.0
#: Cadences whose design matrices are built at once (bounds memory: cadences x stars x
#: pixels of the region).
DESIGN_CADENCES = 256
#: Relative singular values below this are dropped when the normal equations are inverted
#: (stars the data cannot separate get no flux instead of a huge one).
RCOND = 1e-10


def normal_equations(
    design: np.ndarray, data: np.ndarray, variance: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The weighted normal equations of a batch of independent linear problems.

    Parameters
    ----------
    design : ndarray, shape (n, k, p)
        ``k`` model images over ``p`` pixels per problem.
    data : ndarray, shape (n, p)
        Data; NaN pixels are left out.
    variance : ndarray, shape (n, p)
        Variance of each pixel (the weights are its inverse); non-finite or non-positive:
        left out.

    Returns
    -------
    normal : ndarray, shape (n, k, k)
        ``A W A^T``.
    rhs : ndarray, shape (n, k)
        ``A W d``.
    weighted : ndarray, shape (n, k, p)
        ``A W`` (zero on the pixels left out).
    ok : ndarray of bool, shape (n, p)
        The pixels used.
    """
    ok = np.isfinite(data) & np.isfinite(variance) & (variance > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(ok, 1.0 / variance, 0.0)
    normal, rhs, weighted = weighted_normal(design, np.where(ok, data, 0.0), weight)
    return normal, rhs, weighted, ok


def weighted_normal(
    design: np.ndarray, data: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``A W A^T``, ``A W d`` and ``A W`` of a batch of problems.

    ``design`` (n, k, p), finite ``data`` (n, p), ``weight`` (n, p): each pixel's inverse
    variance, 0 to leave it out.
    """
    weighted = design * weight[:, None, :]
    normal = weighted @ design.transpose(0, 2, 1)
    rhs = np.einsum("nkp,np->nk", weighted, data)
    return normal, rhs, weighted


def solve_normal(
    normal: np.ndarray, rhs: np.ndarray, ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and covariance ``(A W A^T)^-1`` from the normal equations.

    Those of :func:`normal_equations`; NaN for problems without usable pixels (``ok``).
    """
    cov = np.linalg.pinv(normal, rcond=RCOND, hermitian=True)
    coef = np.einsum("nkl,nl->nk", cov, rhs)
    empty = ~ok.any(axis=1)
    coef[empty] = np.nan
    cov[empty] = np.nan
    return coef, cov


def solve_fluxes(
    design: np.ndarray, data: np.ndarray, variance: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted linear least squares for a batch of independent problems.

    Parameters are those of :func:`normal_equations`.

    Returns
    -------
    coefficients, errors : ndarray, shape (n, k)
        Best-fit coefficients and their standard errors (square root of the covariance's
        diagonal); NaN for problems without usable pixels.
    """
    normal, rhs, _, ok = normal_equations(design, data, variance)
    coef, cov = solve_normal(normal, rhs, ok)
    return coef, np.sqrt(np.clip(np.diagonal(cov, axis1=1, axis2=2), 0.0, None))


class FirstPass:
    """The first pass of linear PSF photometry, cadence by cadence.

    Every parameter's coefficients and covariance, the target's rows of the normal
    equations (its first ``kt`` parameters: the flux and, when fitted, its shifts), which
    the second pass needs, and each cadence's chi-square (:attr:`goodness`).

    Parameters
    ----------
    n : int
        Number of cadences.
    n_par : int
        Parameters per cadence.
    kt : int
        The target's parameters (first among them).
    """

    def __init__(self, n: int, n_par: int, kt: int = 1) -> None:
        self.kt = kt
        self.coefs = np.full((n, n_par), np.nan)
        self.covs = np.full((n, n_par, n_par), np.nan)
        self.target_normal = np.full((n, kt, kt), np.nan)
        self.target_cross = np.full((n, kt, n_par - kt), np.nan)
        self.target_rhs = np.full((n, kt), np.nan)
        #: Chi-square and degrees of freedom of every cadence's fit
        #: (:mod:`tessphot.photometry.goodness`).
        self.goodness = FitChi2(n)

    def fit(
        self, use: np.ndarray, design: np.ndarray, data: np.ndarray, variance: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fit the cadences ``use`` (arguments of :func:`normal_equations`).

        Keeps what the second pass needs and the fit's chi-square, and returns their
        coefficients and covariance.
        """
        normal, rhs, _, ok = normal_equations(design, data, variance)
        coef, cov = solve_normal(normal, rhs, ok)
        self.goodness.record(use, *residual_chi2(design, data, variance, coef))
        kt = self.kt
        self.coefs[use], self.covs[use] = coef, cov
        self.target_normal[use] = np.where(
            ok.any(axis=1)[:, None, None], normal[:, :kt, :kt], np.nan
        )
        self.target_cross[use] = normal[:, :kt, kt:]
        self.target_rhs[use] = rhs[:, :kt]
        return coef, cov


def smooth_local_linear(
    t: np.ndarray,
    values: np.ndarray,
    covariances: np.ndarray,
    use: np.ndarray,
    half_width: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Local straight-line smoothing of several series, with the propagated covariance.

    At every time ``t[k]`` a straight line is fitted (equal weights) to the cadences in
    ``use`` within ``half_width`` of it and evaluated at ``t[k]``; with fewer than three
    such cadences, their mean. Window sums come from cumulative sums, so the cost is
    linear in the number of cadences.

    Parameters
    ----------
    t : ndarray, shape (n,)
        Times (any units, the same as ``half_width``); finite where ``use``.
    values : ndarray, shape (n, m)
        The series.
    covariances : ndarray, shape (n, m, m)
        Covariance of each cadence's values (cadences taken as independent).
    use : ndarray of bool, shape (n,)
        Cadences that enter the fits (finite values).
    half_width : float
        Half the window.

    Returns
    -------
    smoothed : ndarray, shape (n, m)
        NaN where no cadence is within the window.
    covariance : ndarray, shape (n, m, m)
        Covariance of the smoothed values.
    excess : ndarray, shape (n, m)
        How badly the line fits each window: its residual chi-square (with the window's
        mean variance of the series) minus its degrees of freedom, over the standard
        deviation of that chi-square, ``sqrt(2 dof)``; about N(0, 1) where a straight line
        describes the series, large where it changes faster (NaN with fewer than three
        cadences in the window).
    """
    n, m = values.shape
    idx = np.flatnonzero(use)
    smoothed = np.full((n, m), np.nan)
    covariance = np.full((n, m, m), np.nan)
    excess = np.full((n, m), np.nan)
    if idx.size == 0:
        return smoothed, covariance, excess
    origin = float(t[idx].mean())
    tg = t[idx] - origin
    tk = np.where(np.isfinite(t), t - origin, np.nan)

    def window_sums(x: np.ndarray) -> np.ndarray:
        c = np.concatenate([np.zeros((1, *x.shape[1:])), np.cumsum(x, axis=0)])
        return c[hi] - c[lo]

    known = np.isfinite(tk)
    lo = np.searchsorted(tg, np.where(known, tk - half_width, np.inf), side="left")
    hi = np.searchsorted(tg, np.where(known, tk + half_width, -np.inf), side="right")
    hi = np.maximum(hi, lo)
    level = values[idx].mean(axis=0)
    y, cov = values[idx] - level, covariances[idx]
    s0 = (hi - lo).astype(float)
    p1, p2 = window_sums(tg), window_sums(tg**2)
    y0, y1, yy = window_sums(y), window_sums(tg[:, None] * y), window_sums(y**2)
    c0 = window_sums(cov)
    c1 = window_sums(tg[:, None, None] * cov)
    c2 = window_sums(tg[:, None, None] ** 2 * cov)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Sums over the window in offsets from t[k]: S1 = sum(dt), S2 = sum(dt^2), ...
        s1 = p1 - s0 * tk
        s2 = p2 - 2 * tk * p1 + s0 * tk**2
        det = s0 * s2 - s1**2
        line = (s0 >= 3) & (det > 1e-12 * np.maximum(s2, 1e-300) * s0)
        sy1 = y1 - tk[:, None] * y0
        a, b = s2[:, None, None], s1[:, None, None]
        tc = tk[:, None, None]
        dc1 = c1 - tc * c0
        dc2 = c2 - 2 * tc * c1 + tc**2 * c0
        fit = (s2[:, None] * y0 - s1[:, None] * sy1) / det[:, None]
        fit_cov = (a**2 * c0 - 2 * a * b * dc1 + b**2 * dc2) / det[:, None, None] ** 2
        mean = y0 / s0[:, None]
        mean_cov = c0 / s0[:, None, None] ** 2
        rss = (
            yy
            - (s2[:, None] * y0**2 - 2 * s1[:, None] * y0 * sy1 + s0[:, None] * sy1**2)
            / det[:, None]
        )
        dof = (s0 - 2)[:, None]
        window_variance = np.diagonal(c0, axis1=1, axis2=2) / s0[:, None]
        chi2_excess = (rss / window_variance - dof) / np.sqrt(2 * dof)
    some = s0 > 0
    smoothed[some] = np.where(line[some, None], fit[some] + level, mean[some] + level)
    covariance[some] = np.where(line[some, None, None], fit_cov[some], mean_cov[some])
    excess[line] = chi2_excess[line]
    return smoothed, covariance, excess


def shift_images(
    prf: PRFModel, rows, cols, node_row, node_col, origin, shape, *, cadences=None
) -> np.ndarray:
    """Derivatives of a star's PRF image with respect to its row and column.

    Central differences of step :data:`SHIFT_STEP`; shape (n_cadences, 2, pixels of the
    box). ``cadences``: of the positions, for a PRF that changes with time
    (:func:`tessphot.prf.prf_images`).
    """
    h = SHIFT_STEP
    out = []
    for dr, dc in ((h, 0.0), (0.0, h)):
        plus, minus = (
            prf_images(
                prf,
                (rows + sign * dr)[:, None],
                (cols + sign * dc)[:, None],
                np.array([node_row]),
                np.array([node_col]),
                origin,
                shape,
                cadences=cadences,
            )[:, 0]
            for sign in (1.0, -1.0)
        )
        out.append((plus - minus) / (2 * h))
    return np.stack(out, axis=1)
