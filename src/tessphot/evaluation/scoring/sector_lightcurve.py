"""A simulated target's light curve on the truth's good cadences, as the sector scoring reads it.

``FLUX_RAW``, ``FLUX_BKG`` and ``FLUX_CORR`` on the truth's good cadences (quality 0) where
the flux is finite, with the other stars' true variable light in an aperture's mask taken
out of the flux (:mod:`~tessphot.evaluation.scoring.neighbour_light`) and kept beside it;
its residual against the true signal (:func:`residual`), and a residual less its fit by the
star's true motion (:func:`without_motion`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from tessphot.evaluation.scoring.sector_truth import Truth
from tessphot.evaluation.scoring.systematics import photometric_pixels


def read_lightcurve(path: Path) -> tuple:
    """CADENCENO, FLUX_RAW, FLUX_BKG and FLUX_CORR of a light curve, its method and mask.

    The mask: the science rows and columns of its photometric pixels.
    """
    with fits.open(path, memmap=False) as hdul:
        data = hdul["LIGHTCURVE"].data
        return (
            np.asarray(data["CADENCENO"]).astype(np.int64),
            np.asarray(data["FLUX_RAW"], dtype=float),
            np.asarray(data["FLUX_BKG"], dtype=float),
            np.asarray(data["FLUX_CORR"], dtype=float),
            str(hdul[0].header.get("PHOTMET", "")),
            photometric_pixels(hdul["APERTURE"]),
        )


def neighbour_light(truth: Truth, i: int, method: str, mask: tuple) -> np.ndarray:
    """The other stars' true variable light in an aperture's mask, per truth cadence.

    ``mask`` holds the science rows and columns of the photometric mask. Zero for the PSF
    methods, which fit their neighbours, and without the truth's neighbours.
    """
    if truth.neighbours is None or method != "aperture":
        return np.zeros(truth.tmid.size)
    return truth.neighbours.in_aperture(*mask, exclude=int(truth.starid[i]))


@dataclass
class MeasuredLightCurve:
    """A target's light curve on the truth's good cadences with a finite flux."""

    #: The truth's good cadences and how many of them the light curve has a finite flux on.
    n_good: int
    n_finite: int
    #: Indices of those cadences in the truth.
    cadences: np.ndarray
    #: FLUX_RAW with the neighbours' true variable light (``neighbours``) taken out.
    flux: np.ndarray
    neighbours: np.ndarray
    background: np.ndarray
    #: ``FLUX_CORR`` [ppm] (NaN before the corrections; never finite where the flux is not).
    corrected: np.ndarray
    #: Science rows and columns of the photometric mask's pixels.
    mask: tuple[np.ndarray, np.ndarray]


def measured_lightcurve(truth: Truth, i: int, path: Path) -> MeasuredLightCurve:
    """The light curve of target ``i`` on the good cadences with a finite flux.

    Parameters
    ----------
    truth : Truth
        The truth of the targets (with :attr:`Truth.neighbours`, the neighbours' variable
        light is taken out of an aperture's flux).
    i : int
        The target's index in ``truth``.
    path : pathlib.Path
        Its light curve.

    Returns
    -------
    MeasuredLightCurve
    """
    cadenceno, flux, flux_bkg, corrected, method, mask = read_lightcurve(path)
    lookup = {int(c): k for k, c in enumerate(truth.ffiindex)}
    k = np.array([lookup.get(int(c), -1) for c in cadenceno], dtype=int)
    on_truth = k >= 0
    good = on_truth.copy()
    good[on_truth] = truth.good[k[on_truth]]
    use = good & np.isfinite(flux)
    neighbours = neighbour_light(truth, i, method, mask)[k[use]]
    return MeasuredLightCurve(
        n_good=int(truth.good.sum()),
        n_finite=int(use.sum()),
        cadences=k[use],
        flux=flux[use] - neighbours,
        neighbours=neighbours,
        background=flux_bkg[use],
        corrected=corrected[use],
        mask=mask,
    )


def residual(
    flux: np.ndarray,
    true_flux: np.ndarray,
    contamination: float,
    *,
    systematics: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Measured flux minus the fitted true signal, relative to the target's light.

    Parameters
    ----------
    flux : numpy.ndarray
        Measured flux on the cadences to score (finite).
    true_flux : numpy.ndarray
        The star's true flux on them.
    contamination : float
        The pipeline's fraction of the measured flux from other stars (ignored unless in
        [0, 1)).
    systematics : numpy.ndarray, optional
        (cadence, n) further shapes fitted with free scales: the simulated systematics'
        (:meth:`~tessphot.evaluation.scoring.systematics.TargetSystematics.raw_columns`).

    Returns
    -------
    relative : numpy.ndarray
        ``(flux - a (F_t - mean F_t) - b [- systematics @ c]) / L`` with ``a, b (, c)``
        fitted by least squares and ``L = median(flux) (1 - contamination)``.
    target : float
        ``L`` (NaN, and NaN residuals, when the median flux is not positive).
    """
    flux = np.asarray(flux, dtype=float)
    centred = np.asarray(true_flux, dtype=float) - np.mean(true_flux)
    design = np.column_stack([centred, np.ones_like(centred)])
    if systematics is not None:
        design = np.column_stack([design, systematics])
    coef, *_ = np.linalg.lstsq(design, flux, rcond=None)
    median = float(np.median(flux))
    dilution = 1 - contamination if math.isfinite(contamination) and 0 <= contamination < 1 else 1
    target = median * dilution
    if not target > 0:
        return np.full(flux.size, math.nan), math.nan
    return (flux - design @ coef) / target, target


def without_motion(y: np.ndarray, drow: np.ndarray, dcol: np.ndarray) -> np.ndarray:
    """A residual less its fit by the star's true motion (a quadratic in row and column).

    Parameters
    ----------
    y : numpy.ndarray
        Residual per cadence (NaN where unknown).
    drow, dcol : numpy.ndarray
        The star's true position minus its mean per cadence [px].

    Returns
    -------
    numpy.ndarray
        ``y`` minus the least-squares fit of ``1, dr, dc, dr^2, dc^2, dr dc``, scaled by
        ``sqrt(n / (n - 6))`` so that white noise keeps its rms; NaN where ``y`` is.
    """
    out = np.full(y.shape, math.nan)
    use = np.isfinite(y) & np.isfinite(drow) & np.isfinite(dcol)
    r, c = drow[use], dcol[use]
    design = np.column_stack([np.ones_like(r), r, c, r * r, c * c, r * c])
    if use.sum() <= 2 * design.shape[1]:
        return out
    coef, *_ = np.linalg.lstsq(design, y[use], rcond=None)
    n, p = design.shape
    out[use] = (y[use] - design @ coef) * math.sqrt(n / (n - p))
    return out
