"""The fit of cotrending basis vectors to one star, its goodness, and its fallback.

The model of a star's raw flux is ``median * (1 + offset + design @ coefficients)``, the
design being the CBV set's single-scale vectors and its spike vectors
(:meth:`tessphot.correct.cbv.CBVSet.design`).

* **Least squares** (no prior): iterative clipping of the cadences whose residual is an
  outlier (``clip_sigma`` robust sigma), then the number of single-scale vectors (the first
  ``n``; the spikes always in) chosen by the Bayesian information criterion on the cadences
  kept (nested models from one QR decomposition).
* **MAP** (with a :class:`~tessphot.correct.prior.Prior`): every single-scale vector; the
  least-squares coefficients and the prior are combined by their precisions. The data's
  covariance of the coefficients is the white noise's (``sigma^2 (A^T A)^-1``) plus what the
  star's own low-frequency variability can put on a unit vector (its variance, left after
  the prior's mean correction, times the number of cadences and ``variability_projection``):
  a quiet star keeps its least-squares fit, a variable one leans on its neighbours, so that its
  signal is not fitted away (PDC-MAP's goodness of fit against prior).
* **Goodness and fallback**: the noise added (point-to-point scatter after over before,
  minus one) and the variability removed (the fraction of the variance of the running mean
  over ``variability_window`` removed). A fit adding more than ``max_noise_added``, or (with
  a prior) removing more than ``max_extra_removed`` beyond what the prior's mean removes, is
  replaced by the next less damaging one: least squares, then with ever fewer vectors, then
  no correction at all (``method = "none"``); :attr:`CBVFit.reason` says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from tessphot.config.correct import FitSettings
from tessphot.correct.cbv import CBVSet
from tessphot.correct.prior import NeighbourPriors, Prior, neighbour_prior
from tessphot.correct.stats import ptp_sigma, robust_std
from tessphot.correct.variability import lowpass, variance_removed
from tessphot.lightcurve.diagnostics import PPM, ptp

__all__ = ["CBVFit", "NeighbourPriors", "Prior", "corrected_ppm", "fit_cbvs", "neighbour_prior"]

#: Fewest cadences a fit needs beyond its parameters.
MIN_DOF = 5


@dataclass
class CBVFit:
    """The correction of one star.

    Attributes
    ----------
    model : ndarray, shape (n,)
        Model of the raw flux [e-/s]: the star's median times the systematics; NaN where the
        vectors are (cadences left out of the CBVs) and where the flux is.
    coefficients : ndarray
        Coefficients of the first ``n_vectors`` single-scale vectors, then of the spikes.
    offset : float
        The constant term (relative flux).
    median : float
        The star's median flux over the usable cadences [e-/s].
    method : str
        ``"ls"``, ``"map"`` or ``"none"`` (no correction: the model is the median).
    n_vectors : int
        Single-scale vectors used.
    clipped : ndarray of bool, shape (n,)
        Cadences left out of the fit as outliers (deep transits and flares too: they are
        corrected like the others).
    noise_added : float
        Point-to-point scatter of the corrected over the raw relative flux, minus one.
    variability_removed : float
        Fraction of the low-frequency variance removed (``variability_window``).
    reason : str or None
        Why the first choice was replaced (None: it was not).
    ls_coefficients : ndarray, shape (k,)
        Least-squares coefficients of every single-scale vector (what the neighbours'
        priors are made of; NaN without a fit).
    """

    model: np.ndarray
    coefficients: np.ndarray
    offset: float
    median: float
    method: str
    n_vectors: int
    clipped: np.ndarray
    noise_added: float = float("nan")
    variability_removed: float = float("nan")
    reason: str | None = None
    ls_coefficients: np.ndarray = field(default_factory=lambda: np.empty(0))


@dataclass
class _Star:
    """What every candidate fit of one star shares."""

    y: np.ndarray  # relative flux, every cadence
    design: np.ndarray  # [1, vectors, spikes], every cadence
    usable: np.ndarray  # cadences usable for the fit
    mask: np.ndarray  # usable and not clipped
    k: int  # single-scale vectors
    window: int  # cadences of the running mean

    def columns(self, n_vectors: int) -> np.ndarray:
        """Columns of the offset, the first ``n_vectors`` vectors and the spikes."""
        return np.r_[0, 1 : 1 + n_vectors, 1 + self.k : self.design.shape[1]]


def _lstsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return scipy.linalg.lstsq(a, b, check_finite=False, lapack_driver="gelsy")[0]


def _clip(star: _Star, settings: FitSettings) -> None:
    """Iterative clipping of the outlying cadences of the full least-squares fit."""
    a = star.design
    for _ in range(settings.clip_iterations):
        coeffs = _lstsq(a[star.mask], star.y[star.mask])
        residual = _residual(star, coeffs)
        centre = np.median(residual[star.mask])
        spread = robust_std(residual[star.mask])
        mask = star.usable & (np.abs(residual - centre) <= settings.clip_sigma * spread)
        if np.array_equal(mask, star.mask) or mask.sum() <= a.shape[1] + MIN_DOF:
            return
        star.mask = mask


def _residual(star: _Star, coeffs: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
    """Residual of a fit on the usable cadences (NaN elsewhere)."""
    a = star.design if columns is None else star.design[:, columns]
    out = np.full(star.y.size, np.nan)
    out[star.usable] = star.y[star.usable] - a[star.usable] @ coeffs
    return out


def _bic_order(star: _Star) -> int:
    """Number of single-scale vectors by the Bayesian information criterion."""
    order = np.r_[0, 1 + star.k : star.design.shape[1], 1 : 1 + star.k]
    a = star.design[star.mask][:, order]
    y = star.y[star.mask]
    q, _ = np.linalg.qr(a)
    explained = np.cumsum((q.T @ y) ** 2)
    base = a.shape[1] - star.k
    rss = np.maximum(float(y @ y) - explained[base - 1 :], np.finfo(float).tiny)
    n = len(y)
    bic = n * np.log(rss / n) + (base + np.arange(star.k + 1)) * np.log(n)
    return int(np.argmin(bic))


def _map(star: _Star, ls: np.ndarray, prior: Prior, settings: FitSettings) -> np.ndarray:
    """MAP coefficients of every column: vectors by precision, offset and spikes refitted."""
    k = star.k
    a = star.design[star.mask]
    y = star.y[star.mask]
    vectors = a[:, 1 : 1 + k]
    sigma = float(ptp_sigma(y))
    gram_inv = np.linalg.pinv(vectors.T @ vectors)
    residual = y - vectors @ prior.mean
    residual -= np.mean(residual)
    low = lowpass(residual, star.window)
    intrinsic = np.var(low) - sigma**2 / star.window - np.trace(prior.covariance) / len(y)
    signal = max(intrinsic, 0.0) * len(y) * settings.variability_projection
    data_cov = sigma**2 * gram_inv + signal * np.eye(k)
    data_prec = np.linalg.inv(data_cov)
    prior_prec = settings.prior_weight * np.linalg.inv(prior.covariance)
    rhs = data_prec @ ls[1 : 1 + k] + prior_prec @ prior.mean
    c_vec = scipy.linalg.solve(data_prec + prior_prec, rhs, assume_a="pos")
    others = np.r_[0, 1 + k : a.shape[1]]
    c_other = _lstsq(a[:, others], y - vectors @ c_vec)
    out = np.empty(a.shape[1])
    out[1 : 1 + k], out[others] = c_vec, c_other
    return out


def _goodness(star: _Star, model: np.ndarray) -> tuple[float, float]:
    """Noise added and variability removed by a model (relative flux) on the usable cadences."""
    y = star.y[star.usable]
    corrected = (1.0 + y) / (1.0 + model[star.usable]) - 1.0
    before = ptp(y)
    noise = ptp(corrected) / before - 1.0 if before > 0 else 0.0
    return float(noise), variance_removed(y, corrected, star.window)


def _candidates(star: _Star, prior: Prior | None, settings: FitSettings):
    """The fits in order of preference: (method, number of vectors, columns, coefficients)."""
    full = _lstsq(star.design[star.mask], star.y[star.mask])
    if prior is not None:
        yield "map", star.k, np.arange(star.design.shape[1]), _map(star, full, prior, settings)
    best = _bic_order(star) if settings.bic else star.k
    fewest = 0 if star.design.shape[1] > 1 + star.k else 1  # no vectors, no spikes: "none"
    for n in range(best, fewest - 1, -1):
        columns = star.columns(n)
        yield "ls", n, columns, _lstsq(star.design[star.mask][:, columns], star.y[star.mask])


def _prior_removed(star: _Star, prior: Prior | None) -> float:
    """Variability the prior's mean correction removes (0 without a prior)."""
    if prior is None:
        return 0.0
    model = star.design[:, 1 : 1 + star.k] @ prior.mean
    model = model - np.nanmean(model[star.usable] - star.y[star.usable])
    return _goodness(star, model)[1]


def _problem(noise: float, removed: float, allowed: float, settings: FitSettings) -> str | None:
    """What is wrong with a candidate fit (None: nothing)."""
    if noise > settings.max_noise_added:
        return f"noise added {100 * noise:.1f}% > {100 * settings.max_noise_added:.1f}%"
    if removed > allowed:
        return f"variability removed {removed:.2f} > prior's + {settings.max_extra_removed:.2f}"
    return None


def _none_fit(flux: np.ndarray, median: float, reason: str, n: int, k: int) -> CBVFit:
    model = np.where(np.isfinite(flux), median, np.nan)
    return CBVFit(
        model, np.zeros(0), 0.0, median, "none", 0, np.zeros(n, bool), 0.0, 0.0, reason,
        np.full(k, np.nan),
    )  # fmt: skip


def fit_cbvs(
    flux: np.ndarray,
    cbvs: CBVSet,
    *,
    good: np.ndarray,
    prior: Prior | None = None,
    settings: FitSettings | None = None,
) -> CBVFit:
    """Fit the cotrending basis vectors to one star's raw flux.

    Parameters
    ----------
    flux : ndarray, shape (n,)
        Raw flux [e-/s] on the cadences of ``cbvs``, NaN where missing.
    cbvs : CBVSet
        The vectors of the star's CBV area.
    good : ndarray of bool, shape (n,)
        Cadences usable (quality).
    prior : Prior, optional
        Prior of the single-scale coefficients (a MAP fit); None: least squares.
    settings : FitSettings, optional
        ``[correct.fit]`` (None: the defaults).

    Returns
    -------
    CBVFit
        The fit chosen, or ``method = "none"`` with the reason when there is no fit to make
        or every fit does damage.
    """
    settings = settings if settings is not None else FitSettings()
    flux = np.asarray(flux, dtype=float)
    n, k = flux.size, cbvs.n_vectors
    if prior is not None and len(prior.mean) != k:
        raise ValueError(f"the prior has {len(prior.mean)} coefficients, the CBVs {k} vectors")
    design = np.column_stack([np.ones(n), cbvs.design("all")])
    usable = np.asarray(good, bool) & np.isfinite(flux) & np.all(np.isfinite(design), axis=1)
    median = float(np.median(flux[usable])) if usable.any() else float("nan")
    if not usable.sum() > design.shape[1] + MIN_DOF or not median > 0:
        return _none_fit(flux, median, "too few usable cadences or no positive flux", n, k)
    cadence = cbvs.cadence or float(np.nanmedian(np.diff(cbvs.time)) * 86400.0)
    window = max(1, int(round(settings.variability_window * 3600.0 / cadence)))
    star = _Star(flux / median - 1.0, design, usable, usable.copy(), k, window)
    _clip(star, settings)
    ls_all = _lstsq(star.design[star.mask], star.y[star.mask])[1 : 1 + k]
    # A prior whose mean correction adds variability (a poor prior for this star) allows no
    # less than a prior that removes none.
    allowed = (
        max(_prior_removed(star, prior), 0.0) + settings.max_extra_removed if prior else np.inf
    )
    reasons = []
    for method, n_vectors, columns, coeffs in _candidates(star, prior, settings):
        model = star.design[:, columns] @ coeffs
        noise, removed = _goodness(star, model)
        problem = _problem(noise, removed, allowed, settings)
        if problem is None:
            return CBVFit(
                median * (1.0 + model) * np.where(np.isfinite(flux), 1.0, np.nan),
                coeffs[1:], float(coeffs[0]), median, method, n_vectors,
                star.usable & ~star.mask, noise, removed,
                "; ".join(reasons) or None, ls_all,
            )  # fmt: skip
        reasons.append(f"{method} with {n_vectors} vectors: {problem}")
    fallback = _none_fit(flux, median, "; ".join(reasons) or "no vector chosen (BIC)", n, k)
    fallback.ls_coefficients = ls_all
    return fallback


def corrected_ppm(
    flux: np.ndarray, model: np.ndarray, flux_err: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Relative corrected flux in ppm, ``1e6 * (flux / model - 1)``, and its error.

    Parameters
    ----------
    flux : ndarray
        Raw flux [e-/s].
    model : ndarray
        Model of the systematics, :attr:`CBVFit.model` [e-/s].
    flux_err : ndarray, optional
        Error of the raw flux [e-/s].

    Returns
    -------
    ppm : ndarray
        ``FLUX_CORR`` [ppm].
    ppm_err : ndarray or None
        ``FLUX_CORR_ERR`` [ppm], ``1e6 * flux_err / model`` (None without ``flux_err``).
    """
    flux, model = np.asarray(flux, dtype=float), np.asarray(model, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        ppm = PPM * (flux / model - 1.0)
        err = None if flux_err is None else PPM * np.asarray(flux_err, dtype=float) / model
    return ppm, err
