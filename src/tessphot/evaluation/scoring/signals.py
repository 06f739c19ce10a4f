"""How much of an injected signal a light curve holds, for a signal of any kind.

:func:`signal_recovery` regresses the relative light curve on the true relative signal plus a
slow trend; :func:`sinusoid_amplitude` fits a sinusoid of known period.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Least number of good cadences for a score.
MIN_CADENCES = 10
#: A sinusoid counts for the amplitude score when its amplitude is this many times the error
#: of the fitted amplitude (measured to 1 %: see :mod:`tessphot.evaluation.scoring.photometry`).
AMPLITUDE_MIN_SNR = 100.0
#: Degree of the polynomial in time fitted with the true signal by :func:`signal_recovery`
#: (slow trends of the light curve, e.g. scattered light left over).
TREND_DEGREE = 2


def sinusoid_amplitude(t: np.ndarray, y: np.ndarray, period: float) -> tuple[float, float]:
    """Amplitude of a sinusoid of known period (plus offset and linear trend) and its error.

    Parameters
    ----------
    t : numpy.ndarray
        Times [d].
    y : numpy.ndarray
        Relative flux at those times.
    period : float
        Period of the sinusoid [d].

    Returns
    -------
    amplitude, error : float
        The fitted semi-amplitude and its 1-sigma error (from the fit's residuals).
    """
    phase = 2 * np.pi * t / period
    design = np.column_stack([np.sin(phase), np.cos(phase), np.ones_like(t), t - t.mean()])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    dof = max(len(t) - design.shape[1], 1)
    sigma = float(np.sqrt(np.sum(resid**2) / dof))
    cov = np.linalg.pinv(design.T @ design) * sigma**2
    amplitude = float(np.hypot(coef[0], coef[1]))
    error = float(np.sqrt(max((cov[0, 0] + cov[1, 1]) / 2, 0.0)))
    return amplitude, error


def amplitude_ratio(
    t: np.ndarray,
    flux: np.ndarray,
    true_flux: np.ndarray,
    period: float,
    contamination: float,
    *,
    min_snr: float = AMPLITUDE_MIN_SNR,
) -> float:
    """Recovered over true amplitude of a sinusoid of known period.

    A sinusoid is fitted to the relative light curve ``flux / median - 1``, divided by
    ``1 - contamination`` (the dilution by other stars' light), and compared with the same
    fit to the true relative flux.

    Parameters
    ----------
    t : numpy.ndarray
        Times [d].
    flux, true_flux : numpy.ndarray
        Measured and true flux at those times (any units).
    period : float
        The sinusoid's period [d].
    contamination : float
        Fraction of the measured flux from other stars (0-1).
    min_snr : float
        Least ratio of the fitted amplitude to its error.

    Returns
    -------
    float
        NaN when the contamination is not below 1 or the amplitude is measured with less
        than ``min_snr``.
    """
    if not (math.isfinite(contamination) and contamination < 1):
        return math.nan
    median = float(np.median(flux))
    mean_true = float(np.mean(true_flux))
    if not (median > 0 and mean_true > 0):
        return math.nan
    a_true, _ = sinusoid_amplitude(t, true_flux / mean_true - 1, period)
    a_meas, a_err = sinusoid_amplitude(t, flux / median - 1, period)
    if not (a_true > 0 and a_err > 0 and a_true / a_err >= min_snr):
        return math.nan
    return a_meas / (1 - contamination) / a_true


@dataclass(frozen=True)
class SignalRecovery:
    """How much of an injected signal a light curve holds (:func:`signal_recovery`)."""

    #: Fitted scale of the true relative signal in the relative light curve.
    scale: float
    #: Its error (1 sigma, from the scatter of the fit's residuals).
    scale_error: float
    #: ``scale / (1 - contamination)``: 1 when the whole signal is recovered.
    fraction: float
    #: Error of :attr:`fraction`.
    fraction_error: float


def signal_recovery(
    t: np.ndarray,
    flux: np.ndarray,
    true_flux: np.ndarray,
    contamination: float = 0.0,
    degree: int = TREND_DEGREE,
) -> SignalRecovery:
    """Fraction of the true signal recovered in a light curve, for a signal of any kind.

    The measured relative flux ``flux / median(flux) - 1`` is fitted by least squares with
    ``s (F_t / mean(F_t) - 1)`` plus a polynomial of degree ``degree`` in time (slow
    trends of the light curve). An aperture that holds light of other stars dilutes the
    signal by ``1 - contamination`` (the pipeline's estimate), so the recovered fraction is
    ``s / (1 - contamination)``.

    Parameters
    ----------
    t : numpy.ndarray
        Times of the cadences to use (good cadences only) [d].
    flux : numpy.ndarray
        Measured flux at those times (any unit).
    true_flux : numpy.ndarray
        The star's true flux at those times (any unit).
    contamination : float
        Fraction of the measured flux from other stars (0-1).
    degree : int
        Degree of the polynomial in time.

    Returns
    -------
    SignalRecovery
        NaN everywhere when fewer than :data:`MIN_CADENCES` cadences are finite, the median
        flux is not positive or the true flux is constant; NaN fractions when the
        contamination is not in [0, 1).
    """
    t = np.asarray(t, dtype=float)
    flux = np.asarray(flux, dtype=float)
    true_flux = np.asarray(true_flux, dtype=float)
    finite = np.isfinite(t) & np.isfinite(flux) & np.isfinite(true_flux)
    t, flux, true_flux = t[finite], flux[finite], true_flux[finite]
    nothing = SignalRecovery(math.nan, math.nan, math.nan, math.nan)
    if t.size < max(MIN_CADENCES, degree + 3):
        return nothing
    median = float(np.median(flux))
    mean_true = float(np.mean(true_flux))
    if not (median > 0 and mean_true > 0):
        return nothing
    signal = true_flux / mean_true - 1
    if not np.ptp(signal) > 0:
        return nothing
    span = max(float(np.ptp(t)), np.finfo(float).tiny)
    x = 2 * (t - t.min()) / span - 1  # time on [-1, 1]: a well-conditioned trend
    design = np.column_stack([signal, np.polynomial.legendre.legvander(x, degree)])
    y = flux / median - 1
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    dof = max(t.size - design.shape[1], 1)
    sigma2 = float(np.sum(resid**2) / dof)
    cov = np.linalg.pinv(design.T @ design) * sigma2
    scale = float(coef[0])
    error = float(np.sqrt(max(cov[0, 0], 0.0)))
    if not (math.isfinite(contamination) and 0 <= contamination < 1):
        return SignalRecovery(scale, error, math.nan, math.nan)
    dilution = 1 - contamination
    return SignalRecovery(scale, error, scale / dilution, error / dilution)
