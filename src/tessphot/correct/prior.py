"""The prior of a star's CBV coefficients, from the least-squares fits of its neighbours.

PDC-MAP and TASOC take the prior from the stars nearest on the CCD and in brightness, whose
systematics are alike. Here the neighbours are the ``prior_neighbours`` stars nearest in
(row, column, Tmag), the distance scaled per axis (``prior_position_scale`` px and
``prior_tmag_scale`` mag count as one unit). The prior is a Gaussian (so that the MAP fit stays
linear, where TASOC used a kernel density): the mean and covariance of the neighbours'
least-squares coefficients, each neighbour weighted by a Gaussian kernel of its distance (of
width half the distance of the farthest neighbour), with those beyond ``prior_clip_sigma``
(Mahalanobis) of the mean left out in two passes (variable stars' wild coefficients). A
floor on the variances (``prior_min_variance`` of the largest) keeps it invertible.

:class:`NeighbourPriors` builds the neighbour tree once for a whole CBV area;
:func:`neighbour_prior` is the one-star shorthand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from tessphot.config.correct import FitSettings

#: Passes of (weighted mean and covariance, clipping of neighbours).
CLIP_PASSES = 2


@dataclass
class Prior:
    """A Gaussian prior of the single-scale CBV coefficients.

    Attributes
    ----------
    mean : ndarray, shape (k,)
        Mean coefficients.
    covariance : ndarray, shape (k, k)
        Their covariance.
    n_neighbours : int
        Neighbours it was made from (after clipping).
    """

    mean: np.ndarray
    covariance: np.ndarray
    n_neighbours: int = 0


def _weighted_moments(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and (unbiased) covariance of the rows of ``values``."""
    weights = weights / weights.sum()
    mean = weights @ values
    centred = values - mean
    norm = max(1.0 - float(np.sum(weights**2)), 1e-12)
    return mean, (weights[:, None] * centred).T @ centred / norm


def _floored(covariance: np.ndarray, floor: float) -> np.ndarray:
    """Covariance with a floor on its variances, relative to the largest."""
    largest = float(np.max(np.diag(covariance))) if covariance.size else 0.0
    return covariance + np.eye(len(covariance)) * max(largest * floor, np.finfo(float).tiny)


def robust_gaussian(values: np.ndarray, weights: np.ndarray, settings: FitSettings) -> Prior:
    """Weighted mean and covariance of coefficients, outlying ones clipped (Mahalanobis).

    Parameters
    ----------
    values : ndarray, shape (n, k)
        Coefficients of the neighbours.
    weights : ndarray, shape (n,)
        Their weights.
    settings : FitSettings
        ``prior_clip_sigma`` and ``prior_min_variance``.
    """
    keep = np.ones(len(values), bool)
    mean, covariance = _weighted_moments(values, weights)
    for _ in range(CLIP_PASSES):
        covariance = _floored(covariance, settings.prior_min_variance)
        centred = values - mean
        distance = np.einsum("ij,ij->i", centred, np.linalg.solve(covariance, centred.T).T)
        within = np.sqrt(distance / values.shape[1]) <= settings.prior_clip_sigma
        if within.sum() < values.shape[1] + 1 or np.array_equal(within, keep):
            break
        keep = within
        mean, covariance = _weighted_moments(values[keep], weights[keep])
    covariance = _floored(covariance, settings.prior_min_variance)
    return Prior(mean, covariance, int(keep.sum()))


class NeighbourPriors:
    """The priors of a CBV area's stars from their neighbours' least-squares coefficients.

    Parameters
    ----------
    rows, cols : ndarray, shape (n,)
        Positions of the stars on the CCD [px].
    tmags : ndarray, shape (n,)
        Their magnitudes [Tmag].
    coefficients : ndarray, shape (n, k)
        Their least-squares coefficients of the single-scale vectors (rows with NaN, stars
        without a fit, are left out).
    settings : FitSettings, optional
        ``prior_*`` settings (None: the defaults).
    """

    def __init__(
        self,
        rows: np.ndarray,
        cols: np.ndarray,
        tmags: np.ndarray,
        coefficients: np.ndarray,
        *,
        settings: FitSettings | None = None,
    ) -> None:
        self.settings = settings if settings is not None else FitSettings()
        coefficients = np.atleast_2d(np.asarray(coefficients, dtype=float))
        points = self._scaled(np.asarray(rows), np.asarray(cols), np.asarray(tmags))
        self.index = np.flatnonzero(
            np.all(np.isfinite(coefficients), axis=1) & np.all(np.isfinite(points), axis=1)
        )
        self.coefficients = coefficients[self.index]
        self.tree = cKDTree(points[self.index]) if len(self.index) else None

    def _scaled(self, rows: np.ndarray, cols: np.ndarray, tmags: np.ndarray) -> np.ndarray:
        s = self.settings
        scales = (s.prior_position_scale, s.prior_position_scale, s.prior_tmag_scale)
        return np.column_stack([rows, cols, tmags]) / np.asarray(scales)

    def prior(self, row: float, col: float, tmag: float, *, exclude: int | None = None) -> Prior:
        """The prior of a star at (row, col) of magnitude ``tmag``.

        Parameters
        ----------
        row, col : float
            Position [px].
        tmag : float
            Magnitude [Tmag].
        exclude : int, optional
            Index (among the stars given) of a star left out: the target itself.

        Raises
        ------
        ValueError
            With fewer than 3 neighbours having coefficients.
        """
        k = self.coefficients.shape[1]
        wanted = self.settings.prior_neighbours + (exclude is not None)
        if self.tree is None or len(self.index) - (exclude is not None) < min(3, k + 1):
            raise ValueError("too few neighbours with coefficients for a prior")
        point = self._scaled(np.array([row]), np.array([col]), np.array([tmag]))[0]
        distance, found = self.tree.query(point, k=min(wanted, len(self.index)))
        distance, found = np.atleast_1d(distance), np.atleast_1d(found)
        if exclude is not None:
            mine = self.index[found] != exclude
            distance, found = distance[mine], found[mine]
        distance, found = (
            distance[: self.settings.prior_neighbours],
            found[: self.settings.prior_neighbours],
        )
        width = max(0.5 * float(distance[-1]), 1e-9)
        weights = np.exp(-0.5 * (distance / width) ** 2)
        return robust_gaussian(self.coefficients[found], weights, self.settings)


def neighbour_prior(
    target_row: float,
    target_col: float,
    target_tmag: float,
    rows: np.ndarray,
    cols: np.ndarray,
    tmags: np.ndarray,
    coefficients: np.ndarray,
    *,
    settings: FitSettings | None = None,
    exclude: int | None = None,
) -> Prior:
    """The prior of one star from its neighbours' least-squares coefficients.

    For many stars of one area, build :class:`NeighbourPriors` once instead.

    Parameters
    ----------
    target_row, target_col : float
        The star's position [px].
    target_tmag : float
        Its magnitude [Tmag].
    rows, cols, tmags, coefficients
        The other stars (see :class:`NeighbourPriors`).
    settings : FitSettings, optional
        ``prior_*`` settings.
    exclude : int, optional
        Index of a star among them left out (the target itself).
    """
    priors = NeighbourPriors(rows, cols, tmags, coefficients, settings=settings)
    return priors.prior(target_row, target_col, target_tmag, exclude=exclude)
