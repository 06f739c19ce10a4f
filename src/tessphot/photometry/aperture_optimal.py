"""The noise-optimal aperture of aperture photometry.

Step 2 of :mod:`tessphot.photometry.aperture`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from tessphot.lightcurve.diagnostics import HOUR_SECONDS
from tessphot.photometry.target import Target

#: Groups of consecutive cadences whose mean images show how the pixels change as the star
#: moves.
JITTER_GROUPS = 16


def optimal_aperture(
    candidates: np.ndarray,
    signal: np.ndarray,
    variance: np.ndarray,
    shifted: np.ndarray,
    cadences_per_hour: float,
    keep: tuple[int, int] | None = None,
    explained: np.ndarray | None = None,
) -> np.ndarray:
    """The subset of ``candidates`` minimising the expected relative noise on one hour.

    Pixels are ranked by ``signal / variance``; of the apertures made of the first ``k``
    pixels, the one with the smallest ``(sum(var) / n_hour + var_j(sum(r_j))) /
    sum(signal)^2`` wins: photon, sky and read noise average down within the hour, slow
    changes of the pixels (neighbours varying, background errors) do not. ``r_j`` is what
    is left of ``shifted_j`` after a least-squares fit (weights ``1 / variance``) of the
    signal scaled (the target's own variability: it changes every aperture's light in the
    same proportion and is not noise) and of the ``explained`` templates.

    Parameters
    ----------
    candidates : ndarray of bool, shape (rows, cols)
        Pixels that may be used (the target's K2P2 mask).
    signal : ndarray, shape (rows, cols)
        Mean flux per pixel [e-/s].
    variance : ndarray, shape (rows, cols)
        Variance of one cadence of each pixel [(e-/s)^2].
    shifted : ndarray, shape (n, rows, cols)
        ``n`` images of the pixels at other times, e.g. mean images of groups of cadences,
        whose scatter about ``signal`` is not averaged down within an hour (may be empty:
        no such term).
    cadences_per_hour : float
        Cadences averaged in one hour (at least 1).
    keep : (int, int), optional
        A pixel that stays in the aperture (the target's).
    explained : ndarray, shape (m, rows, cols), optional
        Changes of the pixels the photometry corrects (e.g. the derivatives of ``signal``
        along the rows and columns when the flux is corrected for the pointing motion):
        fitted out of ``shifted`` with the signal.

    Returns
    -------
    ndarray of bool
        The aperture; ``candidates`` itself when no pixel has a positive signal and a
        finite variance.
    """
    eligible = candidates & np.isfinite(signal) & (signal > 0) & np.isfinite(variance)
    eligible &= variance > 0
    if not eligible.any():
        return candidates.copy()
    idx = np.flatnonzero(eligible)
    s = signal.ravel()[idx]
    v = variance.ravel()[idx]
    order = np.argsort(-(s / v), kind="stable")
    cum_s = np.cumsum(s[order])
    noise2 = np.cumsum(v[order]) / max(float(cadences_per_hour), 1.0)
    if len(shifted):
        templates = (
            [s] if explained is None else [s, *explained.reshape(len(explained), -1)[:, idx]]
        )
        change = _unexplained(shifted.reshape(len(shifted), -1)[:, idx], np.array(templates), v)
        noise2 = noise2 + np.var(np.cumsum(change[:, order], axis=1), axis=0)
    best = int(np.argmin(noise2 / cum_s**2))
    mask = np.zeros(candidates.shape, dtype=bool)
    mask.ravel()[idx[order[: best + 1]]] = True
    if keep is not None and candidates[keep]:
        mask[keep] = True
    return mask


def _unexplained(images: np.ndarray, templates: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """What is left of each image after a weighted least-squares fit of the templates.

    Parameters
    ----------
    images : ndarray, shape (n, pixels)
        The images (NaN: no data; left as no change).
    templates : ndarray, shape (m, pixels)
        The templates; the first is the mean image (a missing pixel takes its value).
    variance : ndarray, shape (pixels,)
        Variance of each pixel (the weights are its inverse).

    Returns
    -------
    ndarray, shape (n, pixels)
        ``images - coefficients @ templates``.
    """
    filled = np.where(np.isfinite(images), images, templates[0][None, :])
    design = np.nan_to_num(templates).T
    root_w = 1.0 / np.sqrt(variance)
    coefficients, *_ = np.linalg.lstsq(design * root_w[:, None], (filled * root_w).T, rcond=None)
    return filled - (design @ coefficients).T


def _cadence_groups(good: np.ndarray) -> tuple[np.ndarray, int]:
    """Each cadence's group of consecutive good cadences (-1: not good), and their number."""
    good_index = np.flatnonzero(good)
    n_groups = max(1, min(JITTER_GROUPS, good_index.size // 2))
    group = np.full(good.size, -1)
    edges = np.linspace(0, good_index.size, n_groups + 1).astype(int)
    for g in range(n_groups):
        group[good_index[edges[g] : edges[g + 1]]] = g
    return group, n_groups


def _pixel_statistics(
    blocks: Callable, good: np.ndarray, shape: tuple[int, int]
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Median variances of the box's pixels per block, the groups' mean images, the peaks.

    Mean images of consecutive groups of good cadences: what the pixels really show as the
    star moves (pointing jumps, drifts) over the data. The peak is each pixel's brightest
    good cadence [e-/s].
    """
    medians = []
    peak = np.full(shape, -np.inf)
    group, n_groups = _cadence_groups(good)
    sums = np.zeros((n_groups, *shape))
    counts = np.zeros((n_groups, *shape))
    for t0, t1, cubes in blocks(("images", "images_err")):
        ok = good[t0:t1]
        if ok.any():
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                medians.append(np.nanmedian(cubes["images_err"][ok] ** 2, axis=0))
                peak = np.fmax(peak, np.nanmax(cubes["images"][ok], axis=0))
        for g in np.unique(group[t0:t1][ok]):
            frames = cubes["images"][group[t0:t1] == g].astype(np.float64)
            finite = np.isfinite(frames)
            sums[g] += np.where(finite, frames, 0.0).sum(axis=0)
            counts[g] += finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        moved = sums / counts
    return medians, moved, peak


def optimise_mask(
    target: Target,
    mask: np.ndarray,
    box: tuple[int, int, int, int],
    blocks: Callable,
    pixel: tuple[int, int],
    *,
    saturation_level: float,
    motion_corrected: bool,
) -> np.ndarray | None:
    """The noise-optimal aperture within the target's mask (see :func:`optimal_aperture`).

    A saturated target (a pixel of its mask reaching ``saturation_level`` in a good
    cadence) keeps its whole mask: its bleed columns must be summed.

    Parameters
    ----------
    target : Target
    mask : ndarray of bool
        The target's K2P2 mask on the stamp.
    box : (int, int, int, int)
        The mask's bounding box on the stamp.
    blocks
        The cadence blocks of the box.
    pixel : (int, int)
        The target's pixel on the stamp (stays in the aperture).
    saturation_level : float
        A pixel this bright is saturated [e-/s].
    motion_corrected : bool
        The flux is corrected for the pointing motion: the first-order change of the pixels
        as the stars move (the derivatives of the mean image) is not noise of the aperture.

    Returns
    -------
    ndarray of bool or None
        The aperture on the stamp; None without a good cadence or for a saturated target.
    """
    r0, r1, c0, c1 = box
    sub = mask[r0:r1, c0:c1]
    medians, moved, peak = _pixel_statistics(blocks, target.source.good, (r1 - r0, c1 - c0))
    if not medians or (sub & (peak >= saturation_level)).any():
        return None
    variance = np.mean(medians, axis=0)
    signal = target.sumimage[r0:r1, c0:c1]
    explained = None
    if motion_corrected and min(sub.shape) > 1:
        explained = np.array(np.gradient(np.nan_to_num(signal)))
    keep = (pixel[0] - r0, pixel[1] - c0)
    inside = 0 <= keep[0] < sub.shape[0] and 0 <= keep[1] < sub.shape[1]
    best = optimal_aperture(
        sub,
        signal,
        variance,
        moved,
        HOUR_SECONDS / target.source.cadence,
        keep=keep if inside else None,
        explained=explained,
    )
    optimised = np.zeros_like(mask)
    optimised[r0:r1, c0:c1] = best
    return optimised
