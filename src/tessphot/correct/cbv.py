"""Cotrending basis vectors (CBVs) of one sector, camera, CCD, cadence and CBV area.

:func:`build_cbvs` makes them from the raw fluxes of the area's stars, in the spirit of
PDC-MAP and TASOC (each step in its module):

1. relative fluxes (``flux / median - 1``), stars and cadences with too much missing left
   out, small gaps filled for the SVD (:mod:`tessphot.correct.select`);
2. **spikes**: on each momentum dump's cadence(s), every star's departure from the level just
   after it is split off; the significant singular vectors of those departures (of the
   chosen stars) are the spike vectors, zero on every other cadence;
3. the quiet, mutually correlated stars chosen (:func:`tessphot.correct.select.choose_stars`);
4. a robust SVD of their noise-whitened relative fluxes, its number of vectors chosen by
   significance against white noise and against the stars' own time series shifted at
   random (:mod:`tessphot.correct.svd`).

The result, :class:`CBVSet`, holds unit-norm vectors over the cadences used (NaN on the
others), ready for :func:`tessphot.correct.fit.fit_cbvs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.signal import savgol_filter

from tessphot.config.correct import CBVSettings
from tessphot.correct.select import (
    choose_stars,
    normalise,
    spike_windows,
    split_spikes,
)
from tessphot.correct.stats import ptp_sigma
from tessphot.correct.svd import leading_count, robust_svd, top_svd, whitening_weights

#: What :meth:`CBVSet.design` can give.
DESIGN_PARTS = ("all", "vectors", "spikes")


#: Polynomial order of the vectors' smoothing (Savitzky-Golay).
SMOOTH_ORDER = 2
#: Narrowest smoothing window worth applying [cadences].
SMOOTH_MIN_WINDOW = 5
#: A gap longer than this many cadences breaks a run of the vectors' smoothing.
BREAK_CADENCES = 1.5


@dataclass
class CBVSet:
    """Cotrending basis vectors of one CBV area, with what they were made from.

    Attributes
    ----------
    cadenceno : ndarray of int, shape (n,)
        Cadence numbers.
    time : ndarray, shape (n,)
        Mid-exposure times [TJD, d].
    vectors : ndarray, shape (n, k)
        Single-scale vectors, unit norm over the cadences used, NaN on the others.
    spikes : ndarray, shape (n, s)
        Spike vectors: zero but on momentum-dump cadences, NaN where ``vectors`` are.
    gap : ndarray of bool, shape (n,)
        Cadences left out of the vectors (bad quality, too few stars).
    sector, camera, ccd : int
        Where the vectors are from.
    cadence : float
        Cadence of the data [s].
    cbv_area : int
        The CBV area (todo's ``cbv_area``: 100 camera + 10 CCD + ring).
    n_stars : int
        Stars the vectors were made from (after the selection and the clipping).
    singular_values : ndarray
        Singular values of the whitened light curves (every one computed, at least ``k``).
    explained_variance : ndarray
        Fraction of the whitened light curves' power in each of them.
    threshold : float
        Singular value above which a vector was kept.
    spike_singular_values : ndarray
        Singular values of the spikes' matrix.
    settings : dict
        The ``[correct.cbv]`` settings used.
    """

    cadenceno: np.ndarray
    time: np.ndarray
    vectors: np.ndarray
    spikes: np.ndarray
    gap: np.ndarray
    sector: int = 0
    camera: int = 0
    ccd: int = 0
    cadence: float = 0.0
    cbv_area: int = 0
    n_stars: int = 0
    singular_values: np.ndarray = field(default_factory=lambda: np.empty(0))
    explained_variance: np.ndarray = field(default_factory=lambda: np.empty(0))
    threshold: float = float("nan")
    spike_singular_values: np.ndarray = field(default_factory=lambda: np.empty(0))
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def n_vectors(self) -> int:
        """Number of single-scale vectors."""
        return int(self.vectors.shape[1])

    @property
    def n_spikes(self) -> int:
        """Number of spike vectors."""
        return int(self.spikes.shape[1])

    def design(self, which: str = "all") -> np.ndarray:
        """The vectors as the columns of a design matrix.

        Parameters
        ----------
        which : str
            ``"all"`` (single-scale vectors, then spike vectors), ``"vectors"`` or
            ``"spikes"``.

        Returns
        -------
        ndarray, shape (n, m)
            NaN on the cadences left out (:attr:`gap`).
        """
        if which not in DESIGN_PARTS:
            raise ValueError(f"which must be one of {', '.join(DESIGN_PARTS)}, not {which!r}")
        parts = {"vectors": [self.vectors], "spikes": [self.spikes]}
        return np.hstack(parts.get(which, [self.vectors, self.spikes]))


def _spike_vectors(
    components: np.ndarray, weights: np.ndarray, settings: CBVSettings, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Significant spike vectors (over the spike cadences) and the singular values."""
    n, p = components.shape
    if settings.max_spikes == 0 or p == 0 or n < settings.min_stars:
        return np.empty((p, 0)), np.empty(0)
    whitened = weights[:, None] * components
    u, s, vt = top_svd(whitened, settings.max_spikes, seed)
    k = leading_count(s, settings.significance * (np.sqrt(n) + np.sqrt(p)))
    signs = np.where(u[:, :k].sum(axis=0) < 0, -1.0, 1.0)
    return (vt[:k] * signs[:, None]).T, s


def _on_cadences(values: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Columns over the used cadences spread onto every cadence (NaN on the others)."""
    out = np.full((used.size, values.shape[1]), np.nan)
    out[used] = values
    return out


def smooth_vectors(
    vectors: np.ndarray,
    time: np.ndarray,
    cadence: float,
    hours: float,
    *,
    dumps: np.ndarray | None = None,
) -> np.ndarray:
    """The vectors smoothed within each run of consecutive cadences, then orthonormal again.

    The systematics the vectors stand for are slow between their discontinuities (the
    momentum dumps, the orbit gap, cadences left out), while the vectors carry the white
    noise of the stars they were made from, which their fit would add to every light curve
    (to the brightest ones' most). A
    Savitzky-Golay filter (quadratic, ``hours`` wide) on each run keeps ramps and steps and
    removes most of that noise.

    Parameters
    ----------
    vectors : ndarray, shape (n, k)
        The vectors on the cadences they are defined on.
    time : ndarray, shape (n,)
        Those cadences' times [d].
    cadence : float
        Cadence [s] (0: from the times).
    hours : float
        Width of the filter [h] (0: no smoothing).
    dumps : ndarray of bool, shape (n,), optional
        Momentum-dump cadences: runs break before and after each.

    Returns
    -------
    ndarray, shape (n, k)
    """
    if hours <= 0 or vectors.shape[1] == 0 or vectors.shape[0] < 2:
        return vectors
    step = cadence / 86400.0 if cadence > 0 else float(np.median(np.diff(time)))
    window = int(round(hours / 24.0 / step)) | 1  # odd
    if window < SMOOTH_MIN_WINDOW:
        return vectors
    breaks = set(np.flatnonzero(np.diff(time) > BREAK_CADENCES * step) + 1)
    if dumps is not None:
        for p in np.flatnonzero(dumps):
            breaks.update((int(p), int(p) + 1))
    breaks = sorted(b for b in breaks if 0 < b < vectors.shape[0])
    smoothed = vectors.copy()
    for run in np.split(np.arange(vectors.shape[0]), breaks):
        if run.size > SMOOTH_ORDER + 1:
            width = min(window, run.size if run.size % 2 else run.size - 1)
            if width > SMOOTH_ORDER:
                smoothed[run] = savgol_filter(vectors[run], width, SMOOTH_ORDER, axis=0)
    q, r = np.linalg.qr(smoothed)
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def build_cbvs(
    flux: np.ndarray,
    *,
    good: np.ndarray,
    cadenceno: np.ndarray,
    time: np.ndarray,
    dumps: np.ndarray | None = None,
    settings: CBVSettings | None = None,
    sector: int = 0,
    camera: int = 0,
    ccd: int = 0,
    cadence: float = 0.0,
    cbv_area: int = 0,
) -> CBVSet:
    """Cotrending basis vectors of the stars of one CBV area.

    Parameters
    ----------
    flux : ndarray, shape (n_stars, n_cadences)
        Raw flux of the stars [e-/s], NaN where missing.
    good : ndarray of bool, shape (n_cadences,)
        Cadences usable (quality); the others are left out of the vectors (NaN).
    cadenceno : ndarray of int, shape (n_cadences,)
        Cadence numbers.
    time : ndarray, shape (n_cadences,)
        Mid-exposure times [TJD, d].
    dumps : ndarray of bool, shape (n_cadences,), optional
        Momentum-dump cadences (None: no spike vectors).
    settings : CBVSettings, optional
        ``[correct.cbv]`` (None: the defaults).
    sector, camera, ccd, cadence, cbv_area
        Where the stars are (metadata of the result; ``cadence`` in seconds).

    Returns
    -------
    CBVSet
        Without vectors when too few stars are usable (``min_stars``).
    """
    settings = settings if settings is not None else CBVSettings()
    flux = np.atleast_2d(np.asarray(flux, dtype=float))
    time = np.asarray(time, dtype=float)
    good = np.asarray(good, dtype=bool) & np.isfinite(time)
    dumps = np.zeros(good.size, bool) if dumps is None else np.asarray(dumps, dtype=bool)
    rng = np.random.default_rng(settings.seed)
    data = normalise(flux, good, time, settings)
    values, used = data.values, data.used
    components, positions = split_spikes(values, spike_windows(dumps, used, settings))
    spike_values, spike_s = np.empty((len(positions), 0)), np.empty(0)
    decomposition = None
    if values.shape[0] >= settings.min_stars:
        rows = choose_stars(values, settings, rng)
        weights = whitening_weights(ptp_sigma(values[rows]), settings.noise_floor_quantile)
        spike_values, spike_s = _spike_vectors(
            components[rows], weights, settings, int(rng.integers(2**31))
        )
        decomposition = robust_svd(values[rows], weights, settings, rng)
    spikes = np.zeros((int(used.sum()), spike_values.shape[1]))
    spikes[positions] = spike_values
    vectors = decomposition.vectors if decomposition else np.empty((int(used.sum()), 0))
    vectors = smooth_vectors(vectors, time[used], cadence, settings.smooth_hours, dumps=dumps[used])
    return CBVSet(
        cadenceno=np.asarray(cadenceno, dtype=np.int64),
        time=time,
        vectors=_on_cadences(vectors, used),
        spikes=_on_cadences(spikes, used),
        gap=~used,
        sector=int(sector),
        camera=int(camera),
        ccd=int(ccd),
        cadence=float(cadence),
        cbv_area=int(cbv_area),
        n_stars=len(decomposition.rows) if decomposition else 0,
        singular_values=decomposition.singular_values if decomposition else np.empty(0),
        explained_variance=decomposition.explained if decomposition else np.empty(0),
        threshold=decomposition.threshold if decomposition else float("nan"),
        spike_singular_values=spike_s,
        settings=settings.to_dict(),
    )
