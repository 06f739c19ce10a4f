"""Jumps left in a corrected light curve: found, corrected and flagged.

A jump is a persistent step of a star's corrected flux that the common-mode correction did
not remove: a pixel's sensitivity changing, a star's own step at a momentum dump or across
a gap. A transit, an eclipse or a flare comes back to its level within hours and smooth
variability has no step, so a step is a jump only when the flux on each side of it stays
flat for much longer than a transit (``[correct.jumps] window``, a day).

The search (:func:`find_jumps`) runs on the usable cadences of the relative corrected flux
(``FLUX_CORR``: the corrector's model divided out):

1. the step between two consecutive usable cadences is a candidate when each side holds
   at least :data:`MIN_SIDE_FRACTION` of a window of data (``window`` of flux up to the
   first cadence, and from the second on);
2. its size is the difference of the sides' medians, its significance that size over its
   white-noise error ``sqrt(pi/2) sigma sqrt(1/n_before + 1/n_after)``, ``sigma`` the
   point-to-point scatter of the light curve (or of the two sides, when larger). A star's
   own red noise makes steps of every size: the significances are divided by their robust
   spread over the light curve when it exceeds 1 (white noise's), and a step across a gap
   by that of the steps over as long a time elsewhere (:func:`_scaled`);
3. the candidates are of two classes: the steps at a momentum dump (TESS quality bit 32) or
   across a gap of at least ``min_gap`` (a few, where jumps happen), and all the others.
   Each class gets half of ``false_alarm`` and a threshold, the normal deviate whose
   two-sided tail is that half over the class's candidates (Bonferroni: white noise gives a
   jump in at most a fraction ``false_alarm`` of light curves; far fewer, since the
   candidates' windows overlap and the tests below follow) -- the few candidates at dumps
   and gaps get the lower threshold;
4. one step makes a ridge of significant candidates as wide as the windows: only its peak
   counts, and is placed to the cadence by the split of the cadences between the two
   levels with the least absolute deviation; within :data:`SNAP_CADENCES` of a dump or a
   gap, at it;
5. there it is a jump when it persists: each side is flat, the medians of its ``blocks``
   blocks agreeing within their white-noise errors (their chi-square below what white
   noise exceeds with probability ``flat_probability``), and the step stands out of a
   straight line through both sides' blocks at the same probability (a slow trend moves the
   sides' levels apart while each side's blocks look flat). A transit, an eclipse, a
   sinusoid or a wander large enough to move a side's median moves its blocks more;
6. the most significant jump is corrected: the flux from just after the last usable
   cadence before the step on is shifted by its size (TASOC's additive constant, the
   difference from a multiplicative one being of second order), and the search is made
   again, at most ``max_jumps`` times.

:func:`jump_quality` flags the cadences at each jump (from the one after the last usable
cadence before it to the first usable one after) with
:data:`~tessphot.correct.quality.QUALITY_JUMP_ADDITIVE_CONSTANT`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from tessphot.config.correct import JumpSettings
from tessphot.correct.quality import QUALITY_JUMP_ADDITIVE_CONSTANT
from tessphot.correct.stats import SQRT2, ptp_sigma, robust_std
from tessphot.lightcurve.diagnostics import MAD_TO_SIGMA

#: A side's level needs at least this fraction of a full window of usable cadences.
MIN_SIDE_FRACTION = 0.5
#: A block's median counts in a side's flatness with at least this many cadences.
MIN_BLOCK_CADENCES = 5
#: Variance of the median of ``n`` Gaussian values is ``MEDIAN_VARIANCE sigma^2 / n``.
MEDIAN_VARIANCE = math.pi / 2.0
#: The two classes of candidates (dumps and gaps; the others) share ``false_alarm``.
CANDIDATE_CLASSES = 2
#: A step placed this close to a momentum dump or a gap [usable cadences] is put at it:
#: jumps happen there, and the placing of a step of two or three sigma errs by as much.
SNAP_CADENCES = 2
#: Most values held at once by the windows' medians (bounds the memory of 2-min data).
CHUNK_VALUES = 2_000_000
#: Hours in a day.
HOURS_PER_DAY = 24.0


@dataclass(frozen=True)
class Jump:
    """One jump found and corrected.

    Attributes
    ----------
    row : int
        First usable cadence at the later level (index of the light curve's rows).
    first : int
        First row shifted: the one after the last usable cadence before the step.
    size : float
        Later level minus the earlier one (the flux's units).
    significance : float
        The size over its white-noise error.
    at_dump, at_gap : bool
        The step is at a momentum dump, across a gap.
    """

    row: int
    first: int
    size: float
    significance: float
    at_dump: bool
    at_gap: bool


@dataclass
class _Steps:
    """Candidate steps: their sides (``[lo, hi)`` of the usable cadences) and significance."""

    before: tuple[np.ndarray, np.ndarray]
    after: tuple[np.ndarray, np.ndarray]
    #: The sides' medians and the step's significance (the difference over its error).
    level_before: np.ndarray
    level_after: np.ndarray
    z: np.ndarray
    #: Point-to-point white-noise sigma of the two sides (of the light curve, if larger).
    sigma: np.ndarray
    #: Both sides hold enough cadences.
    eligible: np.ndarray


def window_medians(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Median of ``values[lo[i]:hi[i]]`` for every ``i`` (NaN for an empty window)."""
    return _reduced(values, lo, hi, np.nanmedian)


def _reduced(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, reduce) -> np.ndarray:
    """``reduce(values[lo[i]:hi[i]])`` (a NaN-ignoring reduction) for every ``i``."""
    lo, hi = np.asarray(lo, dtype=np.intp), np.asarray(hi, dtype=np.intp)
    out = np.full(lo.size, np.nan)
    if lo.size == 0 or values.size == 0:
        return out
    width = max(int((hi - lo).max()), 1)
    step = max(1, CHUNK_VALUES // width)
    offsets = np.arange(width)
    for start in range(0, lo.size, step):
        part = slice(start, start + step)
        index = lo[part, None] + offsets
        inside = index < hi[part, None]
        window = np.where(inside, values[np.minimum(index, values.size - 1)], np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # empty windows: NaN
            out[part] = reduce(window, axis=1)
    return out


def _steps(
    y: np.ndarray, t: np.ndarray, end: np.ndarray, start: np.ndarray, settings: JumpSettings
) -> _Steps:
    """The steps between the flux up to times ``end`` and from times ``start`` on [d]."""
    window = settings.window / HOURS_PER_DAY
    before = (np.searchsorted(t, end - window, side="right"), np.searchsorted(t, end, "right"))
    after = (np.searchsorted(t, start, side="left"), np.searchsorted(t, start + window, "left"))
    n_before, n_after = before[1] - before[0], after[1] - after[0]
    cadence = float(np.median(np.diff(t)))
    needed = max(MIN_SIDE_FRACTION * window / cadence, settings.blocks * MIN_BLOCK_CADENCES)
    level_before, level_after = window_medians(y, *before), window_medians(y, *after)
    diffs = np.abs(np.diff(y))
    local = MAD_TO_SIGMA / SQRT2 * window_medians(diffs, before[0], np.maximum(after[1] - 1, 0))
    sigma = np.fmax(ptp_sigma(y), local)
    with np.errstate(all="ignore"):
        error = np.sqrt(MEDIAN_VARIANCE * (1.0 / n_before + 1.0 / n_after)) * sigma
        z = (level_after - level_before) / error
    eligible = (n_before >= needed) & (n_after >= needed) & np.isfinite(z)
    return _Steps(before, after, level_before, level_after, z, sigma, eligible)


def _spread(z: np.ndarray) -> float:
    """Robust spread of significances, at least 1 (white noise's)."""
    finite = z[np.isfinite(z)]
    return max(1.0, float(robust_std(finite))) if finite.size else 1.0


def _scaled(y: np.ndarray, t: np.ndarray, steps: _Steps, gaps: np.ndarray, settings) -> None:
    """Divide the significances by the spread of the star's own steps over the same time.

    A star's red noise makes steps of every size: the significances' robust spread over the
    light curve (1 for white noise) scales them. A step across a gap of a block or more
    spans the gap's time as well, over which the star's level wanders further: its spread
    is that of the steps over as long a time elsewhere (every cadence's, to the level a gap
    later; gaps of as many whole blocks share it).
    """
    plain = _spread(steps.z[steps.eligible & ~gaps])
    block = settings.window / HOURS_PER_DAY / settings.blocks
    spreads: dict[int, float] = {0: plain}
    for i in np.flatnonzero(gaps & steps.eligible):
        blocks = int((t[steps.after[0][i]] - t[steps.before[1][i] - 1]) // block)
        if blocks not in spreads:
            shifted = _steps(y, t, t, t + blocks * block, settings)
            spreads[blocks] = _spread(shifted.z[shifted.eligible])
        steps.z[i] /= spreads[blocks]
    steps.z[~gaps] /= plain


def _peaks(t: np.ndarray, z: np.ndarray, radius: float) -> np.ndarray:
    """The steps whose ``|z|`` is the largest within ``radius`` [d] of their time.

    One step gives a ridge of significant candidates as wide as the windows; its peak
    stands for it, so that when the peak's sides are not flat, no neighbour whose blocks
    happen to fall better is taken for a jump instead.
    """
    size = np.abs(z)
    lo = np.searchsorted(t, t - radius, side="left")
    hi = np.searchsorted(t, t + radius, side="right")
    return size >= _reduced(size, lo, hi, np.nanmax)


def _thresholds(special: np.ndarray, false_alarm: float) -> np.ndarray:
    """Each candidate's significance threshold (two-sided, Bonferroni within its class)."""
    out = np.empty(special.size)
    for members in (special, ~special):
        n = int(members.sum())
        if n:
            out[members] = stats.norm.isf(false_alarm / CANDIDATE_CLASSES / 2.0 / n)
    return out


@dataclass
class _Blocks:
    """The blocks of one side of a candidate step: medians, cadences, centres [d]."""

    medians: np.ndarray
    counts: np.ndarray
    centres: np.ndarray


def _blocks(y: np.ndarray, t: np.ndarray, edge: float, sign: int, settings) -> _Blocks:
    """The blocks (with enough cadences) of the side from time ``edge`` on (back: -1)."""
    width = settings.window / HOURS_PER_DAY / settings.blocks
    bounds = edge + sign * width * np.arange(settings.blocks + 1)
    ends = np.searchsorted(t, bounds, side="right" if sign < 0 else "left")
    lo, hi = (ends[1:], ends[:-1]) if sign < 0 else (ends[:-1], ends[1:])
    use = hi - lo >= MIN_BLOCK_CADENCES
    centres = (bounds[:-1] + bounds[1:]) / 2.0
    return _Blocks(window_medians(y, lo[use], hi[use]), (hi - lo)[use], centres[use])


def _flat(side: _Blocks, sigma: float, probability: float) -> bool:
    """Whether a side's block medians agree within their white-noise errors (chi-square)."""
    if side.counts.size < 2:
        return False
    weights = side.counts / (MEDIAN_VARIANCE * sigma**2)
    mean = np.sum(weights * side.medians) / np.sum(weights)
    chi2 = float(np.sum(weights * (side.medians - mean) ** 2))
    return chi2 <= stats.chi2.isf(probability, side.counts.size - 1)


def _beyond_trend(before: _Blocks, after: _Blocks, sigma: float, probability: float) -> bool:
    """Whether the step stands out of a straight line through both sides' blocks.

    A slow trend moves the two sides' levels apart while each side's blocks, a few sigma
    apart at most, pass for flat; the step fitted beside a common slope is what a trend
    cannot give (significant at ``probability``, two-sided).
    """
    medians = np.concatenate([before.medians, after.medians])
    weights = np.sqrt(np.concatenate([before.counts, after.counts]) / MEDIAN_VARIANCE) / sigma
    x = np.concatenate([before.centres, after.centres])
    x = x - x.mean()
    step = np.concatenate([np.zeros(before.counts.size), np.ones(after.counts.size)])
    design = np.column_stack([np.ones(x.size), x, step]) * weights[:, None]
    if x.size <= design.shape[1]:
        return False
    coefficients, *_ = np.linalg.lstsq(design, medians * weights, rcond=None)
    error = math.sqrt(np.linalg.inv(design.T @ design)[2, 2])
    return abs(coefficients[2]) > error * stats.norm.isf(probability / 2.0)


def _persistent(y: np.ndarray, t: np.ndarray, k: int, sigma: float, settings) -> bool:
    """Whether the step before usable cadence ``k`` has flat sides and is no trend's."""
    before = _blocks(y, t, t[k - 1], -1, settings)
    after = _blocks(y, t, t[k], +1, settings)
    p = settings.flat_probability
    return (
        _flat(before, sigma, p)
        and _flat(after, sigma, p)
        and _beyond_trend(before, after, sigma, p)
    )


def _refined(y: np.ndarray, steps: _Steps, k: int, options: np.ndarray) -> int:
    """The cadence among ``options`` where the step found before ``k`` fits best.

    The windows' medians barely change when the step moves by a few cadences, so the
    significance peaks anywhere on a plateau around it; the split of the two windows'
    cadences between the two levels that leaves the least absolute deviation places it to
    the cadence (for a step of a few sigma).
    """
    i = k - 1
    lo, hi = int(steps.before[0][i]), int(steps.after[1][i])
    segment = y[lo:hi]
    before = np.concatenate([[0.0], np.cumsum(np.abs(segment - steps.level_before[i]))])
    after = np.concatenate([[0.0], np.cumsum(np.abs(segment - steps.level_after[i]))])
    cost = before + (after[-1] - after)  # cost[s]: the step before cadence lo + s
    options = options[(options > lo) & (options < hi)]
    return int(options[np.argmin(cost[options - lo])]) if options.size else k


def _best_jump(
    y: np.ndarray, t: np.ndarray, rows: np.ndarray, dumps, settings: JumpSettings
) -> Jump | None:
    """The most significant jump of one pass (None: none).

    Candidate ``i`` is the step before usable cadence ``k = i + 1``.
    """
    k = np.arange(1, t.size)
    steps = _steps(y, t, t[k - 1], t[k], settings)
    at_gap = (t[k] - t[k - 1]) * HOURS_PER_DAY >= settings.min_gap
    at_dump = np.zeros(k.size, dtype=bool)
    if dumps is not None:
        # A dump on a row from the last usable cadence before the step to the first after.
        count = np.concatenate([[0], np.cumsum(np.asarray(dumps, dtype=bool))])
        at_dump = count[rows[k] + 1] - count[rows[k - 1]] > 0
    _scaled(y, t, steps, at_gap, settings)
    special = at_dump | at_gap
    eligible = steps.eligible
    threshold = np.full(k.size, np.inf)
    threshold[eligible] = _thresholds(special[eligible], settings.false_alarm)
    block = settings.window / HOURS_PER_DAY / settings.blocks
    peaks = _peaks(t[k], np.where(eligible, steps.z, np.nan), block)
    significant = np.flatnonzero((np.abs(steps.z) > threshold) & peaks)
    for i in sorted(significant, key=lambda j: -abs(steps.z[j])):
        best = _refined(y, steps, k[i], k[eligible])
        snap = k[special & eligible & (np.abs(k - best) <= SNAP_CADENCES)]
        if snap.size:  # jumps happen at dumps and gaps
            best = int(snap[np.argmin(np.abs(snap - best))])
        j = best - 1
        if not _persistent(y, t, best, steps.sigma[j], settings):
            continue
        return Jump(
            row=int(rows[best]),
            first=int(rows[best - 1]) + 1,
            size=float(steps.level_after[j] - steps.level_before[j]),
            significance=float(steps.z[j]),
            at_dump=bool(at_dump[j]),
            at_gap=bool(at_gap[j]),
        )
    return None


def find_jumps(
    flux: np.ndarray,
    time: np.ndarray,
    *,
    usable: np.ndarray,
    dumps: np.ndarray | None = None,
    settings: JumpSettings | None = None,
) -> list[Jump]:
    """The jumps of a corrected light curve, in the order found (see the module).

    Parameters
    ----------
    flux : ndarray, shape (n,)
        Relative corrected flux (any unit: ``FLUX_CORR`` [ppm]), NaN where missing.
    time : ndarray, shape (n,)
        Times of the rows [d].
    usable : ndarray of bool, shape (n,)
        Rows whose flux counts (good quality, finite, not an outlier).
    dumps : ndarray of bool, shape (n,), optional
        Rows at momentum dumps.
    settings : JumpSettings, optional
        ``[correct.jumps]`` (None: the defaults); ``enabled`` is not looked at.

    Returns
    -------
    list of Jump
        Each jump's size as measured after the earlier ones were corrected
        (:func:`remove_jumps` applies them all).
    """
    settings = settings if settings is not None else JumpSettings()
    flux, time = np.asarray(flux, dtype=float), np.asarray(time, dtype=float)
    usable = np.asarray(usable, dtype=bool) & np.isfinite(flux) & np.isfinite(time)
    rows = np.flatnonzero(usable)
    rows = rows[np.argsort(time[rows], kind="stable")]
    y, t = flux[rows], time[rows]
    jumps: list[Jump] = []
    if y.size < 2 or not ptp_sigma(y) > 0:
        return jumps
    while len(jumps) < settings.max_jumps:
        jump = _best_jump(y, t, rows, dumps, settings)
        if jump is None:
            break
        jumps.append(jump)
        y = np.where(rows >= jump.first, y - jump.size, y)
    return jumps


def remove_jumps(flux: np.ndarray, jumps: list[Jump]) -> np.ndarray:
    """The flux with every jump removed: each row from a jump's ``first`` on shifted back."""
    out = np.array(flux, dtype=float)
    for jump in jumps:
        out[jump.first :] -= jump.size
    return out


def jump_quality(n: int, jumps: list[Jump]) -> np.ndarray:
    """``QUALITY`` bits of ``n`` rows: the rows at each jump (``first`` to ``row``)."""
    quality = np.zeros(n, dtype=np.int32)
    for jump in jumps:
        quality[jump.first : jump.row + 1] |= QUALITY_JUMP_ADDITIVE_CONSTANT
    return quality
