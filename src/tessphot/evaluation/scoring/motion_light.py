"""The light the pointing motion moves in and out of a fixed aperture, as the truth has it.

The simulation renders every star with its PRF at its catalogue position moved by the
cadence's pointing (:mod:`tessphot.evaluation.simulate.sector`). A fixed aperture's sum
therefore changes with the motion by ``sum_n F_n(t) (f_n(t) - mean f_n)``, where ``f_n(t)``
is the fraction of star ``n``'s PRF inside the aperture at its position in cadence ``t``
and ``F_n`` its flux. :class:`SceneStars` computes that term exactly from the truth: the
ideal motion correction, which no photometry can beat, to give a comparison aperture
(:mod:`~tessphot.evaluation.scoring.small_apertures`).

A correction fitted to the residual instead (a regression on the true motion) also takes
out whatever else follows the pointing. On 120 cadences the pointing drifts slowly, and
such a fit took out most of an aperture's background error too (r = -0.91 with the row
motion for TIC 437677390), a gain no pipeline has.

The stars near a target move alike: the pointing's rotation (~1e-5 rad) moves stars 10 px
apart by 1e-4 px against each other, so every star is moved by the target's displacement.
"""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

from tessphot.evaluation.scoring.neighbour_light import PlacedStars, mask_fractions, stars_near

#: How far from an aperture's pixels a star's light is looked for [px]: the PRF stamps'
#: half-width (6 px) plus a margin.
REACH_PX = 8.0


@dataclass
class SceneStars(PlacedStars):
    """Every simulated star near the targets: where the simulation puts it, and its flux.

    The positions are the catalogue's, before the pointing's motion.
    """

    #: Mean fluxes of the stars [e-/s].
    flux: np.ndarray

    def __post_init__(self) -> None:
        super().__post_init__()
        self._index = {int(s): k for k, s in enumerate(self.starid)}

    def displacement(
        self, starid: int, rows: np.ndarray, cols: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """A star's true positions per cadence less its catalogue position [px].

        Parameters
        ----------
        starid : int
            The star (one of :attr:`starid`).
        rows, cols : numpy.ndarray
            Its true positions per cadence [science-area px].
        """
        k = self._index[int(starid)]
        return np.asarray(rows, float) - self.row[k], np.asarray(cols, float) - self.col[k]

    def motion_light(
        self,
        rows,
        cols,
        drow: np.ndarray,
        dcol: np.ndarray,
        *,
        target: int,
        target_flux: np.ndarray,
    ) -> np.ndarray:
        """The light the motion moves into a mask, per cadence, less its mean [e-/s].

        Parameters
        ----------
        rows, cols : array_like of int
            Science-area pixels of the mask.
        drow, dcol : numpy.ndarray
            The pointing's displacement of the stars per cadence [px]
            (:meth:`displacement` of the target).
        target : int
            TIC ID of the target, whose true flux per cadence is used.
        target_flux : numpy.ndarray
            That flux on the same cadences [e-/s].

        Returns
        -------
        numpy.ndarray
            ``sum_n F_n (f_n(t) - mean_t f_n)``: the target's true flux for ``F``, the others'
            mean fluxes (their variability times the motion is second order); the mean is
            over the given cadences.
        """
        rows = np.asarray(rows, dtype=int)
        cols = np.asarray(cols, dtype=int)
        drow = np.asarray(drow, dtype=float)
        dcol = np.asarray(dcol, dtype=float)
        light = np.zeros(drow.size)
        if rows.size == 0 or drow.size == 0:
            return light
        near = set()
        for hits in self._tree.query_ball_point(np.column_stack([rows, cols]), REACH_PX):
            near.update(hits)
        for n in sorted(near):
            # The PRF's shape is the one at the catalogue position, as the simulation renders.
            fractions = mask_fractions(
                self.prf,
                self.row[n] + drow,
                self.col[n] + dcol,
                rows,
                cols,
                np.full(drow.size, self.row[n]),
                np.full(drow.size, self.col[n]),
            )
            flux = target_flux if int(self.starid[n]) == int(target) else self.flux[n]
            light += flux * (fractions - fractions.mean())
        return light


def read_scene_stars(h5: h5py.File, targets: np.ndarray, prf) -> SceneStars:
    """The stars whose light reaches the targets' apertures, from an open truth file.

    Parameters
    ----------
    h5 : h5py.File
        The truth file (its ``stars`` table).
    targets : numpy.ndarray of int
        Indices in the truth of the scored targets.
    prf : PRFModel
        The simulation's PRF.

    Returns
    -------
    SceneStars
    """
    stars = h5["stars"][:]
    # The largest apertures reach ~12 px from their star, and their light ~6 px beyond.
    keep = stars_near(stars, np.arange(stars.size), targets, 3 * REACH_PX)
    return SceneStars(
        starid=stars["starid"][keep],
        row=stars["row"][keep].astype(float),
        col=stars["col"][keep].astype(float),
        flux=stars["flux"][keep].astype(float),
        prf=prf,
    )
