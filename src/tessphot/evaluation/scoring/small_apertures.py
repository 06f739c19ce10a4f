"""Variable stars whose aperture is under half their S/N-optimal one, measured against it.

Issue 14 asks that no variable star get an aperture under half its optimal size unless that
aperture is measured better against the truth. For each such star the S/N-optimal aperture
of the star alone (:meth:`~tessphot.evaluation.scoring.sector_truth.Truth.optimal_aperture`,
among the data's pixels) is summed on the prepared images (background subtracted) on the
cadences of the pipeline's light curve, and scored as that light curve is: the 1-hour rms
of ``flux - true signal`` relative to the target's light, with the other stars' true
variable light taken out and left in. In place of the pipeline's motion correction, the
residual is decorrelated against the star's *true* motion
(:func:`~tessphot.evaluation.scoring.sector_lightcurve.without_motion`, fitted on the
residual without the neighbours' variable light and taken out of both): the comparison
aperture gets an ideal correction of its motion, so the pipeline's aperture is held to a
high bar, but not of its neighbours' variability (on 120 cadences, a fit of the motion on
the left-in residual took out most of a variable neighbour's slow light).

The comparison aperture leaves out the pixels another target is centred on and outshines
(:meth:`~tessphot.evaluation.scoring.sector_truth.Truth.yielded_pixels`): an aperture
holding one would cost that target, or this one, its light curve (a star centred in
another's aperture is SKIPPED), and the pipeline leaves such pixels to their star.

"Measured better" compares the light curves as a user has them, the neighbours' light left
in: keeping a variable neighbour's light out is what a small aperture is for. A
neighbour's eclipse or transit lasts a few of the sector's ~500 hours, which the robust
rms does not see and the standard deviation does; and on ~500 hours either estimate of one
star's noise errs by a few per cent. The check therefore compares the two light curves
hour by hour (:func:`~tessphot.evaluation.scoring.optimal.paired_excess`): a star is
measured worse when its light curve's 1-hour variance exceeds the optimal sum's by more
than :data:`WORSE_SIGMA` standard errors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tessphot.evaluation.scoring.optimal import full_bin_rms, full_bin_std, paired_excess
from tessphot.evaluation.scoring.sector_lightcurve import residual, without_motion
from tessphot.evaluation.scoring.sector_truth import Truth
from tessphot.lightcurve.diagnostics import HOUR_SECONDS
from tessphot.lightcurve.format import SECONDS_PER_DAY
from tessphot.prepare.cube import PreparedCube, hdf5_name

#: A light curve is measured worse than the optimal aperture's sum when its 1-hour variance
#: exceeds the sum's by more than this many standard errors (two-sided 95 %).
WORSE_SIGMA = 2.0


def cube_cadences(cube: PreparedCube, truth: Truth) -> np.ndarray:
    """The prepared cube's index of each of the truth's cadences (-1: not in the cube)."""
    lookup = {int(c): k for k, c in enumerate(cube.array("cadenceno"))}
    return np.array([lookup.get(int(c), -1) for c in truth.ffiindex], dtype=int)


def optimal_sum(
    cube: PreparedCube, truth: Truth, i: int, cadences: np.ndarray, in_cube: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
    """The plain sum of target ``i``'s S/N-optimal aperture on the prepared images.

    Among the pixels no other target is centred on and outshines (see the module).

    Parameters
    ----------
    cube : PreparedCube
        The prepared data of the simulated sector.
    truth : Truth
        The truth of the targets.
    i : int
        The target's index in ``truth``.
    cadences : numpy.ndarray
        Indices of the truth's cadences to sum (those of the pipeline's light curve).
    in_cube : numpy.ndarray
        The cube's index of every truth cadence (:func:`cube_cadences`).

    Returns
    -------
    tuple or None
        ``(flux, rows, cols, light)``: the sum on those cadences [e-/s] (NaN where the
        data have no cadence or a pixel is not finite), the aperture's science rows and
        columns, and the target's true light in it [e-/s]; None without an aperture.
    """
    optimal = truth.optimal_aperture(i, yielding=True)
    if optimal is None:
        return None
    best, stamp_rows, stamp_cols = optimal
    rows, cols = stamp_rows[best.mask], stamp_cols[best.mask]
    box = (int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1)
    images = cube.block("images", 0, cube.n_cadences, box)
    summed = images[:, rows - box[0], cols - box[2]].sum(axis=1)
    at = in_cube[cadences]
    flux = np.where(at >= 0, summed[np.maximum(at, 0)], np.nan)
    return flux, rows, cols, best.light


def score_small_apertures(
    folder: Path, truth: Truth, stars: Sequence[tuple[int, object, object]]
) -> None:
    """Score the optimal aperture's sum beside each star's light curve, in place.

    Nothing is scored without the prepared-data file of the truth's CCD in ``folder``.

    Parameters
    ----------
    folder : pathlib.Path
        The simulated sector's folder (its prepared-data file).
    truth : Truth
        The truth of the targets (with their neighbours).
    stars : sequence of (int, TargetScore, Residual)
        Each star's index in ``truth``, its score (the ``optimal_ap_*`` fields filled in)
        and its light curve's residual
        (:class:`~tessphot.evaluation.scoring.sector.Residual`).
    """
    prepared = Path(folder) / hdf5_name(*truth.ccd) if truth.ccd else None
    if not stars or prepared is None or not prepared.is_file():
        return
    hour, cadence = HOUR_SECONDS / SECONDS_PER_DAY, truth.cadence / SECONDS_PER_DAY
    with PreparedCube(prepared) as cube:
        in_cube = cube_cadences(cube, truth)
        for i, score, res in stars:
            cadences = res.cadences
            summed = optimal_sum(cube, truth, i, cadences, in_cube)
            if summed is None:
                continue
            flux, rows, cols, light = summed
            use = np.isfinite(flux)
            k = cadences[use]
            shapes = None
            if truth.systematics is not None:
                shapes = truth.systematics.raw_columns(i, k)
            neighbours = np.zeros(k.size)
            if truth.neighbours is not None:
                exclude = int(truth.starid[i])
                neighbours = truth.neighbours.in_aperture(rows, cols, exclude=exclude)[k]
            median = float(np.median(flux[use])) if use.any() else math.nan
            contamination = 1.0 - light / median if median > 0 else math.nan
            t = truth.tmid[k]
            alone, left_in = (
                residual(values, truth.flux[k, i], contamination, systematics=shapes)[0]
                for values in (flux[use] - neighbours, flux[use])
            )
            # The motion as the star alone shows it: fitted on the left-in residual, it
            # would also take out a neighbour's slow variability that follows the pointing.
            drow, dcol = truth.drow[k, i], truth.dcol[k, i]
            alone, relative = (
                without_motion(y, drow, dcol, fitted_on=alone) for y in (alone, left_in)
            )
            score.optimal_ap_rms_hour = full_bin_rms(t, alone, hour, cadence)
            score.optimal_ap_rms_hour_neighbours = full_bin_rms(t, relative, hour, cadence)
            score.optimal_ap_std_hour_neighbours = full_bin_std(t, relative, hour, cadence)
            score.optimal_ap_excess_sigma = paired_excess(
                t, res.left_in[use], relative, hour, cadence
            )


def small_aperture_check(stars: Sequence) -> dict:
    """Issue 14's check: no variable star under half its optimal aperture measured worse.

    Parameters
    ----------
    stars : sequence of TargetScore
        Every target's score.

    Returns
    -------
    dict
        ``what`` (with the stars merely estimated worse, by the robust 1-hour rms and by
        the standard deviation of the 1-hour bins), ``value`` (the stars measured worse:
        their 1-hour variance over the optimal aperture's sum's by more than
        :data:`WORSE_SIGMA` standard errors, the neighbours' light left in), ``met`` (None
        when no star was compared) and the value's ``format``.
    """
    compared = [s for s in stars if math.isfinite(s.optimal_ap_rms_hour_neighbours)]
    robust = sum(s.rms_hour_neighbours > s.optimal_ap_rms_hour_neighbours for s in compared)
    std = sum(s.std_hour_neighbours > s.optimal_ap_std_hour_neighbours for s in compared)
    worse = [s for s in compared if s.optimal_ap_excess_sigma > WORSE_SIGMA]
    return {
        "what": (
            f"variable stars under half their optimal aperture ({len(compared)}) measured "
            f"worse than its sum, by over {WORSE_SIGMA:g} standard errors (neighbours left "
            f"in; estimated worse by the robust rms: {robust}, by the standard deviation: "
            f"{std}): none"
        ),
        "value": float(len(worse)),
        "met": (not worse) if compared else None,
        "format": ".0f",
    }
