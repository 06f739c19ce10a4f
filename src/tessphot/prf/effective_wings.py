"""The extended wings of the PRF beyond its tables' footprint, measured on bright stars.

The tables stop at 6.5 px (tapered to zero from 4.5 px); real stars have faint wings and a
halo reaching tens of pixels. On the average image, with every catalogued star's modelled
light removed, the brightest fitted stars' residuals relative to their flux are averaged in
annuli (logarithmically spaced, from :data:`WINGS_MIN_RADIUS` to the ``wings_radius``
setting), pixels holding other stars' light, saturated or off the image left out; a power
law ``A (r / r0)^-k`` (``r0`` = :data:`WINGS_REFERENCE_RADIUS`) is fitted to the profile.

The background estimate takes some of the wings' light out of the average image where they
are fainter than its star mask's threshold, most at large radii: the wings measured are a
lower limit there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from tessphot.prf.effective_stars import StarFits, box_pixels, reaching_boxes
from tessphot.prf.models import HALF_WIDTH, PRFModel

#: Inner radius of the wings' profile [px]: the tables' footprint's edge.
WINGS_MIN_RADIUS = HALF_WIDTH + 0.5
#: Radius at which the wings' amplitude is given [px].
WINGS_REFERENCE_RADIUS = 10.0
#: Annuli of the profile.
WINGS_BINS = 12
#: Pixels where other stars' modelled light exceeds this many times the pixel's noise are
#: left out.
OTHERS_SIGMA = 1.0
#: Fewest annuli with data for the power law to be fitted.
MIN_BINS = 4


@dataclass
class Wings:
    """The measured wings: the profile and the power law fitted to it.

    Attributes
    ----------
    radius : ndarray
        Mean radius of each annulus [px].
    profile, error : ndarray
        Mean residual surface brightness relative to the star's flux [1/px] and its error.
    amplitude : float
        ``A``: the power law at :data:`WINGS_REFERENCE_RADIUS` [1/px] (NaN: not fitted, or
        no falling positive profile).
    index : float
        ``k`` (NaN: as ``amplitude``).
    fraction : float
        Fraction of a star's light the power law holds from ``radius_min`` to
        ``radius_max``.
    n_stars : int
        Stars measured.
    radius_min, radius_max : float
        The profile's radii [px].
    """

    radius: np.ndarray
    profile: np.ndarray
    error: np.ndarray
    amplitude: float
    index: float
    fraction: float
    n_stars: int
    radius_min: float = WINGS_MIN_RADIUS
    radius_max: float = np.nan


def measure_wings(
    residual: np.ndarray,
    others: np.ndarray,
    sigma: np.ndarray,
    origin: tuple[int, int],
    stars: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    radius: float,
    excluded: np.ndarray | None = None,
) -> Wings | None:
    """The wings' mean profile around stars and the power law fitted to it.

    Parameters
    ----------
    residual : ndarray, shape (ny, nx)
        The average image minus the model of every catalogued star.
    others : ndarray, shape (ny, nx)
        Every catalogued star's modelled light (the measured stars' own is taken out per
        star here).
    sigma : ndarray, shape (ny, nx)
        The average image's uncertainty.
    origin : (int, int)
        Science position of the images' pixel ``[0, 0]``.
    stars : (rows, cols, flux)
        The stars to measure (positions [science px], fluxes [e-/s]).
    radius : float
        Outer radius [px].
    excluded : ndarray of bool, shape (ny, nx), optional
        Pixels to leave out (e.g. saturated ones).

    Returns
    -------
    Wings or None
        None without stars or annuli enough.
    """
    rows, cols, flux = stars
    if not rows.size:
        return None
    half = int(np.ceil(radius))
    centre_r, centre_c = np.rint(rows).astype(int), np.rint(cols).astype(int)
    res = box_pixels(residual, origin, centre_r, centre_c, half)
    sig = box_pixels(sigma, origin, centre_r, centre_c, half)
    oth = box_pixels(others, origin, centre_r, centre_c, half)
    bad = np.zeros(res.shape, dtype=bool)
    if excluded is not None:
        bad = box_pixels(excluded.astype(float), origin, centre_r, centre_c, half) > 0
    k = np.arange(-half, half + 1)
    dr = (centre_r - rows)[:, None, None] + k[None, :, None]
    dc = (centre_c - cols)[:, None, None] + k[None, None, :]
    # The star's own modelled light stops at the footprint, inside the profile's radius.
    r = np.hypot(dr, dc)
    edges = np.geomspace(WINGS_MIN_RADIUS, radius, WINGS_BINS + 1)
    use = (
        np.isfinite(res)
        & np.isfinite(sig)
        & (sig > 0)
        & ~bad
        & (np.nan_to_num(oth) <= OTHERS_SIGMA * sig)
        & (r >= edges[0])
        & (r < edges[-1])
    )
    relative = res / flux[:, None, None]
    weight = np.where(use, (flux[:, None, None] / np.where(use, sig, 1.0)) ** 2, 0.0)
    which = np.clip(np.searchsorted(edges, r, side="right") - 1, 0, WINGS_BINS - 1)
    total = np.bincount(which[use], weights=weight[use], minlength=WINGS_BINS)
    sums = np.bincount(which[use], weights=(weight * relative)[use], minlength=WINGS_BINS)
    radii = np.bincount(which[use], weights=(weight * r)[use], minlength=WINGS_BINS)
    ok = total > 0
    profile = np.where(ok, sums / np.where(ok, total, 1), np.nan)
    error = np.where(ok, 1 / np.sqrt(np.where(ok, total, 1)), np.nan)
    mean_r = np.where(ok, radii / np.where(ok, total, 1), np.sqrt(edges[:-1] * edges[1:]))
    amplitude, index = _power_law(mean_r[ok], profile[ok], error[ok])
    fraction = _fraction(amplitude, index, edges[0], edges[-1])
    return Wings(
        mean_r, profile, error, amplitude, index, fraction, int(rows.size), edges[0], edges[-1]
    )


def fitted_wings(
    image: np.ndarray,
    prf: PRFModel,
    stars: tuple[np.ndarray, np.ndarray, np.ndarray],
    sigma: np.ndarray,
    origin: tuple[int, int],
    fits: StarFits,
    *,
    n_stars: int,
    radius: float,
    excluded: np.ndarray | None = None,
) -> Wings | None:
    """The wings measured on the brightest of the effective PRF's fitted stars.

    Parameters
    ----------
    image, sigma, origin
        The average image, its uncertainty and its pixel ``[0, 0]``'s science position.
    prf : PRFModel
        The fitted PRF, as the average image holds it.
    stars : (rows, cols, flux)
        Every catalogued star on and near the region [science px, e-/s].
    fits : StarFits
        The fitted stars.
    n_stars : int
        How many of the brightest fitted stars to measure (0: none, None returned).
    radius : float
        Outer radius of the profile [px].
    excluded : ndarray of bool, optional
        Pixels left out (e.g. saturated).

    Returns
    -------
    Wings or None
    """
    if n_stars == 0:
        return None
    brightest = np.argsort(-fits.flux, kind="stable")[:n_stars]
    # Every star's modelled light, on the measured stars' boxes.
    near = reaching_boxes(
        stars[0],
        stars[1],
        np.rint(fits.rows[brightest]),
        np.rint(fits.cols[brightest]),
        int(np.ceil(radius)),
    )
    scene = prf.render(*(x[near] for x in stars), image.shape, origin)
    return measure_wings(
        image - scene,
        scene,
        sigma,
        origin,
        (fits.rows[brightest], fits.cols[brightest], fits.flux[brightest]),
        radius=radius,
        excluded=excluded,
    )


def _power_law(r: np.ndarray, profile: np.ndarray, error: np.ndarray) -> tuple[float, float]:
    """``(A, k)`` of ``A (r / r0)^-k`` fitted to a profile (NaN when it cannot be)."""
    if r.size < MIN_BINS or not np.any(profile > 0):
        return np.nan, np.nan
    positive = profile > 0
    start_k, start_log_a = -np.polyfit(
        np.log(r[positive] / WINGS_REFERENCE_RADIUS), np.log(profile[positive]), 1
    )
    try:
        (amplitude, index), _ = optimize.curve_fit(
            lambda x, a, k: a * (x / WINGS_REFERENCE_RADIUS) ** (-k),
            r,
            profile,
            p0=(np.exp(start_log_a), start_k),
            sigma=error,
            absolute_sigma=True,
            maxfev=2000,
        )
    except (RuntimeError, ValueError):
        return np.nan, np.nan
    if not (amplitude > 0 and index > 0):
        return np.nan, np.nan  # no wings: a profile rising outwards, or below zero
    return float(amplitude), float(index)


def _fraction(amplitude: float, index: float, r_in: float, r_out: float) -> float:
    """Light of the power law between two radii, relative to the star's flux."""
    if not (np.isfinite(amplitude) and np.isfinite(index)):
        return np.nan
    r0 = WINGS_REFERENCE_RADIUS
    if abs(index - 2) < 1e-9:
        return float(2 * np.pi * amplitude * r0**2 * np.log(r_out / r_in))
    power = 2 - index
    return float(2 * np.pi * amplitude * r0**index * (r_out**power - r_in**power) / power)
