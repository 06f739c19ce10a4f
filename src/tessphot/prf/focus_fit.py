"""The width scale of a PRF fitted cadence by cadence on stars' boxes, and its smoothing.

The arithmetic of the focus measurement (:mod:`tessphot.prepare.focus`), on arrays only.
A star's box at cadence ``t`` is modelled, linearised in the PRF's width scale ``s`` about
1 (:mod:`tessphot.prf.focus`), as

``d = f P + F (s - 1) dP/ds + g dP/drow + h dP/dcol + b``

with its own flux ``f``, position shifts ``g / f``, ``h / f`` and sky ``b`` on that cadence,
``F`` the star's flux in the average image, and ``s`` shared by every star of the cadence;
the catalogued neighbours' light is removed from the box and their own change with ``s``
added to the star's (``F dP/ds`` summed over the box's stars).
The star's own parameters are profiled out (the Schur complement of its normal equations,
:func:`star_scale`), leaving for every star and cadence an estimate of ``s - 1`` and its
weight; :func:`combine_stars` averages the stars of each cadence, leaving out the outliers.
:func:`smooth_in_time` smooths the cadences' scales within each orbit (never across a gap)
with a Gaussian-weighted local line, and says how uncertain each smoothed value is.
"""

from __future__ import annotations

import warnings

import numpy as np

from tessphot.prf.models import PRFModel

#: Step of the central difference of the PRF in its width scale (relative).
SCALE_STEP = 0.01
#: Step of the central differences of the PRF in position [px].
POSITION_STEP = 0.05
#: Star parameters of a cadence profiled out: flux, two position shifts, sky.
N_LOCAL = 4
#: A star's estimate is left out of its cadence beyond this many robust standard deviations.
CLIP = 5.0
#: Scale of the median absolute deviation to a normal distribution's standard deviation.
MAD_SCALE = 1.4826
#: Rows and columns of stamp corners combined into one key (more than any offset's range).
KEY_STRIDE = 1024
#: The Gaussian kernel of the smoothing is cut at this many of its widths.
KERNEL_REACH = 3.0


def box_stamps(
    tables: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    centre: tuple[int, int],
    half: int,
) -> np.ndarray:
    """Unit-flux PRF images of one star at many positions, on a fixed box around it.

    Parameters
    ----------
    tables : ndarray, shape (1, 11, 11, 13, 13)
        The star's PRF shape (:meth:`PRFModel.shape_tables`).
    rows, cols : ndarray, shape (n,)
        The star's positions (science pixels).
    centre : (int, int)
        The box's centre pixel (science).
    half : int
        Half-width of the box [px] (at most ``HALF_WIDTH``).

    Returns
    -------
    ndarray, shape (n, 2 half + 1, 2 half + 1)
        The light off the stamp's 13x13 pixels is 0.
    """
    stamps, row0, col0 = PRFModel.stamps_of_shapes(tables, np.zeros(rows.size, int), rows, cols)
    size = 2 * half + 1
    out = np.zeros((rows.size, size, size))
    # The stamps' corners relative to the box's take few values (the image moves little).
    n_stamp = stamps.shape[1]
    key = (row0 - (centre[0] - half)) * KEY_STRIDE + (col0 - (centre[1] - half))
    keys, which = np.unique(key, return_inverse=True)
    pairs = np.column_stack([np.floor_divide(keys + KEY_STRIDE // 2, KEY_STRIDE), 0 * keys])
    pairs[:, 1] = keys - pairs[:, 0] * KEY_STRIDE
    for (dr, dc), members in zip(pairs, _groups(which.ravel(), len(pairs)), strict=True):
        r0, r1 = max(dr, 0), min(dr + n_stamp, size)
        c0, c1 = max(dc, 0), min(dc + n_stamp, size)
        if r1 > r0 and c1 > c0:
            out[members, r0:r1, c0:c1] = stamps[members, r0 - dr : r1 - dr, c0 - dc : c1 - dc]
    return out


def _groups(labels: np.ndarray, n: int) -> list[np.ndarray]:
    """The indices of each label ``0 .. n - 1``."""
    order = np.argsort(labels, kind="stable")
    return np.split(order, np.cumsum(np.bincount(labels, minlength=n))[:-1])


def star_scale(
    data: np.ndarray,
    sigma: np.ndarray,
    images: np.ndarray,
    scale_light: np.ndarray,
    row_images: np.ndarray,
    col_images: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One star's estimate of ``s - 1`` on each cadence, its own parameters profiled out.

    Parameters
    ----------
    data, sigma : ndarray, shape (n, ny, nx)
        The star's box on ``n`` cadences (its neighbours' light removed) and its
        uncertainties (NaN: left out) [e-/s].
    images : ndarray, shape (n, ny, nx)
        The star's unit-flux PRF image at its position.
    scale_light : ndarray, shape (n, ny, nx)
        The derivative of the box's light in the width scale: the star's flux in the
        average image times its image's derivative, plus its neighbours' [e-/s].
    row_images, col_images : ndarray, shape (n, ny, nx)
        The derivatives of the star's image in row and column.

    Returns
    -------
    estimate : ndarray, shape (n,)
        ``s - 1`` from this star alone (NaN where it cannot be measured).
    weight : ndarray, shape (n,)
        Its inverse variance from the pixels' noise (0 where it cannot be measured).
    """
    n = data.shape[0]
    ok = np.isfinite(data) & np.isfinite(sigma) & (sigma > 0)
    weight = np.where(ok, 1.0 / np.where(ok, sigma, 1.0) ** 2, 0.0).reshape(n, -1)
    d = np.where(ok, data, 0.0).reshape(n, -1)
    local = np.stack(
        [
            images.reshape(n, -1),
            row_images.reshape(n, -1),
            col_images.reshape(n, -1),
            np.ones_like(d),
        ],
        axis=1,
    )
    g = scale_light.reshape(n, -1)
    lw = local * weight[:, None, :]
    normal = lw @ local.transpose(0, 2, 1)
    lg = np.einsum("nkp,np->nk", lw, g)
    ld = np.einsum("nkp,np->nk", lw, d)
    gg = np.einsum("np,np,np->n", g, weight, g)
    gd = np.einsum("np,np,np->n", g, weight, d)
    usable = ok.reshape(n, -1).sum(axis=1) > N_LOCAL + 1
    normal[~usable] = np.eye(N_LOCAL)
    solved = np.linalg.solve(normal, np.stack([lg, ld], axis=2))
    info = gg - np.einsum("nk,nk->n", lg, solved[:, :, 0])
    projected = gd - np.einsum("nk,nk->n", lg, solved[:, :, 1])
    usable &= info > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.where(usable, projected / info, np.nan)
    return estimate, np.where(usable, info, 0.0)


def combine_stars(estimates: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stars' estimates of every cadence combined, outliers left out.

    Each star is set to the others' level (its own constant offset, e.g. from light the PRF
    lacks, removed) and weighted by its scatter about the combined scale (its pixels' noise
    and what the noise does not explain, e.g. the PRF's error as the star moves), then
    averaged with :func:`average_stars`.

    Parameters
    ----------
    estimates, weights : ndarray, shape (n_stars, n_cadences)
        :func:`star_scale` of every star on every cadence.

    Returns
    -------
    value, error : ndarray, shape (n_cadences,)
        NaN where no star measured the cadence.
    """
    ok = np.isfinite(estimates) & (weights > 0)
    first, _ = average_stars(estimates, weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        residual = np.where(ok, estimates - first, np.nan)
        offset = np.nanmedian(residual, axis=1)
        residual -= offset[:, None]
        scatter = MAD_SCALE * np.nanmedian(np.abs(residual), axis=1)
        noise = np.nanmedian(
            np.where(ok, 1.0 / np.sqrt(np.where(ok, weights, 1.0)), np.nan), axis=1
        )
    excess = np.nan_to_num(np.clip(scatter**2 - noise**2, 0.0, None))
    with np.errstate(divide="ignore"):
        weights = np.where(ok, 1.0 / (1.0 / np.where(ok, weights, 1.0) + excess[:, None]), 0.0)
    return average_stars(estimates - np.nan_to_num(offset)[:, None], weights)


def average_stars(estimates: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stars' estimates of each cadence averaged, outliers left out.

    Each star's deviation from the cadence's median over its own uncertainty; their robust
    spread (at least 1) scales the uncertainties, and stars beyond :data:`CLIP` times it
    are left out of the weighted mean.

    Parameters
    ----------
    estimates, weights : ndarray, shape (n_stars, n_cadences)
        Every star's estimate and its inverse variance (0: none).

    Returns
    -------
    value, error : ndarray, shape (n_cadences,)
        NaN where no star measured the cadence.
    """
    ok = np.isfinite(estimates) & (weights > 0)
    est = np.where(ok, estimates, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(est, axis=0)
        z = (est - median) * np.sqrt(weights)
        spread = np.maximum(MAD_SCALE * np.nanmedian(np.abs(z), axis=0), 1.0)
        keep = ok & (np.abs(z) <= CLIP * spread)
        total = np.where(keep, weights, 0.0).sum(axis=0)
        value = np.where(keep, weights * np.nan_to_num(est), 0.0).sum(axis=0) / total
        error = spread / np.sqrt(total)
    missing = total <= 0
    return np.where(missing, np.nan, value), np.where(missing, np.nan, error)


def time_segments(time: np.ndarray, gap: float) -> list[np.ndarray]:
    """Indices of the runs of cadences with finite times not separated by more than ``gap``."""
    known = np.flatnonzero(np.isfinite(time))
    if not known.size:
        return []
    breaks = np.flatnonzero(np.diff(time[known]) > gap) + 1
    return np.split(known, breaks)


def smooth_in_time(
    time: np.ndarray, values: np.ndarray, use: np.ndarray, *, width: float, gap: float
) -> tuple[np.ndarray, np.ndarray]:
    """A Gaussian-weighted local line through the values, within each run between gaps.

    Parameters
    ----------
    time : ndarray, shape (n,)
        Times [d].
    values : ndarray, shape (n,)
        The values.
    use : ndarray of bool, shape (n,)
        The values to smooth (the others get the smoothed value at their time).
    width : float
        The kernel's standard deviation [d].
    gap : float
        Runs of cadences separated by more than this are smoothed apart [d].

    Returns
    -------
    smoothed : ndarray, shape (n,)
        NaN where no used value lies within the kernel's reach.
    leverage : ndarray, shape (n,)
        The sum of the squared weights of the values in each smoothed one: its variance
        over the values' (independent, equal) variance.
    """
    smoothed = np.full(time.shape, np.nan)
    leverage = np.full(time.shape, np.nan)
    use = use & np.isfinite(values)
    for seg in time_segments(time, gap):
        smoothed[seg], leverage[seg] = _local_line(
            time[seg], np.where(use[seg], values[seg], 0.0), use[seg].astype(float), width
        )
    return smoothed, leverage


def _local_line(
    t: np.ndarray, y: np.ndarray, w: np.ndarray, width: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`smooth_in_time` on one run of cadences (``w``: 1 for the values used, else 0).

    The kernel's sums over the neighbours within its reach, neighbour by neighbour: the
    cost is the run's length times the neighbours within the reach.
    """
    step = float(np.median(np.diff(t))) if t.size > 1 else width
    reach = min(int(np.ceil(KERNEL_REACH * width / max(step, 1e-12))), t.size - 1)
    shifts = range(-reach, reach + 1)

    def shifted(shift: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        i = np.arange(max(0, -shift), min(t.size, t.size - shift))
        dt = t[i + shift] - t[i]
        return i, dt, np.exp(-0.5 * (dt / width) ** 2) * w[i + shift]

    sums = np.zeros((5, t.size))
    for shift in shifts:
        i, dt, k = shifted(shift)
        j = i + shift
        sums[:, i] += np.stack([k, k * dt, k * dt**2, k * y[j], k * dt * y[j]])
    s0, s1, s2, t0, t1 = sums
    det = s0 * s2 - s1**2
    line = det > 1e-12 * np.maximum(s0 * s2, 1e-300)
    safe_det = np.where(line, det, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        fit = np.where(line, (s2 * t0 - s1 * t1) / safe_det, t0 / s0)
        lev = np.zeros(t.size)
        for shift in shifts:
            i, dt, k = shifted(shift)
            coef = np.where(line[i], k * (s2[i] - s1[i] * dt) / safe_det[i], k / s0[i])
            lev[i] += coef**2
    empty = s0 <= 0
    return np.where(empty, np.nan, fit), np.where(empty, np.nan, lev)


def point_to_point(values: np.ndarray, segments: list[np.ndarray]) -> float:
    """Robust standard deviation of single values from their neighbours' differences."""
    diffs = [np.diff(values[seg][np.isfinite(values[seg])]) for seg in segments]
    diffs = np.concatenate(diffs) if diffs else np.zeros(0)
    if not diffs.size:
        return np.nan
    return float(MAD_SCALE * np.median(np.abs(diffs - np.median(diffs))) / np.sqrt(2))
