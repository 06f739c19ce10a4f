"""Corrected relative flux (``FLUX_CORR``, ppm) scored against the intrinsic signal.

A corrector (e.g. cotrending with CBVs) turns the raw flux into ``1e6 (flux / model - 1)``:
the star's relative signal without the systematics. On a simulation with systematics
(:mod:`tessphot.evaluation.simulate.systematics`) it is compared with the truth's intrinsic
relative signal (:meth:`~tessphot.evaluation.scoring.sector_truth.Truth.intrinsic_signal`):

* **Residual**: ``corrected - dilution x intrinsic`` [ppm], less its mean (the zero point is
  the corrector's); its robust rms on 1 hour (every bin scaled to a full one,
  :func:`~tessphot.evaluation.scoring.optimal.full_bin_rms`) and on one cadence.
* **Signal kept**: the corrected flux regressed on the intrinsic signal (plus a constant),
  over ``dilution``; 1 when the signal is kept whole, below 1 when the corrector removed
  part of it (NaN for a constant star).
* **Systematics left**: the residual regressed on the two shapes of the systematics
  (``m(t)`` and the additive light's ``g(t)``, plus a constant): the coefficient of ``m``
  is the fraction of the multiplicative systematics left (0 removed, 1 untouched: a raw
  relative flux holds ``m`` once), and the rms of the fitted ``g`` term the light left with
  the additive systematic's time profile [ppm] (the additive light, and anything else that
  rises towards the orbits' ends, e.g. background errors under the scattered light). NaN
  without simulated systematics.

``dilution`` is the fraction of the corrected flux's reference level that is the target's
own light: 1 when the corrector removed the neighbours' light (the default), ``1 -
contamination`` when it did not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tessphot.evaluation.scoring.optimal import full_bin_rms
from tessphot.evaluation.scoring.sector_truth import Truth
from tessphot.evaluation.scoring.signals import MIN_CADENCES
from tessphot.lightcurve.diagnostics import HOUR_SECONDS, rms_timescale

#: Parts per million.
PPM = 1e6
#: Seconds per day.
DAY_SECONDS = 86400.0
#: Least variance of the intrinsic signal for the signal kept to be measured (relative^2).
MIN_SIGNAL_VARIANCE = 1e-14


@dataclass
class CorrectedScore:
    """The score of a corrected relative flux against the intrinsic signal."""

    #: Indices of the truth's cadences scored, and the residual on them [ppm].
    cadences: np.ndarray
    residual_ppm: np.ndarray
    #: Robust rms of the residual on 1 hour (full bins) and per cadence [ppm].
    rms_hour_ppm: float = math.nan
    rms_cadence_ppm: float = math.nan
    #: Fraction of the intrinsic signal kept (NaN for a constant star).
    signal_kept: float = math.nan
    #: Fraction of the multiplicative systematics left; rms of the residual's ``g`` term [ppm].
    multiplicative_left: float = math.nan
    additive_left_ppm: float = math.nan


def score_corrected_flux(
    truth: Truth,
    i: int,
    cadences: np.ndarray,
    corrected_ppm: np.ndarray,
    *,
    dilution: float = 1.0,
) -> CorrectedScore:
    """Score a corrected relative flux of target ``i`` against its intrinsic signal.

    Parameters
    ----------
    truth : Truth
        The truth of the targets (:func:`~tessphot.evaluation.scoring.sector_truth.read_truth`).
    i : int
        The target's index in ``truth``.
    cadences : numpy.ndarray
        Indices into the truth's cadences of the values of ``corrected_ppm``.
    corrected_ppm : numpy.ndarray
        The corrected flux, ``1e6 (flux / model - 1)`` [ppm] (NaN are left out).
    dilution : float
        Fraction of the reference level that is the target's light (module docstring).

    Returns
    -------
    CorrectedScore
        Empty (NaN) with fewer than ``MIN_CADENCES`` finite values.
    """
    cadences = np.asarray(cadences, dtype=int)
    corrected = np.asarray(corrected_ppm, dtype=float) / PPM
    use = np.isfinite(corrected)
    cadences, corrected = cadences[use], corrected[use]
    if cadences.size < MIN_CADENCES:
        return CorrectedScore(cadences, np.full(cadences.size, math.nan))
    intrinsic = truth.intrinsic_signal(i)[cadences]
    residual = corrected - dilution * intrinsic
    residual -= residual.mean()
    t = truth.tmid[cadences]
    hour, cadence = HOUR_SECONDS / DAY_SECONDS, truth.cadence / DAY_SECONDS
    score = CorrectedScore(
        cadences,
        residual * PPM,
        rms_hour_ppm=full_bin_rms(t, residual, hour, cadence) * PPM,
        rms_cadence_ppm=rms_timescale(t, residual, cadence) * PPM,
    )
    ones = np.ones(cadences.size)
    if np.var(intrinsic) > MIN_SIGNAL_VARIANCE:
        coef, *_ = np.linalg.lstsq(np.column_stack([intrinsic, ones]), corrected, rcond=None)
        score.signal_kept = float(coef[0] / dilution)
    if truth.systematics is not None:
        shapes = truth.systematics.raw_columns(i, cadences)
        design = np.column_stack([shapes, ones])
        coef, *_ = np.linalg.lstsq(design, residual, rcond=None)
        score.multiplicative_left = float(coef[0])
        score.additive_left_ppm = float(np.std(coef[1] * shapes[:, 1]) * PPM)
    return score
