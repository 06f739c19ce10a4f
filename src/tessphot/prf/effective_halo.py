"""The stars' halos, measured on the effective PRF's stars (:mod:`tessphot.prf.star_halo`).

The effective PRF is one shape for every star of a region; a halo that the bright stars
have and the faint ones lack (or a halo that only shows above the noise of the bright ones)
is averaged into it. On the average image, each of the effective PRF's fitted stars is
fitted again on its box, the other stars' light removed, with

``data = F P + G (K - P) + sky``,

``P`` the effective PRF as the average image holds it, ``K`` the unit halo
(:class:`~tessphot.prf.star_halo.HaloShape`): the star's flux ``F`` and its halo's share
``h = G / F``, relative to the PRF, then to the fainter half of the stars' (their weighted
median: what every star has is the PRF's to hold, and the PRF is fitted again without the
stars' halos, :func:`without_halos`; negative for a star with less broad light). The halo's
core radius and index are those that fit all the stars best (over a
grid, :data:`CORES` and :data:`INDICES`: the least sum of the stars' chi-squares, each
relative to its own without a halo, so that every star weighs alike).

Every catalogued star then gets an ``h``: the measured stars' values, brightness by
brightness, give a trend (the median in bins of :data:`TREND_BIN` mag, interpolated, the end
values beyond); a measured star's own value is pulled towards the trend by its error
against the stars' scatter about it (empirical Bayes); the other stars take the trend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tessphot.prf.effective_stars import (
    StarBoxes,
    StarFits,
    box_models,
    cleaned_boxes,
    pixel_weights,
    reaching_boxes,
    star_boxes,
)
from tessphot.prf.star_halo import HaloShape

#: Core radii tried [px]: a halo is broader than the PRF's core (FWHM about 2 px; a
#: narrower "halo" would take up the PRF's own residuals).
CORES = np.geomspace(1.0, 8.0, 10)
#: Indices tried.
INDICES = np.array([1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0])
#: Width of the brightness bins of the trend [mag].
TREND_BIN = 0.5
#: Fewest stars for a bin of the trend.
TREND_MIN_STARS = 3
#: Fewest stars to measure the halos on.
MIN_STARS = 5
#: Half-width of the boxes the halos are measured on [px]: beyond the tables' footprint
#: (6.5 px), where the halo is alone, its shape shows.
HALO_HALF = 10


@dataclass
class HaloFit:
    """The halos measured.

    Attributes
    ----------
    shape : HaloShape
    measured : ndarray of int
        Indices of the stars measured (into those given) ...
    tmag : ndarray
        ... their brightnesses [mag] ...
    fraction, error : ndarray
        ... their ``h`` and its error as fitted.
    trend_tmag, trend : ndarray
        The trend: ``h`` at these Tmag, interpolated between them (the end values beyond).
    scatter : float
        The measured stars' intrinsic scatter about the trend.
    chi2 : float
        Reduced chi-square of the stars' fits with the halo (with ``chi2_without``: without).
    chi2_without : float
    """

    shape: HaloShape
    measured: np.ndarray
    tmag: np.ndarray
    fraction: np.ndarray
    error: np.ndarray
    trend_tmag: np.ndarray
    trend: np.ndarray
    scatter: float
    chi2: float
    chi2_without: float

    def at(self, tmag: np.ndarray) -> np.ndarray:
        """The trend's ``h`` at brightnesses ``tmag``."""
        return np.interp(tmag, self.trend_tmag, self.trend)

    def shrunk(self) -> np.ndarray:
        """The measured stars' ``h`` pulled towards the trend by their errors."""
        prior = self.at(self.tmag)
        tau2 = self.scatter**2
        with np.errstate(invalid="ignore", divide="ignore"):
            pull = np.where(tau2 > 0, tau2 / (tau2 + self.error**2), 0.0)
        return prior + pull * (self.fraction - prior)

    def summary(self) -> str:
        """One readable line."""
        return (
            f"halos on {self.measured.size} stars: core {self.shape.core:.2f} px, index "
            f"{self.shape.index:g}, h {np.median(self.fraction):+.4f} (median; "
            f"{np.min(self.fraction):+.4f} to {np.max(self.fraction):+.4f}), scatter about "
            f"the trend {self.scatter:.4f}, chi2 {self.chi2_without:.2f} -> {self.chi2:.2f}"
        )


def _distances(boxes: StarBoxes, fits: StarFits) -> np.ndarray:
    """The distance of every pixel of the boxes from its fitted star [px]."""
    k = np.arange(-boxes.half, boxes.half + 1)
    dr = (boxes.rows - fits.rows)[:, None] + k[None, :]
    dc = (boxes.cols - fits.cols)[:, None] + k[None, :]
    return np.hypot(dr[:, :, None], dc[:, None, :])


def _halo_boxes(shape: HaloShape, boxes: StarBoxes, fits: StarFits) -> np.ndarray:
    """Unit halos of the fitted stars on their boxes."""
    return shape.surface(_distances(boxes, fits))


def _fit(
    columns: list[np.ndarray], data: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted linear least squares per star: coefficients, their covariance, chi-square."""
    n = data.shape[0]
    a = np.stack([c.reshape(n, -1) for c in columns], axis=-1) * weight.reshape(n, -1, 1)
    b = (data * weight).reshape(n, -1)
    at = a.transpose(0, 2, 1)  # batched products (matmul is ~7x faster than einsum here)
    normal = at @ a
    normal += 1e-12 * np.trace(normal, axis1=1, axis2=2)[:, None, None] * np.eye(len(columns))
    cov = np.linalg.inv(normal)
    coef = (cov @ (at @ b[:, :, None]))[:, :, 0]
    resid = b - (a @ coef[:, :, None])[:, :, 0]
    return coef, cov, (resid**2).sum(axis=1)


def measure_halos(
    prf,
    boxes: StarBoxes,
    fits: StarFits,
    tmag: np.ndarray,
    *,
    radius: float,
    model_error: float,
    clip: float,
) -> HaloFit | None:
    """The halos of the stars, and the shape that fits them best.

    Parameters
    ----------
    prf : PRFModel
        The effective PRF as the average image holds it.
    boxes : StarBoxes
        The stars' boxes, the other stars' light removed.
    fits : StarFits
        The stars fitted with ``prf``.
    tmag : ndarray
        Their brightnesses [mag].
    radius : float
        The halo's outer radius [px].
    model_error : float
        Relative error of the PRF per pixel (in the weights).
    clip : float
        Stars whose chi-square per pixel with the halo exceeds this many times the median
        are left out (blends, variables), and the shape fitted again without them.

    Returns
    -------
    HaloFit or None
        None with fewer than :data:`MIN_STARS` stars.
    """
    if fits.rows.size < MIN_STARS:
        return None
    own = box_models(prf, boxes, fits.rows, fits.cols)
    weight = pixel_weights(boxes, fits.flux[:, None, None] * own, model_error)
    data = np.nan_to_num(boxes.data)
    _, _, chi_without = _fit([own, np.ones_like(own)], data, weight)
    # The shape on every star, then again without those it leaves far off (blends, variables).
    shape, _, _, chi = _best_shape(own, data, weight, chi_without, boxes, fits, radius)
    per_pixel = chi / np.maximum(np.count_nonzero(weight.reshape(chi.size, -1), axis=1), 1)
    kept = np.flatnonzero(per_pixel <= clip * np.median(per_pixel))
    if kept.size < MIN_STARS:
        return None
    own, data, weight, chi_without = own[kept], data[kept], weight[kept], chi_without[kept]
    boxes, fits, tmag = boxes.subset(kept), fits.subset(kept), tmag[kept]
    shape, coef, cov, chi = _best_shape(own, data, weight, chi_without, boxes, fits, radius)
    flux, share = coef[:, 0], coef[:, 1]
    fraction = share / flux
    # Error of a ratio: the flux is far better measured than the halo's share.
    error = np.sqrt(np.abs(cov[:, 1, 1])) / np.abs(flux)
    dof = max(int(np.count_nonzero(weight)) - 3 * kept.size, 1)
    # What the fainter half of the stars have is every star's: the PRF's to hold, not a halo.
    faint = tmag >= np.median(tmag)
    fraction = fraction - _weighted_median(fraction[faint], error[faint] ** -2.0)
    trend_tmag, trend = _trend(tmag, fraction)
    scatter = _scatter(fraction - np.interp(tmag, trend_tmag, trend), error)
    return HaloFit(
        shape,
        kept,
        tmag,
        fraction,
        error,
        trend_tmag,
        trend,
        scatter,
        float(chi.sum() / dof),
        float(chi_without.sum() / (dof + kept.size)),
    )


def _best_shape(
    own: np.ndarray,
    data: np.ndarray,
    weight: np.ndarray,
    chi_without: np.ndarray,
    boxes: StarBoxes,
    fits: StarFits,
    radius: float,
) -> tuple[HaloShape, np.ndarray, np.ndarray, np.ndarray]:
    """The shape of the grid (:data:`CORES` x :data:`INDICES`) that fits the stars best.

    Returns it, the stars' coefficients, their covariances and chi-squares.
    """
    shapes = [HaloShape(float(c), float(k), radius) for c in CORES for k in INDICES]
    best = None
    flat = np.ones_like(own)
    distance = _distances(boxes, fits)
    for shape in shapes:
        halo = shape.surface(distance)
        coef, cov, chi = _fit([own, halo - own, flat], data, weight)
        # Every star weighs alike (the brightest, or a blend, would decide alone).
        total = float(np.sum(chi / chi_without))
        if best is None or total < best[0]:
            best = (total, shape, coef, cov, chi)
    return best[1:]


def measure_region_halos(
    image: np.ndarray,
    sigma: np.ndarray,
    origin: tuple[int, int],
    prf,
    stars: tuple[np.ndarray, np.ndarray, np.ndarray],
    fits: StarFits,
    tmag: np.ndarray,
    settings,
) -> HaloFit | None:
    """:func:`measure_halos` of fitted stars on boxes of :data:`HALO_HALF` px of an image.

    Parameters
    ----------
    image, sigma, origin
        The average image, its uncertainty and its pixel ``[0, 0]``'s science position.
    prf : PRFModel
        The effective PRF as the image holds it.
    stars : (rows, cols, flux)
        Every catalogued star (their light removed from the boxes but the star's own).
    fits : StarFits
        The stars to measure, fitted.
    tmag : ndarray
        Their brightnesses.
    settings : EffectivePRFSettings
        ``wings_radius`` (the halo's outer radius), ``model_error``, ``clip``.
    """
    rows, cols, flux = stars
    wide = star_boxes(image, sigma, origin, fits.rows, fits.cols, HALO_HALF)
    reach = reaching_boxes(rows, cols, wide.rows, wide.cols, HALO_HALF)
    scene = prf.render(rows[reach], cols[reach], flux[reach], image.shape, origin)
    return measure_halos(
        prf,
        cleaned_boxes(wide, scene, origin, prf, fits.rows, fits.cols, fits.flux),
        fits,
        tmag,
        radius=settings.wings_radius,
        model_error=settings.model_error,
        clip=settings.clip,
    )


def without_halos(
    prf, boxes: StarBoxes, fits: StarFits, halos: HaloFit | None, *, leave: np.ndarray
) -> StarBoxes:
    """The boxes with the measured stars' halos taken out: ``F h (K - P)`` each.

    What is left of a star is ``F P``: its light as the PRF holds it, to fit the PRF on.
    ``halos.measured`` indexes the boxes; the stars ``leave`` (a mask of the boxes) keep
    theirs (those left out of the fit to check it: the PRF alone is checked on them).
    """
    if halos is None:
        return boxes
    taken = ~leave[halos.measured]
    m = halos.measured[taken]
    part = fits.subset(m)
    own = box_models(prf, boxes.subset(m), part.rows, part.cols)
    halo = _halo_boxes(halos.shape, boxes.subset(m), part)
    data = boxes.data.copy()
    data[m] -= (part.flux * halos.fraction[taken])[:, None, None] * (halo - own)
    return StarBoxes(boxes.rows, boxes.cols, boxes.half, data, boxes.sigma)


def _trend(tmag: np.ndarray, fraction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median ``h`` in brightness bins (at their stars' median Tmag)."""
    edges = np.arange(
        np.floor(tmag.min() / TREND_BIN) * TREND_BIN, tmag.max() + TREND_BIN, TREND_BIN
    )
    which = np.digitize(tmag, edges)
    at, value = [], []
    for b in np.unique(which):
        members = which == b
        if members.sum() >= TREND_MIN_STARS:
            at.append(np.median(tmag[members]))
            value.append(np.median(fraction[members]))
    if not at:
        return np.array([np.median(tmag)]), np.array([np.median(fraction)])
    return np.array(at), np.array(value)


def _scatter(deviation: np.ndarray, error: np.ndarray) -> float:
    """Intrinsic scatter of deviations beyond their errors (moments; 0 when none).

    Mean squares weighted by the inverse variances, not medians: a few stars off the trend
    (at a step of it) are what it is for, and the outliers are already left out.
    """
    weight = error**-2.0
    excess = np.sum(weight * (deviation**2 - error**2)) / np.sum(weight)
    return float(np.sqrt(max(excess, 0.0)))


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value below which half the weight lies."""
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])
