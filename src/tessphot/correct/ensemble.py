"""The ensemble corrector: a star divided by a robust ensemble of quiet neighbours.

TASOC's alternative to the CBVs for 30-min FFI data. For one target:

1. the candidates are the other stars of its group (sector, camera, CCD, cadence), nearest
   first on the CCD, at most ``candidates`` of them;
2. each candidate's flux is normalised by its median and divided by the median of all
   candidates (which holds the common trends); it joins the ensemble when what is left is
   quiet and smooth: its robust scatter is at most ``quiet`` times its
   point-to-point scatter (white noise gives 1, a variable star much more) and its range
   (1st to 99th percentile) is at most ``max_range``; at most ``members``
   are kept, the nearest first;
3. the ensemble is the members' normalised fluxes averaged with weights of one over their
   noise squared, members off a first such mean by more than 5 of their sigmas left out at
   each cadence (:func:`weighted_ensemble`; a plain median of mostly faint members carries their
   noise into bright targets);
4. it is scaled to the target: ``model = median(flux) (1 + a (E - 1))`` with ``a`` (0-2)
   fitted by least squares with outliers clipped (TASOC minimised the point-to-point
   scatter, which hardly depends on the scale of a slow trend).

A target with fewer than ``min_members`` members is not corrected (method ``none``, its
reason kept; its model is its median, so that ``FLUX_CORR`` is its relative raw flux).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tessphot.correct.stats import robust_std
from tessphot.lightcurve.diagnostics import MAD_TO_SIGMA, ptp

#: Largest scale of the ensemble.
MAX_SCALE = 2.0
#: Outlier clipping of the scale's fit: iterations, and the cut [robust sigma].
CLIP_ITERATIONS = 3
CLIP_SIGMA = 5.0


@dataclass
class EnsembleFit:
    """The ensemble model of one light curve."""

    #: (n_cadences,) model flux [e-/s] (NaN where undefined).
    model: np.ndarray
    #: ``"ensemble"``, or ``"none"`` when not corrected.
    method: str
    #: Members of the ensemble (TIC numbers).
    members: list[int] = field(default_factory=list)
    #: The ensemble's scale ``a``.
    scale: float = math.nan
    #: Point-to-point scatter of the corrected over the raw relative flux, minus one.
    noise_added: float = math.nan
    #: Why the light curve was not corrected.
    reason: str = ""

    def header_cards(self) -> list[tuple[str, Any, str]]:
        """The corrector's header cards."""
        return [
            ("ENS_NUM", len(self.members), "number of stars in the ensemble"),
            ("ENS_SCAL", _card_float(self.scale), "scale of the ensemble"),
        ]


def _card_float(value: float) -> float | str:
    return float(value) if math.isfinite(value) else "NaN"


def point_to_point(values: np.ndarray) -> float:
    """Point-to-point scatter of a series as a white-noise sigma (NaN ignored)."""
    return ptp(values) * MAD_TO_SIGMA / math.sqrt(2)


def normalised(flux: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Flux over its median on the good cadences (NaN on the others)."""
    values = np.where(good, flux, np.nan)
    median = np.nanmedian(values) if np.isfinite(values).any() else math.nan
    if not (math.isfinite(median) and median > 0):
        return np.full(flux.shape, np.nan)
    return values / median


def quiet_candidates(norm: np.ndarray, *, quiet: float, max_range: float) -> np.ndarray:
    """Which stars (rows of normalised fluxes) are quiet and smooth enough to be members.

    Each star is divided by the median of all (a first ensemble, which holds the common
    trends): what is left of a quiet star is white noise, whose robust scatter equals its
    point-to-point scatter.
    """
    ok = np.zeros(norm.shape[0], dtype=bool)
    if norm.shape[0] == 0:
        return ok
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        first = np.nanmedian(norm, axis=0)
        residual = norm / first
    for j, values in enumerate(residual):
        finite = values[np.isfinite(values)]
        if finite.size < 3:
            continue
        noise = point_to_point(finite)
        spread = np.percentile(finite, 99) - np.percentile(finite, 1)
        ok[j] = (
            math.isfinite(noise)
            and noise > 0
            and robust_std(finite) <= quiet * noise
            and spread <= max_range
        )
    return ok


def weighted_ensemble(members: np.ndarray) -> np.ndarray:
    """The members' mean weighted by one over their noise squared, outliers left out.

    A plain median of mostly faint members would carry their noise into bright targets.
    Each member's noise is its point-to-point scatter; at every cadence the members further
    than :data:`CLIP_SIGMA` of their noise from a first weighted mean are left out.
    """
    noise = np.array([point_to_point(m) for m in members])
    weights = np.where(np.isfinite(noise) & (noise > 0), 1.0 / noise**2, 0.0)
    finite = np.isfinite(members)
    values = np.nan_to_num(members)
    use = finite
    ensemble = np.full(members.shape[1], np.nan)
    for _ in range(2):  # the weighted mean, then again without the outliers off it
        w = np.where(use, weights[:, None], 0.0)
        total = w.sum(axis=0)
        with np.errstate(all="ignore"):
            ensemble = np.where(total > 0, (w * values).sum(axis=0) / total, np.nan)
            use = finite & (np.abs(values - ensemble) <= CLIP_SIGMA * noise[:, None])
    return ensemble


def _scale(target: np.ndarray, ensemble: np.ndarray) -> float:
    """Least-squares scale of the ensemble's variations in the target (outliers clipped)."""
    use = np.isfinite(target) & np.isfinite(ensemble)
    scale = 1.0
    for _ in range(CLIP_ITERATIONS):
        if use.sum() < 3:
            break
        design = np.column_stack([np.ones(use.sum()), ensemble[use] - 1])
        (offset, scale), *_ = np.linalg.lstsq(design, target[use], rcond=None)
        residual = target - offset - scale * (ensemble - 1)
        sigma = float(robust_std(residual[use]))
        if not sigma > 0:
            break
        use &= np.abs(residual) <= CLIP_SIGMA * sigma
    return float(np.clip(scale, 0.0, MAX_SCALE))


def fit_ensemble(
    flux: np.ndarray,
    others: np.ndarray,
    *,
    good: np.ndarray,
    distances: np.ndarray,
    starids: np.ndarray,
    settings: Any,
) -> EnsembleFit:
    """The ensemble model of one light curve.

    Parameters
    ----------
    flux : ndarray, shape (n_cadences,)
        The target's raw flux [e-/s].
    others : ndarray, shape (n_stars, n_cadences)
        The other stars' raw flux [e-/s].
    good : ndarray of bool, shape (n_cadences,)
        Cadences to use.
    distances : ndarray, shape (n_stars,)
        The other stars' distance from the target on the CCD [px].
    starids : ndarray of int, shape (n_stars,)
        Their TIC numbers.
    settings : CorrectSettings
        ``candidates``, ``members``, ``min_members``,
        ``quiet``, ``max_range``.

    Returns
    -------
    EnsembleFit
    """
    good = good & np.isfinite(flux)
    target = normalised(flux, good)
    median = np.nanmedian(np.where(good, flux, np.nan)) if good.any() else math.nan
    if not (math.isfinite(median) and median > 0):
        return EnsembleFit(
            model=np.full(flux.shape, np.nan),
            method="none",
            reason="no positive flux on the good cadences",
        )
    # Not corrected: the model is the median, FLUX_CORR the relative raw flux.
    none = EnsembleFit(model=np.full(flux.shape, median), method="none")
    order = np.argsort(np.where(np.isfinite(distances), distances, np.inf), kind="stable")
    order = order[: settings.candidates]
    norm = np.array([normalised(others[j], good) for j in order]).reshape(len(order), -1)
    accepted = order[quiet_candidates(norm, quiet=settings.quiet, max_range=settings.max_range)][
        : settings.members
    ]
    if accepted.size < settings.min_members:
        none.reason = (
            f"{accepted.size} quiet neighbour(s) for the ensemble, at least "
            f"{settings.min_members} needed"
        )
        return none
    members = np.array([normalised(others[j], good) for j in accepted])
    ensemble = weighted_ensemble(members)

    scale = _scale(target, ensemble)
    model = median * (1 + scale * (ensemble - 1))
    before = point_to_point(target)
    after = point_to_point(target / (1 + scale * (ensemble - 1)))
    return EnsembleFit(
        model=model,
        method="ensemble",
        members=[int(s) for s in starids[accepted]],
        scale=scale,
        noise_added=after / before - 1 if before > 0 else math.nan,
    )
