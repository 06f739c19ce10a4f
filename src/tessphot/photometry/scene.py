"""The light of catalogued stars in a fixed aperture, cadence by cadence.

An aperture is a fixed set of pixels; the stars move over them with the pointing. The
fraction of a star's light that falls in the aperture therefore changes from cadence to
cadence: a 0.3-px pointing jump at a momentum dump changes the fraction collected by a small
aperture by percent, and moves the wings of neighbours in and out of it. With the PRF and the
jitter model (where every star is in every frame), these fractions are known:

* :func:`aperture_fractions` integrates each star's PRF over the aperture at its position in
  every frame. Each star's fraction is tabulated at the knots of the PRF interpolation
  (every 1/9 px) over the range of its motion and interpolated bilinearly, which is exact,
  so the cost does not grow with the number of cadences.
* :class:`ApertureLight` holds the fractions with the catalogue fluxes and gives the
  **motion-corrected flux** (the light of the neighbours that moves in and out is removed
  and the target's light is scaled to its mean collected fraction, so the mean level stays
  the aperture's) and the **contamination** (the mean light of the other stars over all the
  light in the aperture).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from tessphot.io.errors import TessphotError
from tessphot.prf import (
    ANALYTIC,
    ARCHIVE,
    HALF_WIDTH,
    PRFModel,
    load_prf,
    prf_sums,
    unprepared_prf_dir,
)
from tessphot.prf.focus import FocusedPRF
from tessphot.prf.knots import bilinear_stacked, cell_corners, knot_spans, span_cells, span_knots
from tessphot.prf.star_halo import StarHalos, with_halos

#: Most grid points along one axis of a star's table; a star moving further is computed
#: cadence by cadence instead.
GRID_MAX_POINTS = 64
#: Other stars whose mean light in the aperture is below this fraction of the target's
#: collected light are left out (they change the flux by less than this). A saturated star
#: reaches a few ppm in an hour, and the faint stars on the edge of its large aperture move
#: tens of ppm of light in and out (1e-4 left them out: 50 ppm instead of 18 for a Tmag 5.4
#: star, `benchmarks/bench_bright.py`).
MIN_RELATIVE_LIGHT = 1.0e-6
#: Stars this far outside the aperture can still put light into it [px]: the PRF's reach.
PRF_REACH = HALF_WIDTH + 1


#: Name under which the prepare stage records an analytic PRF.
ANALYTIC_PRF = ANALYTIC


@lru_cache(maxsize=8)
def _cached_prf(folder: str | None, sector: int, camera: int, ccd: int) -> PRFModel:
    return load_prf(folder, sector, camera, ccd)


@lru_cache(maxsize=16)
def _archive_folder(sector: int, camera: int, ccd: int, cache_dir: str, url: str) -> str:
    from tessphot.prf.download import archive_prf_dir

    return str(archive_prf_dir(sector, camera, ccd, cache_dir=cache_dir or None, url=url or None))


@lru_cache(maxsize=8)
def _recorded_prf(prepare_settings: str) -> str:
    """The PRF the prepare stage used, from its settings (JSON; decoded once per file)."""
    return json.loads(prepare_settings).get("prf", ANALYTIC_PRF) or ANALYTIC_PRF


def ccd_prf(
    prepare_settings: str | None,
    prf_dir: str,
    sector: int,
    camera: int,
    ccd: int,
    prf_cache: str = "",
    prf_url: str = "",
):
    """The PRF model of a CCD for photometry (cached per process).

    Parameters
    ----------
    prepare_settings : str or None
        The ``settings`` attribute (JSON) of the prepared-data file; its ``prf`` entry names
        the PRF the prepare stage used. None: data not prepared (a target pixel file).
    prf_dir : str
        The ``[photometry] prf_dir`` setting: a folder of SPOC PRFs, ``"analytic"``,
        ``"archive"`` (the SPOC PRFs in the download cache, downloaded when missing), or
        empty for the prepare stage's choice (data not prepared:
        :func:`tessphot.prf.cache.unprepared_prf_dir`, ``$TESSPHOT_PRF_DIR`` else analytic).
    sector, camera, ccd : int
    prf_cache, prf_url : str
        The ``[photometry]`` settings of the download (empty: the defaults of
        :class:`tessphot.prf_download.PRFArchive`).

    Raises
    ------
    TessphotError
        When the PRF folder does not exist or cannot be read, or the download fails.
    """
    folder = prf_dir
    if not folder and prepare_settings is None:
        folder = unprepared_prf_dir()
    elif not folder:
        folder = _recorded_prf(prepare_settings or "{}")
    if folder == ANALYTIC_PRF:
        return _cached_prf(None, sector, camera, ccd)
    if folder == ARCHIVE:
        folder = _archive_folder(sector, camera, ccd, prf_cache, prf_url)
    if not Path(folder).is_dir():
        raise TessphotError(
            f"PRF folder {folder} not found (set [photometry] prf_dir to the SPOC PRF models, "
            f"to 'archive' to download them, or to 'analytic')"
        )
    try:
        return _cached_prf(str(folder), sector, camera, ccd)
    except (OSError, ValueError) as err:
        raise TessphotError(f"cannot read the PRF models in {folder}: {err}") from None


def _fractions_at(
    prf: PRFModel,
    mask: np.ndarray,
    origin: tuple[int, int],
    rows: np.ndarray,
    cols: np.ndarray,
    node_rows: np.ndarray,
    node_cols: np.ndarray,
    *,
    wanted: np.ndarray | None = None,
) -> np.ndarray:
    """Fraction of a star's light on the True pixels of ``mask``.

    Its pixel ``[0, 0]`` at science ``origin``; for stars at each (row, col), each with its
    own PRF node. ``wanted``: the stars whose fractions to compute (the others' are 0).
    """
    return prf_sums(
        prf,
        rows[None],
        cols[None],
        node_rows,
        node_cols,
        origin,
        mask,
        wanted=None if wanted is None else wanted[None],
    )[0]


def mean_positions(
    rows: np.ndarray,
    cols: np.ndarray,
    good: np.ndarray,
    fallback_rows: np.ndarray | None = None,
    fallback_cols: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean position of each star (columns of ``rows``, ``cols``) over the good cadences.

    Where it is never known, the fallback position (or NaN).
    """
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_rows = np.nanmean(np.where(good[:, None], rows, np.nan), axis=0)
        mean_cols = np.nanmean(np.where(good[:, None], cols, np.nan), axis=0)
    if fallback_rows is not None:
        mean_rows = np.where(np.isfinite(mean_rows), mean_rows, fallback_rows)
    if fallback_cols is not None:
        mean_cols = np.where(np.isfinite(mean_cols), mean_cols, fallback_cols)
    return mean_rows, mean_cols


def aperture_fractions(
    prf: PRFModel,
    mask: np.ndarray,
    origin: tuple[int, int],
    rows: np.ndarray,
    cols: np.ndarray,
    node_rows: np.ndarray,
    node_cols: np.ndarray,
) -> np.ndarray:
    """Fraction of each star's light that falls in an aperture, per cadence.

    Parameters
    ----------
    prf : PRFModel
        The PRF of the CCD.
    mask : ndarray of bool, shape (rows, cols)
        The aperture on a stamp.
    origin : (int, int)
        Science-area (row, column) of the stamp's pixel ``[0, 0]``.
    rows, cols : ndarray, shape (n_cadences, n_stars)
        Science-area positions of the stars in every cadence (NaN where unknown).
    node_rows, node_cols : ndarray, shape (n_stars,)
        Positions choosing each star's PRF shape (its reference position).

    Returns
    -------
    ndarray, shape (n_cadences, n_stars)
        Fractions in [0, 1]; NaN where the position is unknown.

    Notes
    -----
    A PRF that changes with time (:class:`~tessphot.prf.focus.FocusedPRF`, the rows of
    positions being its cadences) is tabulated at three of its anchor scales (both ends
    and the middle; two when it has two) and each cadence's fractions interpolated in its
    scale through them (a parabola: a fraction is smooth in the scale).
    """
    rows = np.asarray(rows, dtype=float)
    cols = np.asarray(cols, dtype=float)
    mask = np.asarray(mask, dtype=bool)
    if isinstance(prf, FocusedPRF) and rows.shape[0] == prf.scale.size:
        chosen = np.unique([0, prf.anchors.size // 2, prf.anchors.size - 1])
        x = prf.anchors[chosen]
        out = np.zeros(rows.shape)
        for j, anchor in enumerate(chosen):
            # The Lagrange weight of this anchor at each cadence's scale.
            others = np.delete(x, j)
            weight = np.prod((prf.scale[:, None] - others) / (x[j] - others), axis=1)
            part = aperture_fractions(
                prf.anchor_models[anchor], mask, origin, rows, cols, node_rows, node_cols
            )
            out += weight[:, None] * part
        return np.clip(out, 0.0, 1.0)
    out = np.full(rows.shape, np.nan)
    known = np.isfinite(rows) & np.isfinite(cols)
    seen = np.flatnonzero(known.any(axis=0))
    with np.errstate(invalid="ignore"):
        lo_r = np.where(known, rows, np.inf).min(axis=0)[seen]
        hi_r = np.where(known, rows, -np.inf).max(axis=0)[seen]
        lo_c = np.where(known, cols, np.inf).min(axis=0)[seen]
        hi_c = np.where(known, cols, -np.inf).max(axis=0)[seen]
    first_r, size_r = knot_spans(lo_r, hi_r)
    first_c, size_c = knot_spans(lo_c, hi_c)
    on_grid = np.maximum(size_r, size_c) <= GRID_MAX_POINTS
    direct = [(j, known[:, j]) for j in seen[~on_grid]]
    if on_grid.any():
        grids = seen[on_grid]
        first_r, size_r = first_r[on_grid], size_r[on_grid]
        first_c, size_c = first_c[on_grid], size_c[on_grid]
        knots_r, start_r = span_knots(first_r, size_r)
        knots_c, start_c = span_knots(first_c, size_c)
        # Each star's table: its knots' grid, row-major, one star's after the other's.
        points = size_r * size_c
        starts = np.concatenate([[0], np.cumsum(points)])
        table = np.repeat(np.arange(grids.size), points)
        local = np.arange(starts[-1]) - starts[table]
        gr = knots_r[start_r[table] + local // size_c[table]]
        gc = knots_c[start_c[table] + local % size_c[table]]
        # Each star's known cadences, one star's after the other's (star-major rows).
        known_t = known.T[grids]
        s_of = np.repeat(np.arange(grids.size), known_t.sum(axis=1))
        r_t, c_t = rows.T[grids][known_t], cols.T[grids][known_t]
        i, fr = span_cells(r_t, first_r[s_of], size_r[s_of], knots_r, start_r[s_of])
        j, fc = span_cells(c_t, first_c[s_of], size_c[s_of], knots_c, start_c[s_of])
        cells = (starts[s_of] + i * size_c[s_of] + j, size_c[s_of], fr, fc)
        # One PRF call for the knots of the cells the stars visit (a drift crosses few of
        # its grid's).
        wanted = cell_corners(cells, gr.size)
        values = _fractions_at(
            prf,
            mask,
            origin,
            gr,
            gc,
            node_rows[grids][table],
            node_cols[grids][table],
            wanted=wanted,
        )
        on_t = np.full(known_t.shape, np.nan)
        on_t[known_t] = bilinear_stacked(values, cells)
        out[:, grids] = on_t.T
    for j, ok in direct:
        n = int(ok.sum())
        out[ok, j] = _fractions_at(
            prf,
            mask,
            origin,
            rows[ok, j],
            cols[ok, j],
            np.full(n, node_rows[j]),
            np.full(n, node_cols[j]),
        )
    return np.clip(out, 0.0, 1.0)


@dataclass
class ApertureLight:
    """The catalogued stars' light in an aperture.

    Attributes
    ----------
    starid : ndarray of int, shape (n_stars,)
        The stars; the target first.
    flux : ndarray, shape (n_stars,)
        Their catalogue fluxes [e-/s].
    fractions : ndarray, shape (n_cadences, n_stars)
        Fraction of each star's light in the aperture per cadence (NaN where unknown).
    good : ndarray of bool, shape (n_cadences,)
        Cadences over which means are taken.
    """

    starid: np.ndarray
    flux: np.ndarray
    fractions: np.ndarray
    good: np.ndarray

    @cached_property
    def mean_fractions(self) -> np.ndarray:
        """Mean fraction of each star over the good cadences with a known position."""
        use = self.good & np.all(np.isfinite(self.fractions), axis=1)
        if not use.any():
            use = np.all(np.isfinite(self.fractions), axis=1)
        if not use.any():
            return np.full(self.flux.shape, np.nan)
        return self.fractions[use].mean(axis=0)

    @property
    def target_light(self) -> float:
        """Mean light of the target in the aperture [e-/s]."""
        return float(self.flux[0] * self.mean_fractions[0])

    @property
    def other_light(self) -> float:
        """Mean light of the other stars in the aperture [e-/s]."""
        return float(np.dot(self.flux[1:], self.mean_fractions[1:]))

    @property
    def contamination(self) -> float:
        """Fraction of the catalogued light in the aperture that is not the target's."""
        total = self.target_light + self.other_light
        return self.other_light / total if total > 0 else math.nan

    def correction(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-cadence ``(offset, scale)`` of the motion correction.

        The corrected flux is ``(flux - offset) * scale + other_light``: ``offset`` is the
        other stars' light in the aperture in that cadence, ``scale`` the target's mean
        collected fraction over its fraction in that cadence. Cadences without known
        positions get no correction (offset = mean light of the others, scale = 1).
        """
        mean = self.mean_fractions
        fractions = self.fractions
        offset = fractions[:, 1:] @ self.flux[1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = mean[0] / fractions[:, 0]
        unknown = ~(np.isfinite(offset) & np.isfinite(scale) & (scale > 0))
        offset[unknown] = self.other_light
        scale[unknown] = 1.0
        return offset, scale

    def corrected(self, flux: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Motion-corrected flux and the scale applied to it (see :meth:`correction`)."""
        offset, scale = self.correction()
        return (np.asarray(flux, dtype=float) - offset) * scale + self.other_light, scale


def aperture_light(
    prf: PRFModel,
    mask: np.ndarray,
    origin: tuple[int, int],
    starid: np.ndarray,
    flux: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    node_rows: np.ndarray,
    node_cols: np.ndarray,
    good: np.ndarray,
    *,
    halos: StarHalos | None = None,
    tmag: np.ndarray | None = None,
) -> ApertureLight:
    """The light of the target (star 0) and the other stars that matter in an aperture.

    Parameters are those of :func:`aperture_fractions`, with ``starid`` and the catalogue
    ``flux`` [e-/s] of every star (the target first) and the ``good`` cadences. Stars whose
    mean light in the aperture is below :data:`MIN_RELATIVE_LIGHT` of the target's are
    dropped before the per-cadence fractions are computed. With ``halos`` (and the stars'
    ``tmag``), each star's light is split between the PRF and its halo
    (:func:`tessphot.prf.star_halo.with_halos`).
    """
    starid = np.asarray(starid)
    flux = np.asarray(flux, dtype=float)
    rows = np.asarray(rows, dtype=float)
    cols = np.asarray(cols, dtype=float)
    mask = np.asarray(mask, dtype=bool)
    mean_rows, mean_cols = mean_positions(rows, cols, good, node_rows, node_cols)
    at_mean = _fractions_at(
        prf,
        mask,
        origin,
        mean_rows,
        mean_cols,
        node_rows,
        node_cols,
    )
    halo = np.zeros(starid.shape) if halos is None else halos.of(starid, tmag)
    if halos is not None:
        at_mean = with_halos(at_mean, halo, halos.shape, mask, origin, mean_rows, mean_cols)
    light = flux * at_mean
    keep = light >= MIN_RELATIVE_LIGHT * light[0]
    keep[0] = True
    fractions = aperture_fractions(
        prf, mask, origin, rows[:, keep], cols[:, keep], node_rows[keep], node_cols[keep]
    )
    if halos is not None:
        fractions = np.clip(
            with_halos(
                fractions, halo[keep], halos.shape, mask, origin, rows[:, keep], cols[:, keep]
            ),
            0.0,
            1.0,
        )
    return ApertureLight(starid[keep], flux[keep], fractions, np.asarray(good, dtype=bool))
