"""The noise-optimal aperture of aperture photometry.

Step 2 of :mod:`tessphot.photometry.aperture`. The good cadences are split into at most
:data:`JITTER_GROUPS` groups of consecutive cadences, each at least :data:`MIN_GROUP_HOURS`
long; their mean images show what the pixels really do over the data (pointing jumps and
drifts, neighbours varying, background errors, the target's own variability). With the PRF,
the catalogue and the jitter model, the light of the target and of the other stars in every
pixel is predicted for each group (:class:`GroupScene`), as the motion correction predicts it
cadence by cadence. For every candidate aperture the expected 1-hour noise of the target's
light is then

    photon, sky and read noise averaged over an hour + what stays in the groups' fluxes
    after the motion correction and after the target's own variability,

where the target's variability in each group is the scale of its predicted light that fits
the pixels, with a background offset (:mod:`tessphot.photometry.aperture_variability`): it
scales the target's light in every aperture alike, so it is signal, not noise. The same is
done hour by hour within the groups for what the pixels' changes share beyond white noise:
the fast term of :mod:`tessphot.photometry.aperture_fast`, which keeps a neighbour's
eclipses out.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np

from tessphot.constants import tmag_to_flux
from tessphot.lightcurve.diagnostics import HOUR_SECONDS
from tessphot.photometry.aperture_fast import (
    HourImages,
    accumulate_hours,
    fast_variance,
    group_means,
    hour_bins,
    hour_offsets,
)
from tessphot.photometry.aperture_variability import left_variance, weightings
from tessphot.photometry.k2p2 import pixel_index
from tessphot.photometry.scene_groups import GroupImages, GroupScene, group_scene
from tessphot.photometry.target import Target

#: Groups of consecutive cadences whose mean images show how the pixels change over the data
#: (at most).
JITTER_GROUPS = 16
#: Shortest span of good cadences in a group [h]: a group's white noise is then at most a
#: quarter of one hour's, so that what its mean image shows is mostly the slow changes
#: (shorter data: fewer groups; under two groups' worth: no slow term).
MIN_GROUP_HOURS = 4.0


def optimal_aperture(
    candidates: np.ndarray,
    signal: np.ndarray,
    variance: np.ndarray,
    groups: GroupImages | None,
    cadences_per_hour: float,
    *,
    keep: tuple[int, int] | None = None,
    scene: GroupScene | None = None,
    hours: HourImages | None = None,
    variability_pixels: np.ndarray | None = None,
    offsets: np.ndarray | None = None,
) -> np.ndarray:
    """The subset of ``candidates`` minimising the expected relative noise on one hour.

    The target's light per pixel ``L`` is the scene's mean target light (without a scene:
    ``signal``). Pixels are ranked by ``L / variance``; of the apertures ``A`` made of the
    first ``k`` pixels, the one with the smallest
    ``(sum_A(variance) / n_hour + slow(A)) / sum_A(L)^2`` wins. ``slow(A)`` is the variance
    over the groups of what is left of the aperture's target light ``C_g(A)`` (the group's
    flux, motion-corrected as the photometry does it) after the target's own variability
    ``a_g sum_A(L)``, with ``a_g`` from the largest candidate aperture, minus what the
    white noise of the group means gives: photon, sky and read noise average down within the
    hour, the slow changes of the pixels (motion the correction leaves, neighbours varying,
    background errors) do not.

    Parameters
    ----------
    candidates : ndarray of bool, shape (rows, cols)
        Pixels that may be used (the target's K2P2 mask).
    signal : ndarray, shape (rows, cols)
        Mean flux per pixel [e-/s].
    variance : ndarray, shape (rows, cols)
        Variance of one cadence of each pixel [(e-/s)^2].
    groups : GroupImages or None
        Mean images of groups of consecutive cadences (None or fewer than two groups: no
        slow term).
    cadences_per_hour : float
        Cadences averaged in one hour (at least 1).
    keep : (int, int), optional
        A pixel that stays in the aperture (the target's).
    scene : GroupScene, optional
        The predicted light of the target and of the other stars per group.
    hours : HourImages, optional
        Mean images of the hours within the groups: with a scene, the fast term
        (:func:`~tessphot.photometry.aperture_fast.fast_variance`) joins the slow one.
    variability_pixels : ndarray of bool, optional
        The candidates on which the target's variability is fitted (default: all).
    offsets : ndarray, shape (n_hours, 2), optional
        The target's position offsets per hour within its group (fitted out of the fast
        term when the scene's flux is motion-corrected).

    Returns
    -------
    ndarray of bool
        The aperture; ``candidates`` itself when no pixel has a positive light and a finite
        variance.
    """
    light = signal if scene is None else _mean_light(scene.target, groups)
    eligible = candidates & np.isfinite(light) & (light > 0) & np.isfinite(variance)
    eligible &= variance > 0
    if not eligible.any():
        return candidates.copy()
    idx = np.flatnonzero(eligible)
    ell = light.ravel()[idx]
    v = variance.ravel()[idx]
    order = np.argsort(-(ell / v), kind="stable")
    cum_light = np.cumsum(ell[order])
    cum_var = np.cumsum(v[order])
    noise2 = cum_var / max(float(cadences_per_hour), 1.0)
    if groups is not None and len(groups.cadences) >= 2:
        pixels = idx[order]
        scales = None
        if scene is not None:
            fitted = None if variability_pixels is None else variability_pixels.ravel()[pixels]
            scales = weightings(
                scene,
                groups,
                pixels,
                np.diff(cum_light, prepend=0.0),
                np.diff(cum_var, prepend=0.0),
                fitted,
            )
        noise2 = noise2 + _slow_variance(groups, signal, scene, pixels, cum_light, cum_var, scales)
        if hours is not None and scales is not None:
            noise2 = noise2 + fast_variance(
                hours,
                groups,
                signal,
                pixels,
                cum_light,
                cum_var,
                scales,
                _mean_light(scene.others, groups).ravel()[pixels],
                offsets=offsets if scene.corrected else None,
            )
    best = int(np.argmin(noise2 / cum_light**2))
    mask = np.zeros(candidates.shape, dtype=bool)
    mask.ravel()[idx[order[: best + 1]]] = True
    if keep is not None and candidates[keep]:
        mask[keep] = True
    return mask


def _mean_light(per_group: np.ndarray, groups: GroupImages | None) -> np.ndarray:
    """The mean over the groups, weighted by their cadences."""
    if groups is None or len(groups.cadences) != len(per_group):
        return per_group.mean(axis=0)
    return np.tensordot(groups.cadences / groups.cadences.sum(), per_group, axes=1)


def _slow_variance(
    groups: GroupImages,
    signal: np.ndarray,
    scene: GroupScene | None,
    pixels: np.ndarray,
    cum_light: np.ndarray,
    cum_var: np.ndarray,
    scales: list[np.ndarray] | None,
) -> np.ndarray:
    """``slow`` of :func:`optimal_aperture` for the apertures of the first k ``pixels``.

    The target's variability ``a_g`` per group: with a scene, the scale of the target's
    predicted light (motion included) in the pixels less the others' predicted light, a
    background offset fitted with it (:mod:`~tessphot.photometry.aperture_variability`);
    without one, the largest aperture's flux over its mean. With a scene the scale is
    fitted twice, the pixels weighted by their signal-to-noise ratio and alike: each errs in
    its own way (the first by what the motion correction leaves in the star's core, the
    second by the background's errors over the mask's many sky pixels), and what either
    leaves unexplained is not surely the aperture's noise, so the lesser slow term counts;
    so does the target's light held constant, when the star varies less between the groups
    than the fitted scales err.
    """
    n_groups = len(groups.cadences)
    weights = groups.cadences / groups.cadences.sum()
    images = groups.mean.reshape(n_groups, -1)[:, pixels]
    images = np.where(np.isfinite(images), images, signal.ravel()[pixels][None, :])
    flux = np.cumsum(images, axis=1)
    var = np.diff(cum_var, prepend=0.0)
    white_groups = float(np.sum(weights * (1 - weights) / groups.cadences))
    if scene is None:
        variability = flux[:, -1] / cum_light[-1]
        white_scale = cum_light / cum_light[-1]
        white = cum_var * (1 - 2 * white_scale) + white_scale**2 * cum_var[-1]
        return left_variance(flux, variability, cum_light, weights, white * white_groups)
    own = scene.target.reshape(n_groups, -1)[:, pixels]
    others = scene.others.reshape(n_groups, -1)[:, pixels]
    own = np.where(np.isfinite(own), own, np.diff(cum_light, prepend=0.0)[None, :])
    mean_own = weights @ own
    cum_own = np.cumsum(own, axis=1)
    cum_others = np.cumsum(others, axis=1)
    if scene.corrected:
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = cum_light[None, :] / cum_own
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        target_light = (flux - cum_others) * scale
    else:
        target_light = flux - (weights @ cum_others)[None, :]
    slow = None
    for coefficients in scales:
        variability = np.sum((images - others) * coefficients[None, :], axis=1)
        variability = variability / (own @ coefficients) * (mean_own @ coefficients)
        # Var(x(k) - a L(k)) of white noise, x(k) and a sharing the pixels' noise.
        white = (
            cum_var
            - 2 * cum_light * np.cumsum(coefficients * var)
            + cum_light**2 * float(coefficients**2 @ var)
        )
        left = left_variance(target_light, variability, cum_light, weights, white * white_groups)
        slow = left if slow is None else np.minimum(slow, left)
    # The target held constant: no fit, and none of the fit's errors.
    held = left_variance(
        target_light, np.zeros(n_groups), cum_light, weights, cum_var * white_groups
    )
    return np.minimum(slow, held)


def cadence_groups(good: np.ndarray, cadence: float) -> tuple[np.ndarray, int]:
    """Each cadence's group of consecutive good cadences (-1: not good), and their number.

    At most :data:`JITTER_GROUPS` groups of at least :data:`MIN_GROUP_HOURS` of good
    cadences each (``cadence`` [s]), and at least one.
    """
    good_index = np.flatnonzero(good)
    min_size = max(2, math.ceil(MIN_GROUP_HOURS * HOUR_SECONDS / cadence))
    n_groups = max(1, min(JITTER_GROUPS, good_index.size // min_size))
    group = np.full(good.size, -1)
    edges = np.linspace(0, good_index.size, n_groups + 1).astype(int)
    for g in range(n_groups):
        group[good_index[edges[g] : edges[g + 1]]] = g
    return group, n_groups


def _pixel_statistics(
    blocks: Callable,
    good: np.ndarray,
    groups: tuple[np.ndarray, int],
    shape: tuple[int, int],
    cadence: float,
) -> tuple[list[np.ndarray], GroupImages, HourImages, np.ndarray, np.ndarray]:
    """Median variances per block, the groups' and hours' mean images, peaks, hours.

    The median variances are of the box's pixels per block; last, each cadence's hour.

    ``groups`` is each cadence's group and their number (:func:`cadence_groups`); the hours
    split the groups (:func:`~tessphot.photometry.aperture_fast.hour_bins`, ``cadence`` [s]).

    The peak is each pixel's brightest good cadence [e-/s].
    """
    medians = []
    peak = np.full(shape, -np.inf)
    group, n_groups = groups
    hour, n_hours, hour_group = hour_bins(group, cadence)
    sums = np.zeros((n_hours, *shape))
    counts = np.zeros((n_hours, *shape))
    for t0, t1, cubes in blocks(("images", "images_err")):
        ok = good[t0:t1]
        if ok.any():
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                variance = cubes["images_err"][ok] ** 2
                # np.median is many times faster than np.nanmedian where nothing is missing.
                median = np.nanmedian if np.isnan(variance).any() else np.median
                medians.append(median(variance, axis=0))
                peak = np.fmax(peak, np.nanmax(cubes["images"][ok], axis=0))
        accumulate_hours(sums, counts, cubes["images"], hour[t0:t1])
    group_mean, hour_mean = group_means(sums, counts, hour_group, n_groups)
    cadences = np.bincount(group[group >= 0], minlength=n_groups).astype(float)
    per_hour = np.bincount(hour[hour >= 0], minlength=n_hours).astype(float)
    return (
        medians,
        GroupImages(group_mean, np.maximum(cadences, 1.0)),
        HourImages(hour_mean, np.maximum(per_hour, 1.0), hour_group),
        peak,
        hour,
    )


def optimise_mask(
    target: Target,
    mask: np.ndarray,
    box: tuple[int, int, int, int],
    blocks: Callable,
    pixel: tuple[int, int],
    *,
    saturation_level: float,
    motion_corrected: bool,
    reach: int = 0,
    others_saturated: bool = False,
) -> np.ndarray | None:
    """The noise-optimal aperture within the target's mask (see :func:`optimal_aperture`).

    A saturated target (a pixel of its mask reaching ``saturation_level`` in a good
    cadence) keeps its whole mask: its bleed columns must be summed; with
    ``others_saturated`` (the mask was cut to the footprint of a target that is not
    saturated itself) those pixels are another star's and are left out. With a ``reach``, the
    aperture may also take the box's pixels within ``reach`` of the target's pixel that
    are outside the mask but where the target's predicted light exceeds the other stars'
    (:func:`beyond_mask`) and no good cadence reaches ``saturation_level``.

    Parameters
    ----------
    target : Target
    mask : ndarray of bool
        The target's K2P2 mask on the stamp.
    box : (int, int, int, int)
        A box of the stamp holding the mask (and the pixels within ``reach`` of ``pixel``).
    blocks
        The cadence blocks of the box.
    pixel : (int, int)
        The target's pixel on the stamp (stays in the aperture).
    saturation_level : float
        A pixel this bright is saturated [e-/s].
    motion_corrected : bool
        Whether the flux is corrected for the pointing motion (step 4 of
        :mod:`tessphot.photometry.aperture`).
    reach : int
        How far from the target's pixel the aperture may leave the mask [px] (0: never).
    others_saturated : bool
        The mask's saturated pixels belong to other stars.

    Returns
    -------
    ndarray of bool or None
        The aperture on the stamp; None without a good cadence or for a saturated target.
    """
    r0, r1, c0, c1 = box
    sub = mask[r0:r1, c0:c1]
    source = target.source
    cadence_group = cadence_groups(source.good, source.cadence)
    medians, groups, hours, peak, hour = _pixel_statistics(
        blocks, source.good, cadence_group, (r1 - r0, c1 - c0), source.cadence
    )
    if not medians:
        return None
    saturated = peak >= saturation_level
    if others_saturated:
        sub = sub & ~saturated
    if (sub & saturated).any() or not sub.any():
        return None
    origin = (target.stamp_origin[0] + r0, target.stamp_origin[1] + c0)
    scene = group_scene(target, origin, sub.shape, cadence_group, corrected=motion_corrected)
    keep = (pixel[0] - r0, pixel[1] - c0)
    inside = 0 <= keep[0] < sub.shape[0] and 0 <= keep[1] < sub.shape[1]
    candidates = own_pixels = sub
    if scene is not None:
        # A star keeps the pixel it is centred on and dominates (or it would be skipped).
        centres = centred_targets(target, (r0, c0), sub.shape)
        theirs = neighbours_own(scene, groups, centres, tmag_to_flux(target.tmag))
        candidates = own_pixels = sub & ~theirs
        if reach > 0 and inside:
            reached, dominated = beyond_mask(scene, groups, keep, reach)
            unsaturated = peak < saturation_level
            candidates = candidates | (reached & unsaturated & ~theirs)
            own_pixels = own_pixels | (dominated & unsaturated)
    best = optimal_aperture(
        candidates,
        target.sumimage[r0:r1, c0:c1],
        np.mean(medians, axis=0),
        groups,
        HOUR_SECONDS / source.cadence,
        keep=keep if inside else None,
        scene=scene,
        hours=hours,
        variability_pixels=own_pixels,
        offsets=hour_offsets(target.row_t, target.col_t, hour, hours),
    )
    optimised = np.zeros_like(mask)
    optimised[r0:r1, c0:c1] = best
    return optimised


def centred_targets(target: Target, origin: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """Per pixel of a box of the stamp, the brightest other target centred on it [e-/s].

    Zero where no other catalogued star is centred, or only stars fainter than the task
    list's faint limit (:attr:`~tessphot.photometry.target.Target.target_limit`: they have
    no light curve to lose). A star's pixel is the one
    :func:`~tessphot.photometry.k2p2.skip_targets` puts it on.
    """
    cat = target.catalog
    other = cat["starid"] != target.starid
    if target.target_limit is not None:
        other &= cat["tmag"] < target.target_limit
    rows = pixel_index(cat["row"][other]) - origin[0]
    cols = pixel_index(cat["column"][other]) - origin[1]
    inside = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
    centres = np.zeros(shape)
    flux = tmag_to_flux(cat["tmag"][other][inside])
    np.maximum.at(centres, (rows[inside], cols[inside]), flux)
    return centres


def neighbours_own(
    scene: GroupScene, groups: GroupImages, centres: np.ndarray, target_flux: float
) -> np.ndarray:
    """The pixels another star is centred on and dominates.

    ``centres`` is the flux of the brightest other star centred on each pixel [e-/s] (0:
    none; :func:`centred_targets`). That star's light in the pixel is taken as its flux times the
    target's peak fraction (the PRF's share in the brightest pixel; ``target_flux`` [e-/s]);
    where it exceeds the target's light, the pixel is that star's: in the target's
    aperture it would make the star, when fainter, SKIPPED (a star centred in a brighter
    one's aperture has no light curve of its own).
    """
    own = _mean_light(scene.target, groups)
    peak = float(np.nanmax(own)) / target_flux if target_flux > 0 else 0.0
    with np.errstate(invalid="ignore"):
        return (centres > 0) & (centres * peak > own)


def beyond_mask(
    scene: GroupScene, groups: GroupImages, pixel: tuple[int, int], reach: int
) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of a box within ``reach`` of ``pixel``, and those where the target dominates.

    K2P2's watershed cuts a faint star's mask where a neighbour's light rises, often next to
    the star, leaving it too few of its own pixels; the optimal aperture may take these back,
    and those of the neighbour too where they add more of the target's light than noise (the
    fast and slow terms count a neighbour's variability). The target's variability is
    fitted on the pixels where its light dominates only.

    Parameters
    ----------
    scene : GroupScene
        The predicted light of the target and of the others on the box.
    groups : GroupImages
        The groups of cadences (their weights).
    pixel : (int, int)
        The target's pixel on the box.
    reach : int
        Chebyshev distance from ``pixel`` [px].

    Returns
    -------
    reached, dominated : ndarray of bool, shape of the box
        The pixels within ``reach`` holding some of the target's light; those of them where
        it exceeds the other stars'.
    """
    own = _mean_light(scene.target, groups)
    others = _mean_light(scene.others, groups)
    rows, cols = np.indices(own.shape)
    near = (np.abs(rows - pixel[0]) <= reach) & (np.abs(cols - pixel[1]) <= reach)
    with np.errstate(invalid="ignore"):
        reached = near & (own > 0)
        return reached, reached & (own > others)
