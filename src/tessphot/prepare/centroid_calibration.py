"""Star positions from flux-weighted centroids: their bias calibrated with the PRF.

A centroid box's flux-weighted centroid moves less than the star, by an amount that depends
on the sub-pixel phase and on the neighbours' light in the box. :func:`calibrate_centroids`
inverts the PRF's own centroid in the same box, tabulated exactly at the PRF's interpolation
knots (:mod:`tessphot.prf.knots`), for the star and each neighbour that matters.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from tessphot.prf import HALF_WIDTH
from tessphot.prf.focus import FocusedPRF
from tessphot.prf.knots import bilinear, interpolation_knots

#: A star is taken to be at most this many times as far from its box's centre as its
#: measured centroid (a box centroid moves less than the star: ~0.85 near the centre, less
#: towards the edge) [dimensionless] ...
RESPONSE_ALLOWANCE = 2.0
#: ... and the tables reach this much beyond what the measured centroids and the allowance
#: give (noise, and neighbours pulling a centroid outwards); a star still found beyond them
#: is inverted again with tables up to the box's edge [px].
CALIBRATION_MARGIN = 0.25
#: Most fixed-point iterations inverting the centroid response (each shrinks the error by
#: the response's shortfall: ~10x near the box's centre, less towards its edge) ...
CALIBRATION_ITERATIONS = 60
#: ... stopped once no position changes by more than this [px].
CALIBRATION_TOLERANCE = 1e-7


def _prf_moments(prf, rows, cols, node_rows, node_cols, box_rows, box_cols, half):
    """Flux-weighted sums of noise-free PRF images of stars at ``(rows, cols)``.

    In boxes of half-width ``half`` about integer pixels ``(box_rows, box_cols)``: the sums
    of the light times its row, times its column, and of the light; their ratios are the
    flux-weighted centroids. Each sum is exactly bilinear in the star's position between
    the PRF's interpolation knots (:mod:`tessphot.prf.knots`).
    """
    stamps, row0, col0 = prf.stamps(rows, cols, node_rows, node_cols)
    k = np.arange(2 * HALF_WIDTH + 1)
    pr = row0[:, None] + k
    pc = col0[:, None] + k
    in_r = np.abs(pr - box_rows[:, None]) <= half
    in_c = np.abs(pc - box_cols[:, None]) <= half
    w = stamps * (in_r[:, :, None] & in_c[:, None, :])
    return (w.sum(axis=2) * pr).sum(axis=1), (w.sum(axis=1) * pc).sum(axis=1), w.sum(axis=(1, 2))


#: Neighbours with less light than this fraction of the star's in its centroid box are left
#: out of the calibration: they change the centroid's response by about as much (1e-3 of a
#: 0.1-px motion is 0.1 mpx).
NEIGHBOUR_MIN_LIGHT = 1e-3


def _neighbours(prf, row, col, own_light, box_row, box_col, half, catalogued):
    """The catalogued stars whose light in a star's centroid box matters: (rows, cols, flux).

    ``catalogued``: the stars that can reach the box (:func:`_near_boxes`); the star itself
    and those whose light in the box is under :data:`NEIGHBOUR_MIN_LIGHT` of the star's
    (``own_light`` [e-/s]) are left out. None without a catalogue or such neighbours.
    """
    if catalogued is None:
        return None
    rows_o, cols_o, flux_o = catalogued
    other = np.hypot(rows_o - row, cols_o - col) > 1e-3  # not the star itself
    r, c, f = rows_o[other], cols_o[other], flux_o[other]
    if not r.size:
        return None
    light = (
        f
        * _prf_moments(prf, r, c, r, c, np.full(r.size, box_row), np.full(r.size, box_col), half)[2]
    )
    keep = light >= NEIGHBOUR_MIN_LIGHT * own_light
    return (r[keep], c[keep], f[keep]) if keep.any() else None


def _neighbour_table(prf, box_row, box_col, half, neighbours, span):
    """The neighbours' sums in a star's centroid box, tabulated over shifts.

    ``neighbours``: their (rows, cols, flux) (:func:`_neighbours`; None: none); ``span`` is
    the (row, column) range of common shifts of every star [px]. A neighbour's sums (light
    times row, times column, light) are bilinear between its own PRF interpolation knots,
    so each is tabulated at its knots and interpolates exactly (:func:`_neighbour_sums`);
    one table on the union of every neighbour's knots would grow with the square of their
    number. Returns a list of ``(knots_row, knots_col, tables)``, ``tables`` of shape
    (n_row, n_col, 3) holding the neighbour's flux times its sums, or None.
    """
    if neighbours is None:
        return None
    (r_lo, c_lo), (r_hi, c_hi) = span
    grids = []
    for x, y in zip(neighbours[0], neighbours[1], strict=True):
        knots_r = interpolation_knots(np.array([x + r_lo, x + r_hi])) - x
        knots_c = interpolation_knots(np.array([y + c_lo, y + c_hi])) - y
        grids.append((x, y, knots_r, knots_c))
    # Every neighbour's grid of positions in one call.
    at_r = np.concatenate([x + np.repeat(kr, kc.size) for x, _, kr, kc in grids])
    at_c = np.concatenate([y + np.tile(kc, kr.size) for _, y, kr, kc in grids])
    node_r = np.concatenate([np.full(kr.size * kc.size, x) for x, _, kr, kc in grids])
    node_c = np.concatenate([np.full(kr.size * kc.size, y) for _, y, kr, kc in grids])
    m = at_r.size
    moments = np.stack(
        _prf_moments(
            prf, at_r, at_c, node_r, node_c, np.full(m, box_row), np.full(m, box_col), half
        )
    )
    tables, start = [], 0
    for (_, _, kr, kc), flux in zip(grids, neighbours[2], strict=True):
        n = kr.size * kc.size
        sums = moments[:, start : start + n].reshape(3, kr.size, kc.size)
        tables.append((kr, kc, _last_axis(flux * sums)))
        start += n
    return tables


def _neighbour_sums(tables, shift: np.ndarray) -> np.ndarray:
    """The neighbours' (sum_r, sum_c, total) at common shifts ``shift`` (n, 2) [px].

    ``tables`` as returned by :func:`_neighbour_table`; each neighbour's shift is kept on
    its table.
    """
    out = np.zeros((len(shift), 3))
    for kr, kc, tab in tables:
        dr = np.clip(shift[:, 0], kr[0], kr[-1])
        dc = np.clip(shift[:, 1], kc[0], kc[-1])
        out += bilinear(kr, kc, tab, dr, dc)
    return out


def _last_axis(sums: np.ndarray) -> np.ndarray:
    """Tables (3, n_row, n_col) as (n_row, n_col, 3): the three interpolated in one call."""
    return np.ascontiguousarray(np.moveaxis(sums, 0, -1))


def calibrate_centroids(
    centroids: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    prf,
    half: int,
    *,
    flux: np.ndarray | None = None,
    catalogued: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Star positions from the flux-weighted centroids of :func:`measure_centroids`.

    A flux-weighted centroid in a small box is biased: the wings beyond the box pull it
    towards the box's centre, so it moves by only ~0.9 px when the star moves by 1 px, and
    the bias depends on the sub-pixel phase. For each star the flux-weighted sums that give the
    PRF's centroid in the same box are tabulated at the PRF's interpolation knots over the
    positions its measured centroids can stand for (:func:`_calibration_span`), where
    bilinear interpolation of them is exact (a cubic spline on a 0.1-px grid left errors of
    1-2 % in the response, ~1 mpx on a 0.1-px drift), and the measured centroids are
    inverted through their ratio by fixed-point iteration. A star found beyond its tables
    is inverted again with tables up to the box's edge.

    Parameters
    ----------
    centroids : ndarray, shape (n_frames, n_stars, 2)
        Measured centroids (row, column) [science px]; NaN where not measured.
    rows, cols : ndarray, shape (n_stars,)
        The catalogue positions the boxes were placed on (boxes centred on their nearest
        integer pixel) [science px].
    prf : tessphot.prf.PRFModel
        The PRF; a :class:`~tessphot.prf.focus.FocusedPRF` (one scale per frame) gives each
        frame its own: the tables are made at its anchor scales and interpolated between
        them frame by frame, as its stamps are (a 2 % focus change moved the positions of
        stars 1.4 px from their box's centre by 13 mpx).
    half : int
        Half-width of the centroid boxes [px].
    flux : ndarray, shape (n_stars,), optional
        Catalogue fluxes of the stars [e-/s] (with ``catalogued``).
    catalogued : (rows, cols, flux), optional
        The catalogued stars near the region [science px, e-/s]. The light of the other
        stars in a box (a neighbour holding 1-5 % of the box's light lowered the centroid's
        response by ~1.5 %) is part of the model: their sums as they move with the star,
        tabulated exactly (:func:`_neighbours`, :func:`_neighbour_table`).

    Returns
    -------
    ndarray, shape (n_frames, n_stars, 2)
        Positions; NaN where the centroid is NaN.
    """
    centroids = np.asarray(centroids, dtype=float)
    out = np.full(centroids.shape, np.nan)
    box = np.rint(np.column_stack([rows, cols])).astype(int)
    near = _near_boxes(box, half, catalogued)
    models, weights = _frame_models(prf, centroids.shape[0])
    for j in range(rows.size):
        measured = centroids[:, j, :]
        ok = np.all(np.isfinite(measured), axis=1)
        if not ok.any():
            continue
        star = _BoxedStar(
            models,
            np.array([rows[j], cols[j]]),
            box[j],
            half,
            1.0 if flux is None else float(flux[j]),
            None if near is None else tuple(x[near[j]] for x in catalogued),
        )
        m, w = measured[ok], weights[ok]
        p = star.invert(m, w, _calibration_span(m - box[j], half))
        if p is None:  # found beyond the tables: tabulate up to the box's edge
            edge = np.full(2, half + 0.5)
            p = star.invert(m, w, (-edge, edge), last=True)
        out[ok, j] = p
    return out


def _frame_models(prf, n_frames: int) -> tuple[list, np.ndarray]:
    """The PRF models to tabulate and each frame's weights on them (n_frames, n_models).

    One model for a static PRF; a :class:`~tessphot.prf.focus.FocusedPRF`'s anchors, each
    frame weighing the two around its scale.
    """
    if not isinstance(prf, FocusedPRF) or prf.scale.size != n_frames:
        return [prf], np.ones((n_frames, 1))
    lower, upper = prf.anchor_weights(np.arange(n_frames))
    weights = np.zeros((n_frames, len(prf.anchor_models)))
    frames = np.arange(n_frames)
    weights[frames, lower] = 1.0 - upper
    weights[frames, lower + 1] += upper
    used = np.flatnonzero(weights.any(axis=0))
    return [prf.anchor_models[k] for k in used], weights[:, used]


def _near_boxes(box: np.ndarray, half: int, catalogued) -> list[np.ndarray] | None:
    """Indices of the catalogued stars whose light can reach each centroid box.

    ``box`` (n, 2): the boxes' centre pixels. None without a catalogue.
    """
    if catalogued is None:
        return None
    tree = cKDTree(np.column_stack(catalogued[:2]))
    reach = half + HALF_WIDTH + 1
    return [np.asarray(i, dtype=int) for i in tree.query_ball_point(box, reach, p=np.inf)]


class _BoxedStar:
    """One reference star in its centroid box: the PRF's centroid tables and their inverse.

    Parameters
    ----------
    models : list of tessphot.prf.PRFModel
        The PRF at the anchors the frames are interpolated between (one when static).
    position : ndarray, shape (2,)
        Catalogue (row, column) [science px].
    box : ndarray of int, shape (2,)
        The box's centre pixel.
    half : int
        The box's half-width [px].
    flux : float
        The star's catalogue flux [e-/s] (1 without a catalogue).
    catalogued : (rows, cols, flux) or None
        The catalogued stars near the region.
    """

    def __init__(self, models, position, box, half, flux, catalogued):
        self.models, self.position, self.box, self.half = models, position, box, half
        self.flux = flux
        at = [np.array([x]) for x in (*position, *position, *box)]
        light = flux * _prf_moments(models[0], *at, half)[2][0]
        # The same neighbours at every anchor (chosen with the first).
        self.neighbours = _neighbours(models[0], *position, light, *box, half, catalogued)

    def invert(
        self, measured: np.ndarray, weights: np.ndarray, span, *, last: bool = False
    ) -> np.ndarray | None:
        """Positions (n, 2) whose PRF centroids are ``measured`` (n, 2) [science px].

        ``weights`` (n, n_models): each frame's weights on the models. ``span``: the
        (lowest, highest) offsets (row, column) from the box's centre to tabulate. None if a
        position lies beyond the tables (unless ``last``: then the positions as the
        iteration left them).
        """
        lo, hi = span
        knots_r = interpolation_knots(self.box[0] + np.array([lo[0], hi[0]]))
        knots_c = interpolation_knots(self.box[1] + np.array([lo[1], hi[1]]))
        n = knots_r.size * knots_c.size
        # The star's moves from its catalogue position that the tables reach.
        moved = np.array([lo, hi]) + (self.box - self.position)
        tables, others = [], []
        for prf in self.models:
            sums = _prf_moments(
                prf,
                np.repeat(knots_r, knots_c.size),
                np.tile(knots_c, knots_r.size),
                np.full(n, self.position[0]),
                np.full(n, self.position[1]),
                np.full(n, self.box[0]),
                np.full(n, self.box[1]),
                self.half,
            )
            tables.append(_last_axis(np.stack(sums).reshape(3, knots_r.size, knots_c.size)))
            others.append(_neighbour_table(prf, *self.box, self.half, self.neighbours, moved))
        lo = np.array([knots_r[0], knots_c[0]])
        hi = np.array([knots_r[-1], knots_c[-1]])
        p = measured.copy()
        for _ in range(CALIBRATION_ITERATIONS):
            before = p
            q = np.clip(p, lo, hi)
            # (sum_r, sum_c, total) of the star and its neighbours, frame by frame.
            sums = np.zeros((len(q), 3))
            for k, (table, near) in enumerate(zip(tables, others, strict=True)):
                at = self.flux * bilinear(knots_r, knots_c, table, q[:, 0], q[:, 1])
                if near is not None:
                    at += _neighbour_sums(near, q - self.position)
                sums += weights[:, k, None] * at
            model = sums[:, :2] / sums[:, 2:]
            p = p + (measured - model)
            if np.max(np.abs(p - before)) < CALIBRATION_TOLERANCE:
                break
        if not last and (np.any(p < lo) or np.any(p > hi)):
            return None
        return p


def _calibration_span(seen: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest offsets (row, column) from the box's centre to tabulate [px].

    From the measured centroids ``seen`` (offsets from the box's centre) to as far as they
    can put the star (:data:`RESPONSE_ALLOWANCE`), :data:`CALIBRATION_MARGIN` beyond, up to
    the box's edge.
    """
    edge = half + 0.5
    low, high = seen.min(axis=0), seen.max(axis=0)
    lo = np.minimum(low, RESPONSE_ALLOWANCE * low) - CALIBRATION_MARGIN
    hi = np.maximum(high, RESPONSE_ALLOWANCE * high) + CALIBRATION_MARGIN
    return np.maximum(lo, -edge), np.minimum(hi, edge)
