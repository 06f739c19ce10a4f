"""The variable light of a target's neighbours in its aperture, as the truth has it.

A star's aperture also holds the light of the stars around it. Their mean light is part of
the level that the sector scoring fits (:func:`~tessphot.evaluation.scoring.sector.residual`),
but a variable neighbour's signal is not noise either: an eclipsing binary six magnitudes
fainter, 3 px from the target, puts its eclipses into any aperture that holds the target
(about 800 ppm deep for a 40 % eclipse), as it does in every pipeline's light curve. That is
astrophysical signal in the measurement; scoring it as the pipeline's noise would measure
the sky, not the pipeline. :class:`NeighbourLight` gives, per cadence, the true variable
light of every other simulated variable star inside a light curve's photometric mask (the
simulation's PRF at the star's catalogue position, summed over the mask's pixels, times
the star's true flux minus its mean over the good cadences), for the scoring to take out
of the aperture flux before fitting the target's own signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np
from scipy.spatial import cKDTree

from tessphot.evaluation.simulate.variability import CONSTANT

#: How far from a target's mean position a variable star is looked for [px]: beyond the
#: largest aperture's half-size (about 12 px for the brightest unsaturated stars) plus the
#: PRF's reach; the exact overlap with the mask is checked on each star's PRF stamp.
SEARCH_RADIUS_PX = 40.0
#: Cadences of the truth's fluxes read at a time (all stars' columns, then the ones kept).
READ_CADENCES = 64


@dataclass
class PlacedStars:
    """Simulated stars at their catalogue positions, with the simulation's PRF."""

    #: TIC IDs and catalogue positions [science-area px] of the stars.
    starid: np.ndarray
    row: np.ndarray
    col: np.ndarray
    #: The simulation's PRF (:class:`~tessphot.prf.PRFModel`).
    prf: object

    def __post_init__(self) -> None:
        points = np.column_stack([self.row, self.col]) if self.row.size else np.empty((0, 2))
        self._tree = cKDTree(points)


@dataclass
class NeighbourLight(PlacedStars):
    """The simulated variable stars near the targets and their true variable light."""

    #: (cadence, star): true flux minus its mean over the good cadences [e-/s].
    deviation: np.ndarray

    def in_aperture(self, rows, cols, *, exclude: int) -> np.ndarray:
        """The variable stars' true light in a mask, per cadence [e-/s].

        Parameters
        ----------
        rows, cols : array_like of int
            Science-area pixels of the mask
            (:func:`~tessphot.evaluation.scoring.systematics.aperture_pixels`).
        exclude : int
            TIC ID of the target itself.

        Returns
        -------
        numpy.ndarray
            ``sum_n f_n (F_n(t) - mean F_n)`` on every cadence of the truth, with ``f_n``
            the fraction of star ``n``'s PRF inside the mask (zero without a mask).
        """
        rows = np.asarray(rows, dtype=int)
        cols = np.asarray(cols, dtype=int)
        light = np.zeros(self.deviation.shape[0])
        if rows.size == 0 or self.row.size == 0:
            return light
        centre = (0.5 * (rows.min() + rows.max()), 0.5 * (cols.min() + cols.max()))
        near = np.asarray(self._tree.query_ball_point(centre, SEARCH_RADIUS_PX), dtype=int)
        near = near[self.starid[near] != exclude]
        if near.size == 0:
            return light
        fractions = mask_fractions(self.prf, self.row[near], self.col[near], rows, cols)
        use = fractions > 0
        if use.any():
            light = self.deviation[:, near[use]] @ fractions[use]
        return light


def mask_fractions(
    prf, star_rows, star_cols, rows, cols, node_rows=None, node_cols=None, valid=None
) -> np.ndarray:
    """Fraction of each star's PRF inside a mask of pixels.

    Parameters
    ----------
    prf : PRFModel
        The PRF (its :meth:`stamps`).
    star_rows, star_cols : numpy.ndarray
        Star positions [science-area px].
    rows, cols : numpy.ndarray of int
        The mask's pixels, shape (n_pix,); or each star's own mask, shape (n_stars, n_pix)
        (padded: ``valid`` marks the real pixels).
    node_rows, node_cols : numpy.ndarray, optional
        Positions choosing each star's PRF shape (default: the stars' own; one star at
        many displaced positions keeps the shape of its catalogue position).
    valid : numpy.ndarray of bool, optional
        With per-star masks, the pixels that belong to them (default: all).

    Returns
    -------
    numpy.ndarray
        One fraction per star (zero for a star whose PRF does not reach the mask).
    """
    rows = np.asarray(rows, dtype=int)
    cols = np.asarray(cols, dtype=int)
    stamps, row0, col0 = prf.stamps(star_rows, star_cols, node_rows, node_cols)
    size = stamps.shape[-1]
    i = rows - np.asarray(row0, dtype=int)[:, None]
    j = cols - np.asarray(col0, dtype=int)[:, None]
    inside = (i >= 0) & (i < size) & (j >= 0) & (j < size)
    if valid is not None:
        inside &= valid
    star = np.broadcast_to(np.arange(stamps.shape[0])[:, None], i.shape)
    values = stamps[star, np.clip(i, 0, size - 1), np.clip(j, 0, size - 1)]
    return np.where(inside, values, 0.0).astype(float).sum(axis=1)


def stars_near(
    stars: np.ndarray, among: np.ndarray, targets: np.ndarray, radius: float
) -> np.ndarray:
    """Indices of the stars ``among`` within ``radius`` [px] of any target (sorted).

    ``stars`` is the truth's table (``row``, ``col``); ``among`` and ``targets`` index it.
    """
    among = np.asarray(among, dtype=int)
    if not (among.size and np.size(targets)):
        return among[:0]
    tree = cKDTree(np.column_stack([stars["row"][among], stars["col"][among]]))
    points = np.column_stack([stars["row"][targets], stars["col"][targets]])
    hits = tree.query_ball_point(points, radius)
    return among[np.unique(np.concatenate([np.asarray(h, dtype=int) for h in hits]))]


def read_neighbour_light(
    h5: h5py.File, good: np.ndarray, targets: np.ndarray, prf
) -> NeighbourLight:
    """The variable stars within reach of the targets, from an open truth file.

    Parameters
    ----------
    h5 : h5py.File
        The truth file (``stars``, ``signals``, ``flux``).
    good : numpy.ndarray of bool
        The good cadences (the mean flux is taken over them; over all without any).
    targets : numpy.ndarray of int
        Indices in the truth of the scored targets.
    prf : PRFModel
        The simulation's PRF.

    Returns
    -------
    NeighbourLight
    """
    stars = h5["stars"][:]
    variable = np.flatnonzero(h5["signals"]["kind"][:] != CONSTANT)
    # Within the search radius of a target's position plus its mask's spread.
    keep = stars_near(stars, variable, targets, 2 * SEARCH_RADIUS_PX)
    dataset = h5["flux"]
    flux = np.empty((dataset.shape[0], keep.size))
    for start in range(0, dataset.shape[0], READ_CADENCES):
        stop = start + READ_CADENCES
        flux[start:stop] = dataset[start:stop][:, keep]
    use = good if good.any() else np.ones(good.size, dtype=bool)
    deviation = flux - flux[use].mean(axis=0)
    return NeighbourLight(
        starid=stars["starid"][keep],
        row=stars["row"][keep].astype(float),
        col=stars["col"][keep].astype(float),
        deviation=deviation,
        prf=prf,
    )
