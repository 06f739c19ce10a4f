"""A simulated target's light curve on the truth's good cadences, as the sector scoring reads it.

``FLUX_RAW``, ``FLUX_BKG`` and ``FLUX_CORR`` on the truth's good cadences (quality 0) where
the flux is finite, with the other stars' true variable light in an aperture's mask taken
out of the flux (:mod:`~tessphot.evaluation.scoring.neighbour_light`) and kept beside it.
"""

from __future__ import annotations

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
    )
