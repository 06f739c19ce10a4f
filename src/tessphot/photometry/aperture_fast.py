"""The noise-optimal aperture's fast term: what its flux does from one hour to the next.

The slow term of :mod:`tessphot.photometry.aperture_optimal` compares groups of cadences a
day or more long. A neighbour's fast variability (eclipses, pulsations, red noise on hours)
and the background's errors from one cadence to the next change the flux within a group, and
do not average down within an hour either; they are what a pixel dominated by a variable
neighbour brings in. Here the cadences of each group are split into hours
(:func:`hour_bins`); every pixel's hourly mean, less its group's mean, is freed of the
target's pointing motion (a linear fit on its hourly position offsets, as the photometry's
motion correction takes the motion out) and of the target's own variability (its light
scaled per hour, as the slow term does it), and what stays beyond the white noise is the
aperture's fast term (:func:`fast_variance`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tessphot.lightcurve.diagnostics import HOUR_SECONDS
from tessphot.photometry.scene_groups import GroupImages

#: Eigenvalues of the pixels' hourly changes above this many times the white-noise edge are
#: shared changes (the edge itself is where white noise's largest eigenvalue falls).
FAST_EDGE_MARGIN = 1.2


@dataclass(frozen=True)
class HourImages(GroupImages):
    """Mean images of the hours of good cadences, within the groups.

    As :class:`~tessphot.photometry.scene_groups.GroupImages`, one image per hour
    (``mean`` of shape (n_hours, rows, cols), ``cadences`` per hour), and ``group``
    (ndarray of int, shape (n_hours,)): the group of cadences each hour belongs to.
    """

    group: np.ndarray


def hour_bins(group: np.ndarray, cadence: float) -> tuple[np.ndarray, int, np.ndarray]:
    """Each cadence's hour (-1: in no group), their number and each hour's group.

    An hour is a run of consecutive good cadences of one group, ``round(1 h / cadence)`` of
    them (at least one; ``cadence`` [s]); the last run of a group may be shorter.
    """
    per_hour = max(1, round(HOUR_SECONDS / cadence))
    hour = np.full(group.size, -1)
    members = np.flatnonzero(group >= 0)
    if members.size == 0:
        return hour, 0, np.zeros(0, dtype=int)
    g = group[members]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    rank = np.arange(members.size) - np.repeat(starts, np.diff(np.r_[starts, members.size]))
    new = np.r_[True, (g[1:] != g[:-1]) | (rank[1:] % per_hour == 0)]
    index = np.cumsum(new) - 1
    hour[members] = index
    return hour, int(index[-1]) + 1, g[new]


def hour_offsets(
    rows: np.ndarray, cols: np.ndarray, hour: np.ndarray, hours: HourImages
) -> np.ndarray | None:
    """The target's mean position in each hour less its group's mean, shape (n_hours, 2).

    ``rows`` and ``cols`` are the target's positions per cadence (NaN: unknown); None when an
    hour has no known position.
    """
    n_hours = hours.cadences.size
    use = (hour >= 0) & np.isfinite(rows) & np.isfinite(cols)
    counts = np.bincount(hour[use], minlength=n_hours)
    if n_hours == 0 or (counts == 0).any():
        return None
    mean = np.column_stack(
        [np.bincount(hour[use], weights=x[use], minlength=n_hours) / counts for x in (rows, cols)]
    )
    n_groups = int(hours.group.max()) + 1
    weight = np.bincount(hours.group, weights=counts, minlength=n_groups)
    group_mean = np.column_stack(
        [
            np.bincount(hours.group, weights=counts * mean[:, k], minlength=n_groups) / weight
            for k in range(2)
        ]
    )
    return mean - group_mean[hours.group]


def fast_variance(
    hours: HourImages,
    groups: GroupImages,
    signal: np.ndarray,
    pixels: np.ndarray,
    cum_light: np.ndarray,
    cum_var: np.ndarray,
    weightings: list[np.ndarray],
    others: np.ndarray,
    *,
    offsets: np.ndarray | None = None,
) -> np.ndarray:
    """The fast term of the apertures made of the first k ``pixels``.

    Parameters
    ----------
    hours : HourImages
        The hours' mean images.
    groups : GroupImages
        The groups' mean images (the hours of a group, averaged by their cadences).
    signal : ndarray, shape (rows, cols)
        Mean flux per pixel [e-/s] (where a mean is missing).
    pixels : ndarray of int
        Flat indices of the pixels, in the order they join the aperture.
    cum_light, cum_var : ndarray
        Cumulative sums over ``pixels`` of the target's light [e-/s] and of one cadence's
        variance [(e-/s)^2].
    weightings : list of ndarray
        Linear weights of ``pixels`` giving the target's light scale per hour
        (:func:`~tessphot.photometry.aperture_variability.weightings`); the lesser
        term counts, as for the slow term.
    others : ndarray
        The other stars' mean light in ``pixels`` [e-/s]: where the target's own light
        dominates, its variability is taken with the pattern the data show.
    offsets : ndarray, shape (n_hours, 2), optional
        The target's position offsets per hour within its group (:func:`hour_offsets`); with
        them the motion is fitted out of every pixel.

    Returns
    -------
    ndarray
        Variance of the aperture's hourly flux [(e-/s)^2] that is neither white noise nor the
        target's own variability, for each k (never negative; zeros with fewer than two
        hours per group on average).
    """
    n_hours = hours.cadences.size
    n_groups = groups.cadences.size
    if n_hours < 2 * n_groups:
        return np.zeros(cum_light.size)
    means = groups.mean.reshape(n_groups, -1)[:, pixels]
    means = np.where(np.isfinite(means), means, signal.ravel()[pixels][None, :])
    change = hours.mean.reshape(n_hours, -1)[:, pixels] - means[hours.group]
    # An hour's missing pixel takes its group's mean: it varies by nothing.
    change[~np.isfinite(change)] = 0.0
    # Each group's hourly changes sum to nothing; each motion fit takes one more.
    independent = n_hours - n_groups
    if offsets is not None and np.isfinite(offsets).all():
        moving = offsets[:, np.ptp(offsets, axis=0) > 0]
        normal = moving.T @ moving
        if moving.size and np.linalg.cond(normal) < 1e12:
            change -= moving @ np.linalg.solve(normal, moving.T @ change)
            independent -= moving.shape[1]
    white_hours = float(np.mean(1 / hours.cadences - 1 / groups.cadences[hours.group]))
    var = np.diff(cum_var, prepend=0.0)
    shared = shared_changes(change, var * white_hours, max(independent, 1))
    if shared is None:
        return np.zeros(cum_light.size)
    light = np.diff(cum_light, prepend=0.0)
    own_pixels = light >= np.clip(others, 0.0, None)
    fast = None
    for coefficients in weightings:
        variability = shared @ coefficients
        # The target's variability in its own pixels as the data show it (the PRF's shape
        # may err); in the others' pixels as predicted (a neighbour's change leaking into
        # ``variability`` must not be taken for the target's there).
        power = float(variability @ variability)
        pattern = light
        if power > 0:
            pattern = np.where(own_pixels, (variability @ shared) / power, light)
        left = np.cumsum(shared - variability[:, None] * pattern[None, :], axis=1)
        term = np.mean(left**2, axis=0)
        fast = term if fast is None else np.minimum(fast, term)
    return fast


def shared_changes(change: np.ndarray, white: np.ndarray, independent: int) -> np.ndarray | None:
    """What the pixels' hourly changes share beyond white noise (None: nothing).

    ``change`` (n_hours, n_pixels) are the changes, ``white`` each pixel's white-noise
    variance in them, ``independent`` how many of the hours are (less the fits taken out).
    Scaled to unit white noise, the changes' covariance between pixels has the eigenvalues
    of white noise (the Marchenko-Pastur law: up to ``sigma^2 (1 + sqrt(n_pixels /
    independent))^2``) and, above them, those of light changing in several
    pixels together: a neighbour's variability, the target's, a background error common to
    the pixels. Those components are kept, their variance less the white noise's (``sigma^2``
    from the eigenvalues below the edge, so the noise's level need not be known exactly).
    """
    n_hours, n_pixels = change.shape
    scale = np.sqrt(np.where(white > 0, white, np.inf))
    z = change / scale
    values, vectors = np.linalg.eigh(z.T @ z / n_hours)
    edge = (1 + np.sqrt(n_pixels / independent)) ** 2
    sigma2 = 1.0
    for _ in range(3):
        below = values <= FAST_EDGE_MARGIN * edge * sigma2
        if not below.any():
            break
        sigma2 = max(float(values[below].sum()) / (n_pixels - (~below).sum()), 1e-12)
    significant = values > FAST_EDGE_MARGIN * edge * sigma2
    if not significant.any():
        return None
    v = vectors[:, significant]
    shrink = np.sqrt(1 - sigma2 / values[significant])
    return ((z @ v) * shrink) @ v.T * scale


def accumulate_hours(
    sums: np.ndarray, counts: np.ndarray, frames: np.ndarray, hour: np.ndarray
) -> None:
    """Add a block's frames to the sums and counts of their hours (``hour`` -1: none).

    ``frames`` (n, rows, cols) of consecutive cadences; the hours of a block are runs.
    """
    use = np.flatnonzero(hour >= 0)
    if use.size == 0:
        return
    h = hour[use]
    # An hour holds a few cadences: their sum keeps the images' own precision.
    values = frames[use] if use.size < hour.size else np.array(frames)
    starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
    finite = np.isfinite(values)
    if finite.all():
        counts[h[starts]] += np.diff(np.r_[starts, h.size])[:, None, None]
    else:
        values[~finite] = 0
        counts[h[starts]] += np.add.reduceat(finite, starts, axis=0)
    sums[h[starts]] += np.add.reduceat(values, starts, axis=0)


def group_means(sums: np.ndarray, counts: np.ndarray, hour_group: np.ndarray, n_groups: int):
    """The groups' and the hours' mean images from the hours' sums and counts.

    ``hour_group`` is each hour's group, in order (the hours of a group follow each other).
    """
    g_sums = np.zeros((n_groups, *sums.shape[1:]))
    g_counts = np.zeros_like(g_sums)
    if hour_group.size:
        starts = np.flatnonzero(np.r_[True, hour_group[1:] != hour_group[:-1]])
        g_sums[hour_group[starts]] = np.add.reduceat(sums, starts, axis=0)
        g_counts[hour_group[starts]] = np.add.reduceat(counts, starts, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return g_sums / g_counts, sums / counts
