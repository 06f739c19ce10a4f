"""Spacecraft jitter: the image motion of every frame relative to a reference frame.

Measured from bright isolated catalogued stars (flux-weighted centroids in every frame,
turned into positions with the PRF by
:func:`tessphot.prepare.centroid_calibration.calibrate_centroids`, then a least-squares
translation, rotation or affine fit per frame with outlier rejection), or, when there are
too few such stars, from the per-frame WCS. The result is a model giving the
offset at any pixel and time (see docs/hdf5-format.md).
"""

from __future__ import annotations

import warnings

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from scipy.spatial import cKDTree

from tessphot.config.prepare import MotionSettings

#: Number of parameters per frame: the 2x2 matrix (row, column order) and the translation.
N_PARAMS = 6
IDENTITY = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])


def select_reference_stars(
    rows: np.ndarray,
    cols: np.ndarray,
    tmag: np.ndarray,
    shape: tuple[int, int],
    origin: tuple[int, int],
    settings: MotionSettings,
    saturation_tmag: float = 6.5,
) -> np.ndarray:
    """Indices of bright isolated stars well inside the region, brightest first."""
    margin = settings.centroid_half + 3
    inside = (
        (rows >= origin[0] + margin)
        & (rows < origin[0] + shape[0] - margin)
        & (cols >= origin[1] + margin)
        & (cols < origin[1] + shape[1] - margin)
    )
    candidates = np.flatnonzero(inside & (tmag >= settings.tmag_min) & (tmag <= settings.tmag_max))
    candidates = candidates[np.argsort(tmag[candidates])]
    bright_cols = cols[tmag < saturation_tmag]
    radius = settings.isolation_radius
    # The neighbours of each candidate from a k-d tree (a full catalogue per candidate
    # took seconds on a full CCD); asked a little wider, then cut exactly.
    tree = cKDTree(np.column_stack([rows, cols]))
    chosen = []
    for i in candidates:
        found = tree.query_ball_point((rows[i], cols[i]), radius * (1 + 1e-9) + 1e-9)
        near = np.asarray(found, dtype=int)
        d = np.hypot(rows[near] - rows[i], cols[near] - cols[i])
        close = near[(d < radius) & (d > 0)]
        if np.any(tmag[close] < tmag[i] + settings.isolation_dmag):
            continue
        if np.any(np.abs(bright_cols - cols[i]) < margin + 2):
            continue  # a bleed column may pass by
        chosen.append(i)
        if len(chosen) >= settings.max_stars:
            break
    return np.array(chosen, dtype=int)


def measure_centroids(
    image: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    origin: tuple[int, int],
    half: int,
    *,
    background: np.ndarray | None = None,
) -> np.ndarray:
    """Flux-weighted centroids (row, column) in science coordinates near the given positions.

    Negative pixels (of ``image - background`` when a background is given) count as zero.
    Stars whose box holds a non-finite pixel or no flux get NaN.
    """
    r = np.rint(rows).astype(int) - origin[0]
    c = np.rint(cols).astype(int) - origin[1]
    k = np.arange(-half, half + 1)
    rr = r[:, None, None] + k[None, :, None]
    cc = c[:, None, None] + k[None, None, :]
    rr = np.clip(rr, 0, image.shape[0] - 1)
    cc = np.clip(cc, 0, image.shape[1] - 1)
    boxes = image[rr, cc]
    if background is not None:  # subtracted in the boxes only (no copy of the frame)
        boxes = boxes - background[rr, cc]
    w = np.clip(boxes, 0.0, None)
    total = w.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        cr = (w * rr).sum(axis=(1, 2)) / total + origin[0]
        ccol = (w * cc).sum(axis=(1, 2)) / total + origin[1]
    bad = ~np.isfinite(boxes).all(axis=(1, 2)) | ~(total > 0)
    out = np.stack([cr, ccol], axis=1)
    out[bad] = np.nan
    return out


#: Median of a Rayleigh distribution in units of its scale: the radius of a 2-D Gaussian
#: residual with standard deviation sigma per axis has median sigma * sqrt(2 ln 2).
RAYLEIGH_MEDIAN = float(np.sqrt(2.0 * np.log(2.0)))
#: Smallest per-axis residual scale of the outlier rejection [px] (exact fits clip nothing).
SIGMA_FLOOR = 1e-6


def radial_sigma(radii: np.ndarray) -> float:
    """Robust per-axis standard deviation of 2-D residuals from their lengths [px].

    The length of a residual whose two components are Gaussian with standard deviation
    sigma follows a Rayleigh distribution of scale sigma, whose median is
    ``sigma * sqrt(2 ln 2)`` (:data:`RAYLEIGH_MEDIAN`); the median is robust to outliers.
    """
    return float(np.nanmedian(radii)) / RAYLEIGH_MEDIAN


def fit_motion(
    ref: np.ndarray, pos: np.ndarray, centre: tuple[float, float], settings: MotionSettings
) -> tuple[np.ndarray, str, float, int]:
    """Fit ``pos = M (ref - centre) + centre + t`` for one frame.

    Stars whose residual is longer than ``settings.clip_sigma`` times the residuals'
    per-axis standard deviation (:func:`radial_sigma`) are left out and the fit repeated,
    up to ``settings.clip_passes`` times.

    Returns
    -------
    params : ndarray, shape (6,)
        (m_rr, m_rc, m_cr, m_cc, t_r, t_c); NaN when too few stars.
    model : str
        'translation', 'euclidean' or 'affine' (by the number of stars).
    rms : float
        Rms residual of the fit [px].
    n : int
        Stars used.
    """
    good = np.all(np.isfinite(ref), axis=1) & np.all(np.isfinite(pos), axis=1)
    c = np.asarray(centre, dtype=float)
    params = np.full(N_PARAMS, np.nan)
    model = "translation"
    rms = np.nan
    for _ in range(settings.clip_passes):
        n = int(good.sum())
        if n < settings.min_translation:
            return params, model, rms, n
        x = ref[good] - c
        y = pos[good] - c
        if n >= settings.min_affine:
            model = "affine"
            design = np.column_stack([x, np.ones(n)])  # rows: [dr, dc, 1]
            coef, *_ = np.linalg.lstsq(design, y, rcond=None)
            matrix, t = coef[:2].T, coef[2]
        elif n >= settings.min_euclidean:
            model = "euclidean"
            # Small rotation theta: y = R x + t, linearised: unknowns theta, t_r, t_c.
            a = np.zeros((2 * n, 3))
            a[0::2, 0] = -x[:, 1]
            a[1::2, 0] = x[:, 0]
            a[0::2, 1] = 1.0
            a[1::2, 2] = 1.0
            b = (y - x).ravel()
            (theta, tr, tc), *_ = np.linalg.lstsq(a, b, rcond=None)
            cos, sin = np.cos(theta), np.sin(theta)
            matrix = np.array([[cos, -sin], [sin, cos]])
            t = np.array([tr, tc])
        else:
            model = "translation"
            matrix = np.eye(2)
            t = np.median(y - x, axis=0)
        params = np.concatenate([matrix.ravel(), t])
        predicted = apply_params(params, ref, c)
        resid = np.hypot(*(pos - predicted).T)
        rms = float(np.sqrt(np.nanmean(resid[good] ** 2)))
        sigma = radial_sigma(resid[good]) + SIGMA_FLOOR
        new_good = good & (resid < settings.clip_sigma * sigma)
        if new_good.sum() == good.sum():
            break
        good = new_good
    return params, model, rms, int(good.sum())


def apply_params(params: np.ndarray, positions: np.ndarray, centre) -> np.ndarray:
    """Positions (n, 2) in the reference frame moved into the frame described by params."""
    matrix = np.asarray(params[:4]).reshape(2, 2)
    c = np.asarray(centre, dtype=float)
    return (positions - c) @ matrix.T + c + np.asarray(params[4:6])


def motion_from_wcs(
    ref_wcs: WCS,
    frame_wcs: WCS,
    shape: tuple[int, int],
    origin: tuple[int, int],
    centre: tuple[float, float],
    n_grid: int = 5,
) -> np.ndarray:
    """Motion parameters (affine) of a frame from its WCS, relative to the reference WCS.

    Both WCS are in science-area pixel coordinates (x = column, y = row).
    """
    rows = origin[0] + np.linspace(0, shape[0] - 1, n_grid)
    cols = origin[1] + np.linspace(0, shape[1] - 1, n_grid)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    ref = np.column_stack([rr.ravel(), cc.ravel()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ra, dec = ref_wcs.all_pix2world(ref[:, 1], ref[:, 0], 0)
        x, y = frame_wcs.all_world2pix(ra, dec, 0, quiet=True)
    pos = np.column_stack([y, x])
    c = np.asarray(centre, dtype=float)
    design = np.column_stack([ref - c, np.ones(len(ref))])
    coef, *_ = np.linalg.lstsq(design, pos - c, rcond=None)
    return np.concatenate([coef[:2].T.ravel(), coef[2]])


def wcs_from_string(text: str) -> WCS | None:
    """A WCS from a header string; None when empty."""
    if not text:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(fits.Header.fromstring(text), relax=True)


class MotionModel:
    """Image motion at any pixel and time.

    Parameters
    ----------
    params : ndarray, shape (N, 6)
        Per-frame parameters (see :func:`fit_motion`); NaN rows are interpolated over.
    times : ndarray, shape (N,)
        Frame times.
    centre : tuple of float
        Centre of the matrix part (science-area row, column).
    """

    def __init__(self, params: np.ndarray, times: np.ndarray, centre):
        params = np.asarray(params, dtype=float)
        times = np.asarray(times, dtype=float)
        good = np.all(np.isfinite(params), axis=1) & np.isfinite(times)
        if not good.any():
            params = np.tile(IDENTITY, (len(times), 1))
            good = np.isfinite(times)
        self.times = times[good]
        self.params = params[good]
        self.centre = np.asarray(centre, dtype=float)
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    def params_at(self, t) -> np.ndarray:
        """Parameters at times ``t``, linear in time, constant beyond the ends; (n, 6).

        The last times asked for are remembered with their parameters (every star of a
        source asks at the source's times); the array returned is a new one.
        """
        t = np.atleast_1d(np.asarray(t, dtype=float))
        last = self._last
        if last is not None and np.array_equal(last[0], t, equal_nan=True):
            return last[1].copy()
        params = np.column_stack(
            [np.interp(t, self.times, self.params[:, j]) for j in range(N_PARAMS)]
        )
        self._last = (t.copy(), params.copy())
        return params

    def positions(self, rows, cols, t) -> tuple[np.ndarray, np.ndarray]:
        """Where stars at reference positions (rows, cols) are at times ``t``.

        Returns arrays of shape (len(t), len(rows)).
        """
        p = self.params_at(t)
        dr = np.atleast_1d(np.asarray(rows, dtype=float))[None, :] - self.centre[0]
        dc = np.atleast_1d(np.asarray(cols, dtype=float))[None, :] - self.centre[1]
        # a * dr + b * dc + (centre + shift), in that order, with fewer temporary arrays.
        moved_r = p[:, 0:1] * dr
        moved_r += p[:, 1:2] * dc
        moved_r += self.centre[0] + p[:, 4:5]
        moved_c = p[:, 2:3] * dr
        moved_c += p[:, 3:4] * dc
        moved_c += self.centre[1] + p[:, 5:6]
        return moved_r, moved_c

    def offsets(self, rows, cols, t) -> tuple[np.ndarray, np.ndarray]:
        """Position change (d_row, d_col) relative to the reference frame, (len(t), len(rows))."""
        r, c = self.positions(rows, cols, t)
        return r - np.atleast_1d(rows)[None, :], c - np.atleast_1d(cols)[None, :]
