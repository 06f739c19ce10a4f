"""The light curves the vectors are made from: normalised, gaps filled, spikes split off, chosen.

Each star's flux is divided by its median over the good cadences, minus one (relative flux).
Stars missing too many good cadences are not used; good cadences missing too many stars are
left out of the vectors. Small gaps are filled by linear interpolation in time, for the SVD
only. The stars that make the vectors are the quiet and mutually correlated ones: the
quietest ``quiet_fraction`` by the robust standard deviation of their relative flux, then the
``correlated_fraction`` of those with the largest median absolute correlation with the
others (each against a random sample of ``correlation_sample`` stars: the full matrix of a
CCD's 5 000 stars is not needed to rank them).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from tessphot.config.correct import CBVSettings
from tessphot.correct.stats import robust_std


@dataclass
class Normalised:
    """Relative fluxes of the usable stars on the cadences used.

    Attributes
    ----------
    values : ndarray, shape (n_usable, n_used)
        Relative flux (``flux / median - 1``), gaps filled.
    stars : ndarray of int
        Index of each row in the stars given.
    used : ndarray of bool, shape (n_cadences,)
        The cadences the vectors are defined on.
    """

    values: np.ndarray
    stars: np.ndarray
    used: np.ndarray


def normalise(
    flux: np.ndarray, good: np.ndarray, time: np.ndarray, settings: CBVSettings
) -> Normalised:
    """Relative fluxes of the stars with enough data, on the cadences with enough stars.

    Parameters
    ----------
    flux : ndarray, shape (n_stars, n_cadences)
        Raw flux [e-/s], NaN where missing.
    good : ndarray of bool, shape (n_cadences,)
        Cadences usable (quality).
    time : ndarray, shape (n_cadences,)
        Time stamps [d] (for the interpolation of gaps).
    settings : CBVSettings
        ``max_nan_fraction`` and ``cadence_nan_fraction``.
    """
    good = good & np.isfinite(time)
    if not good.any() or flux.shape[0] == 0:
        return Normalised(np.empty((0, int(good.sum()))), np.empty(0, int), good)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN stars
        median = np.nanmedian(flux[:, good], axis=1)
        relative = flux[:, good] / median[:, None] - 1.0
    missing = ~np.isfinite(relative)
    usable = (median > 0) & np.isfinite(median)
    usable &= missing.mean(axis=1) <= settings.max_nan_fraction
    stars = np.flatnonzero(usable)
    relative, missing = relative[stars], missing[stars]
    enough = missing.mean(axis=0) <= settings.cadence_nan_fraction if len(stars) else good[good]
    used = good.copy()
    used[np.flatnonzero(good)[~enough]] = False
    relative, missing = relative[:, enough], missing[:, enough]
    fill_gaps(relative, missing, time[used])
    return Normalised(relative, stars, used)


def fill_gaps(values: np.ndarray, missing: np.ndarray, time: np.ndarray) -> None:
    """Fill the missing values of each row by linear interpolation in time (in place).

    Parameters
    ----------
    values : ndarray, shape (n_rows, n_times)
        The rows.
    missing : ndarray of bool
        Where a row is missing.
    time : ndarray, shape (n_times,)
        Times of the columns.
    """
    for row in np.flatnonzero(missing.any(axis=1)):
        have = ~missing[row]
        values[row, ~have] = np.interp(time[~have], time[have], values[row, have])


def spike_windows(dumps: np.ndarray, used: np.ndarray, settings: CBVSettings) -> list[tuple]:
    """Where each momentum dump's spike may be, and the cadences of its baseline level.

    Parameters
    ----------
    dumps : ndarray of bool, shape (n_cadences,)
        Momentum-dump cadences.
    used : ndarray of bool, shape (n_cadences,)
        The cadences the vectors are defined on.
    settings : CBVSettings
        ``spike_span`` and ``spike_baseline``.

    Returns
    -------
    list of (ndarray, ndarray)
        Per dump on a used cadence: positions among the used cadences of its spike window
        (the dump's cadence and the ``spike_span - 1`` next used ones) and of its baseline
        (the ``spike_baseline`` used cadences after the window, or before it at the end).
    """
    positions = np.flatnonzero(dumps[used])
    m = int(used.sum())
    windows = []
    for p in positions:
        window = np.arange(p, min(p + settings.spike_span, m))
        after = np.arange(window[-1] + 1, min(window[-1] + 1 + settings.spike_baseline, m))
        before = np.arange(max(p - settings.spike_baseline, 0), p)
        baseline = after if len(after) else before
        if len(baseline):
            windows.append((window, baseline))
    return windows


def split_spikes(values: np.ndarray, windows: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """Split the spikes off the light curves (in place): each spike cadence set to its baseline.

    Parameters
    ----------
    values : ndarray, shape (n_rows, n_used)
        Relative fluxes; the spike cadences are replaced by their baseline level.
    windows : list
        From :func:`spike_windows`.

    Returns
    -------
    components : ndarray, shape (n_rows, n_spike_cadences)
        Each star's departure from its baseline on every spike cadence.
    positions : ndarray of int
        Positions of those cadences among the used cadences.
    """
    parts, positions = [], []
    for window, baseline in windows:
        level = np.median(values[:, baseline], axis=1)[:, None]
        window = window[~np.isin(window, positions)] if positions else window
        parts.append(values[:, window] - level)
        values[:, window] = level
        positions.extend(window.tolist())
    if not parts:
        return np.empty((values.shape[0], 0)), np.empty(0, int)
    return np.hstack(parts), np.asarray(positions, int)


def choose_stars(values: np.ndarray, settings: CBVSettings, rng: np.random.Generator) -> np.ndarray:
    """Rows of the quiet and mutually correlated stars that make the vectors.

    Parameters
    ----------
    values : ndarray, shape (n_rows, n_used)
        Relative fluxes, gaps filled and spikes split off.
    settings : CBVSettings
        ``quiet_fraction``, ``correlated_fraction`` and ``correlation_sample``.
    rng : numpy.random.Generator
        For the sample of stars each is correlated with.

    Returns
    -------
    ndarray of int
        The rows chosen, sorted.
    """
    n = values.shape[0]
    if n < 2:
        return np.arange(n)
    spread = robust_std(values, axis=1)
    quiet = np.flatnonzero(spread <= np.quantile(spread, settings.quiet_fraction))
    centred = values[quiet] - values[quiet].mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1)
    norms[norms == 0] = np.inf
    unit = centred / norms[:, None]
    sample = rng.choice(
        len(quiet), size=min(settings.correlation_sample, len(quiet)), replace=False
    )
    correlation = np.abs(unit @ unit[sample].T)
    correlation[sample, np.arange(len(sample))] = np.nan
    score = np.nanmedian(correlation, axis=1) if len(sample) > 1 else np.ones(len(quiet))
    keep = max(1, int(round(settings.correlated_fraction * len(quiet))))
    return np.sort(quiet[np.argsort(-score, kind="stable")[:keep]])
