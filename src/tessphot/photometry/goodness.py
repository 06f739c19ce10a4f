"""The goodness of a PRF fit: its chi-square against its expectation, per target (``PRFCHI2``).

Linear PSF and PSF photometry fit the pixels of their fit region on every cadence with the
PRF images of the stars (and a local background), weighted by the pixels' uncertainties.
Where the PRF, the positions and the noise describe the data, each cadence's weighted sum
of squared residuals follows a chi-square distribution with as many degrees of freedom as
pixels used minus parameters fitted; where the PRF does not describe the target (a wrong
width or shape, wings or a halo the model lacks), the residuals carry the difference and
the chi-square grows with the star's signal to noise.

What is computed, per cadence ``t`` of the fit that gives every parameter its value on that
cadence (linear PSF photometry's first pass, every flux and the background free; PSF
photometry's flux fit at the fitted positions, the per-cadence offsets included):

``chi2_t = sum_p (d_tp - m_tp)^2 / sigma_tp^2`` over the pixels ``p`` used on that cadence,
``d`` the pixels with the fixed stars subtracted, ``m`` the fitted model, ``sigma`` the
pixels' uncertainties the fit is weighted with (the prepared ``images_err``: SPOC's
calibrated uncertainties, which hold the photon noise of each pixel's light, the target's
own shot noise included, the read noise, and the prepared background's uncertainty; the
simulator's hold the same from the true light). ``dof_t`` = pixels used minus parameters
fitted on that cadence (the offsets PSF photometry fits over the whole data cost a handful
of degrees of freedom of thousands: left out).

Over the good cadences (quality without the flags that exclude a cadence) with
``dof_t > 0``:

- ``PRFCHI2``: the median of ``chi2_t / dof_t`` (robust to a few cadences hit by a cosmic
  ray or a momentum dump): the target's reduced chi-square, about 1 when the PRF describes
  it (its spread over the cadences is ``sqrt(2 / dof_t)``);
- ``PRFCHI2T``: ``sum chi2_t / sum dof_t``, the whole fit's reduced chi-square;
- ``PRFDOF``: the median ``dof_t``.

The first and the last also go into the task list's diagnostics (``prf_chi2``). Halo
photometry fits no PRF (its weights minimise the light curve's total variation), aperture
photometry neither: they have no such cards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Header comment of ``PRFCHI2``.
PRFCHI2_COMMENT = "reduced chi2 of the PRF fit (expected ~1)"


def residual_chi2(
    design: np.ndarray, data: np.ndarray, variance: np.ndarray, coef: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Chi-square and degrees of freedom of a batch of fitted linear problems.

    Parameters
    ----------
    design : ndarray, shape (n, k, p)
        ``k`` model images over ``p`` pixels per problem.
    data : ndarray, shape (n, p)
        The data fitted (NaN pixels are left out).
    variance : ndarray, shape (n, p)
        Variance of each pixel; non-finite or non-positive: left out.
    coef : ndarray, shape (n, k)
        The fitted coefficients (NaN: no fit, chi-square NaN).

    Returns
    -------
    chi2 : ndarray, shape (n,)
        Weighted sum of the squared residuals over the pixels used.
    dof : ndarray of int, shape (n,)
        Pixels used minus ``k``.
    """
    ok = np.isfinite(data) & np.isfinite(variance) & (variance > 0)
    model = np.einsum("nkp,nk->np", design, np.nan_to_num(coef))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(ok, (data - model) ** 2 / variance, 0.0)
    chi2 = terms.sum(axis=1)
    chi2[~np.all(np.isfinite(coef), axis=1)] = np.nan
    return chi2, ok.sum(axis=1) - design.shape[1]


@dataclass(frozen=True)
class PRFGoodness:
    """How well a PRF fit describes its target (see the module notes)."""

    #: Median over the good cadences of the reduced chi-square (``PRFCHI2``).
    reduced: float
    #: Sum of the chi-squares over the sum of the degrees of freedom (``PRFCHI2T``).
    total: float
    #: Median degrees of freedom per cadence (``PRFDOF``).
    dof: float
    #: Good cadences counted.
    cadences: int

    def header_cards(self) -> dict[str, tuple[Any, str]]:
        """The light curve's cards ``PRFCHI2``, ``PRFCHI2T`` and ``PRFDOF``."""
        return {
            "PRFCHI2": (self.reduced, PRFCHI2_COMMENT),
            "PRFCHI2T": (self.total, "sum of chi2 over sum of dof, good cadences"),
            "PRFDOF": (self.dof, "degrees of freedom of the PRF fit per cadence"),
        }


class FitChi2:
    """The chi-square and degrees of freedom of a fit, cadence by cadence.

    Parameters
    ----------
    n : int
        Number of cadences.
    """

    def __init__(self, n: int) -> None:
        self.chi2 = np.full(n, np.nan)
        self.dof = np.zeros(n, dtype=int)

    def record(self, use: np.ndarray, chi2: np.ndarray, dof: np.ndarray) -> None:
        """Keep the chi-square and degrees of freedom of the cadences ``use``."""
        self.chi2[use] = chi2
        self.dof[use] = dof

    def summary(self, good: np.ndarray) -> PRFGoodness:
        """The target's figures over the good cadences (NaN without any)."""
        use = good & np.isfinite(self.chi2) & (self.dof > 0)
        if not use.any():
            return PRFGoodness(math.nan, math.nan, math.nan, 0)
        chi2, dof = self.chi2[use], self.dof[use]
        return PRFGoodness(
            reduced=float(np.median(chi2 / dof)),
            total=float(chi2.sum() / dof.sum()),
            dof=float(np.median(dof)),
            cadences=int(use.sum()),
        )
