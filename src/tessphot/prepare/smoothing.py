"""Time smoothing of the background mesh: a local straight line or parabola per mesh box.

Each frame's mesh is replaced by a fit over a window of frames around it
(:func:`smooth_in_time`). The window never reaches across the orbit gap or another gap in
time (:func:`smoothing_window`): at the end of the series and at such a gap it is shifted
inwards and the fit is evaluated at the edge from one side, which follows a steep
scattered-light ramp where a window across the gap (a different ramp on the other side)
or a truncated mean would be biased.
"""

from __future__ import annotations

import math

import numpy as np

#: The time smoothing never reaches across a gap between consecutive frames longer than
#: one frame spacing plus this many half-windows of the smoothing [half-windows] (at 30-min
#: cadence and a 7-frame window: three or more missing frames, and always the orbit gap).
#: Each side of such a gap is a segment of its own, fitted up to its edge from its side only:
#: the sky at an orbit's end and the next one's start are different scattered-light ramps.
MAX_GAP_HALF_WINDOWS = 1.0


def smoothing_window(times: np.ndarray, k: int, half: int) -> tuple[int, int]:
    """Frames ``lo .. hi - 1`` whose meshes give frame ``k``'s smoothed background.

    The window of ``2 half + 1`` frames is centred on ``k`` and keeps its length where it
    meets the end of the series or a gap in time (:data:`MAX_GAP_HALF_WINDOWS`) by shifting
    away from it; it never reaches across such a gap (shorter where the segment is).
    Only the times within ``2 half`` frames of ``k`` are read (bounded cost per frame).

    Parameters
    ----------
    times : numpy.ndarray
        Mid-times of all frames, in order [d].
    k : int
        The frame.
    half : int
        Half-length of the smoothing window [frames].

    Returns
    -------
    tuple of int
        ``lo, hi`` (``hi`` exclusive).
    """
    n = len(times)
    a, b = max(k - 2 * half, 0), min(k + 2 * half + 1, n)
    step = np.diff(np.asarray(times[a:b], dtype=float))
    if step.size:
        spacing = np.nanmedian(step) if np.isfinite(step).any() else np.nan
        breaks = (
            a + 1 + np.flatnonzero(step > spacing * (1.0 + MAX_GAP_HALF_WINDOWS * max(half, 1)))
        )
        start = int(breaks[breaks <= k].max(initial=0))
        end = int(breaks[breaks > k].min(initial=n))
    else:
        start, end = 0, n
    lo = min(max(k - half, start), max(end - 2 * half - 1, start))
    return lo, min(lo + 2 * half + 1, end)


def smooth_in_time(
    meshes: np.ndarray,
    errors: np.ndarray,
    times: np.ndarray,
    valid: np.ndarray,
    k: int,
    half: int,
    curvature_sigma: float = math.inf,
    *,
    first: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Mesh of frame ``k`` from a fit over the frames ``k - half .. k + half``.

    Each mesh box gets a straight line, or a parabola where the window's curvature is
    significant (``|c| > curvature_sigma`` times its error from the per-frame mesh errors):
    the straight line averages the noise down over the whole window, the parabola follows
    the bend of a scattered-light ramp that a straight line over the window would cut.

    The window is :func:`smoothing_window`: shifted inwards at the ends of the series and at
    gaps in time, so the fit at an edge is a local straight line or parabola from one side
    (unbiased on a steep ramp, unlike a truncated mean), never across the orbit gap.

    Returns the smoothed mesh and its uncertainty (the fit's prediction error at frame k
    from the per-frame mesh errors).

    ``meshes`` and ``errors`` hold frame ``j`` at ``j - first``: the frames from ``first``
    on, which must include the window (``times`` and ``valid`` are every frame's).
    """
    lo, hi = smoothing_window(times, k, half)
    use = np.arange(lo, hi)[valid[lo:hi]]
    if use.size == 0:
        return np.full(meshes.shape[1:], np.nan), np.full(meshes.shape[1:], np.nan)
    # In 64 bits, whatever the meshes are held in.
    held = use - first
    window, window_err = meshes[held].astype(np.float64), errors[held].astype(np.float64)
    if use.size < 3:
        return window.mean(axis=0), np.sqrt((window_err**2).mean(axis=0) / use.size)
    dt = times[use] - times[k]
    y = window.reshape(use.size, -1)
    err2 = window_err.reshape(use.size, -1) ** 2

    def fit(degree: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Least squares with equal weights: the value at dt = 0 is the first coefficient.
        pinv = np.linalg.pinv(np.vander(dt, degree + 1, increasing=True))
        coef = pinv @ y
        var = (pinv**2) @ err2
        with np.errstate(divide="ignore", invalid="ignore"):
            return coef[0], var[0], np.abs(coef[-1]) / np.sqrt(var[-1])

    value, var, _ = fit(1)
    if use.size >= 4 and math.isfinite(curvature_sigma):
        q_value, q_var, significance = fit(2)
        bent = np.nan_to_num(significance, nan=0.0) > curvature_sigma
        value = np.where(bent, q_value, value)
        var = np.where(bent, q_var, var)
    return value.reshape(meshes.shape[1:]), np.sqrt(var).reshape(meshes.shape[1:])
