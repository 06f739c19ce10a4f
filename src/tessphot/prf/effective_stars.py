"""The stars of the effective PRF's fit: their boxes on the average image, chosen and fitted.

A star's box is a square of ``2 half + 1`` pixels centred on the pixel nearest its first
position and kept there while the star's position is refined. Each star is fitted with a
PRF model: its flux, its position and a constant sky, by Gauss-Newton steps done for all
stars at once (the position's derivatives by central differences), weighted by the pixels'
noise and a relative error of the model (so that the brightest stars do not decide alone).

Stars are chosen (:func:`choose_stars`) on the average image: bright (signal-to-noise of
their flux), isolated (little light of the other catalogued stars in their box), not
saturated (no pixel near the saturated rate in or near their box, judged on the data) and
with every pixel of their box on the image.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, sparse
from scipy.spatial import cKDTree

from tessphot.prf.models import HALF_WIDTH, PRFModel

#: Step of the central differences of a star's position [px] (about half of the tables'
#: 1/9-px sampling, within which the model is linear).
POSITION_STEP = 0.05
#: Largest change of a star's position in one Gauss-Newton step [px].
MAX_POSITION_STEP = 0.3
#: Gauss-Newton steps of a star fit.
STAR_FIT_STEPS = 6
#: Parameters of a star fit: flux, row, column, sky.
N_STAR_PARAMETERS = 4
#: Candidates looked at per star wanted (the brightest on the region first) ...
CANDIDATES_PER_STAR = 20
#: ... in chunks of this many stars.
CHOICE_CHUNK = 4096
#: Zeros around a PRF stamp [px], so that a box of the stamp's size can hold a star up to
#: this far from the box's centre pixel.
STAMP_PAD = 1


@dataclass
class StarBoxes:
    """Boxes of pixels around stars on an image.

    Attributes
    ----------
    rows, cols : ndarray of int, shape (n,)
        Science row and column of each box's centre pixel.
    half : int
        Half-width of the boxes [px].
    data : ndarray, shape (n, 2 half + 1, 2 half + 1)
        The image's pixels (NaN off the image).
    sigma : ndarray, shape (n, 2 half + 1, 2 half + 1)
        Their uncertainties (NaN off the image).
    """

    rows: np.ndarray
    cols: np.ndarray
    half: int
    data: np.ndarray
    sigma: np.ndarray

    @property
    def size(self) -> int:
        """Side of a box [px]."""
        return 2 * self.half + 1

    def pixel_rows(self) -> np.ndarray:
        """Science rows of every box's pixel rows, shape (n, size)."""
        return self.rows[:, None] + np.arange(-self.half, self.half + 1)[None, :]

    def pixel_cols(self) -> np.ndarray:
        """Science columns of every box's pixel columns, shape (n, size)."""
        return self.cols[:, None] + np.arange(-self.half, self.half + 1)[None, :]

    def subset(self, keep: np.ndarray) -> StarBoxes:
        """The boxes of the stars ``keep`` (indices or a mask)."""
        return StarBoxes(
            self.rows[keep], self.cols[keep], self.half, self.data[keep], self.sigma[keep]
        )


#: Stars are taken to reach a box from this far beyond its PRF's reach, as the fit moves
#: them (the catalogue's common offset, each fitted star's own) [px].
REACH_MARGIN = 2.0


def reaching_boxes(
    rows: np.ndarray, cols: np.ndarray, box_rows: np.ndarray, box_cols: np.ndarray, half: int
) -> np.ndarray:
    """Indices of the stars at ``(rows, cols)`` whose light can fall in any of the boxes.

    The boxes have half-width ``half`` about the pixels ``(box_rows, box_cols)``: the stars
    a scene must hold to be exact on them (within :data:`REACH_MARGIN` of moving).
    """
    if not np.size(box_rows):
        return np.zeros(0, dtype=int)
    reach = half + HALF_WIDTH + 1 + REACH_MARGIN
    # The stars near each box, from a tree of the stars (many more stars than boxes: asking
    # every star for its boxes took 2.3 times longer). Within ``reach`` is symmetric.
    found = cKDTree(np.column_stack([rows, cols])).query_ball_point(
        np.column_stack([box_rows, box_cols]), reach, p=np.inf
    )
    return np.unique(np.concatenate([np.asarray(f, dtype=int) for f in found]))


def box_pixels(
    image: np.ndarray, origin: tuple[int, int], rows: np.ndarray, cols: np.ndarray, half: int
) -> np.ndarray:
    """The pixels of an image in boxes centred on science pixels (NaN off the image).

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        The image; its pixel ``[0, 0]`` is science pixel ``origin``.
    origin : (int, int)
    rows, cols : ndarray of int, shape (n,)
        The boxes' centre pixels (science).
    half : int
        Half-width of the boxes [px].

    Returns
    -------
    ndarray, shape (n, 2 half + 1, 2 half + 1)
    """
    k = np.arange(-half, half + 1)
    rr = (np.asarray(rows) - origin[0])[:, None, None] + k[None, :, None]
    cc = (np.asarray(cols) - origin[1])[:, None, None] + k[None, None, :]
    rr, cc = np.broadcast_arrays(rr, cc)
    on = (rr >= 0) & (rr < image.shape[0]) & (cc >= 0) & (cc < image.shape[1])
    out = np.full(rr.shape, np.nan)
    out[on] = image[rr[on], cc[on]]
    return out


def star_boxes(
    image: np.ndarray,
    sigma: np.ndarray,
    origin: tuple[int, int],
    rows: np.ndarray,
    cols: np.ndarray,
    half: int,
) -> StarBoxes:
    """The boxes of an image and its uncertainties around stars at positions (rows, cols)."""
    centre_rows = np.rint(rows).astype(int)
    centre_cols = np.rint(cols).astype(int)
    return StarBoxes(
        centre_rows,
        centre_cols,
        half,
        box_pixels(image, origin, centre_rows, centre_cols, half),
        box_pixels(sigma, origin, centre_rows, centre_cols, half),
    )


def clamp_positions(
    boxes: StarBoxes, rows: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positions kept where a PRF stamp still covers the whole box (derivatives' steps too)."""
    reach = HALF_WIDTH + STAMP_PAD - boxes.half + 0.49 - POSITION_STEP
    return (
        np.clip(rows, boxes.rows - reach, boxes.rows + reach),
        np.clip(cols, boxes.cols - reach, boxes.cols + reach),
    )


def box_models(prf: PRFModel, boxes: StarBoxes, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Unit-flux PRF images of the stars on their boxes, shape (n, size, size).

    The positions must be within the reach of :func:`clamp_positions` (boxes larger than
    the tables' footprint: within :data:`STAMP_PAD` px of the box's centre pixel).
    """
    stamps, row0, col0 = prf.stamps(rows, cols)
    pad = STAMP_PAD + max(boxes.half - HALF_WIDTH, 0)
    stamps = np.pad(stamps, ((0, 0), (pad, pad), (pad, pad)))
    k = np.arange(boxes.size)
    off_r = (boxes.rows - boxes.half - row0 + pad)[:, None] + k[None, :]
    off_c = (boxes.cols - boxes.half - col0 + pad)[:, None] + k[None, :]
    n = np.arange(rows.size)[:, None, None]
    return stamps[n, off_r[:, :, None], off_c[:, None, :]]


def cleaned_boxes(
    boxes: StarBoxes,
    scene: np.ndarray,
    origin: tuple[int, int],
    prf: PRFModel,
    rows: np.ndarray,
    cols: np.ndarray,
    flux: np.ndarray,
) -> StarBoxes:
    """The boxes with the other stars' modelled light removed (``scene`` is everyone's)."""
    scene_box = box_pixels(scene, origin, boxes.rows, boxes.cols, boxes.half)
    own = flux[:, None, None] * box_models(prf, boxes, rows, cols)
    return StarBoxes(
        boxes.rows, boxes.cols, boxes.half, boxes.data - (scene_box - own), boxes.sigma
    )


@dataclass
class StarFits:
    """Fitted stars and how well the model fits them.

    Attributes
    ----------
    rows, cols : ndarray, shape (n,)
        Positions (science px).
    flux : ndarray, shape (n,)
        Fluxes (the PRF's unit) [e-/s].
    sky : ndarray, shape (n,)
        Constant sky left in each box [e-/s].
    chi2 : ndarray, shape (n,)
        Reduced chi-square of each star against its pixels' noise alone.
    rms : ndarray, shape (n,)
        rms of (data - model) over each box relative to the star's flux.
    misfit : ndarray, shape (n,)
        Reduced chi-square with the model's relative error in the noise, as the fit weighs
        the pixels (what outliers are judged by, whatever the star's brightness).
    """

    rows: np.ndarray
    cols: np.ndarray
    flux: np.ndarray
    sky: np.ndarray
    chi2: np.ndarray
    rms: np.ndarray
    misfit: np.ndarray

    def subset(self, keep: np.ndarray) -> StarFits:
        """The fits of the stars ``keep`` (indices or a mask)."""
        return StarFits(
            *(getattr(self, f.name)[keep] for f in dataclasses.fields(self))  # type: ignore[arg-type]
        )

    def model(self, prf: PRFModel, boxes: StarBoxes) -> np.ndarray:
        """The fitted stars' images on their boxes (sky included)."""
        images = box_models(prf, boxes, self.rows, self.cols)
        return self.flux[:, None, None] * images + self.sky[:, None, None]


def pixel_weights(boxes: StarBoxes, expected: np.ndarray, model_error: float) -> np.ndarray:
    """Weights ``1 / sigma`` of the boxes' pixels, the model's relative error included.

    ``expected`` is the star's light in each pixel; pixels without data weigh 0.
    """
    variance = boxes.sigma**2 + (model_error * expected) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = 1.0 / np.sqrt(variance)
    ok = np.isfinite(boxes.data) & np.isfinite(weight)
    return np.where(ok, weight, 0.0)


def _jacobian(
    prf: PRFModel, boxes: StarBoxes, rows: np.ndarray, cols: np.ndarray, flux: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The unit-flux images and the derivatives of the stars' images by their parameters.

    Returns
    -------
    image : ndarray, shape (n, size, size)
    jacobian : ndarray, shape (n, size * size, N_STAR_PARAMETERS)
        By flux, row, column and sky.
    """
    h = POSITION_STEP
    image = box_models(prf, boxes, rows, cols)
    d_row = box_models(prf, boxes, rows + h, cols) - box_models(prf, boxes, rows - h, cols)
    d_col = box_models(prf, boxes, rows, cols + h) - box_models(prf, boxes, rows, cols - h)
    f = flux[:, None, None] / (2 * h)
    jacobian = np.stack([image, f * d_row, f * d_col, np.ones_like(image)], axis=-1)
    return image, jacobian.reshape(rows.size, -1, N_STAR_PARAMETERS)


def star_jacobian(
    prf: PRFModel, boxes: StarBoxes, fits: StarFits, weight: np.ndarray
) -> sparse.csr_matrix:
    """The weighted boxes' pixels as a function of the stars' parameters (block diagonal).

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n * size**2, n * N_STAR_PARAMETERS)
    """
    _, jacobian = _jacobian(prf, boxes, fits.rows, fits.cols, fits.flux)
    jacobian = jacobian * weight.reshape(fits.rows.size, -1, 1)
    n, p, k = jacobian.shape
    rows = np.broadcast_to(np.arange(n * p).reshape(n, p, 1), jacobian.shape)
    cols = np.broadcast_to(
        (np.arange(n) * k)[:, None, None] + np.arange(k)[None, None, :], jacobian.shape
    )
    return sparse.csr_matrix((jacobian.ravel(), (rows.ravel(), cols.ravel())), shape=(n * p, n * k))


def fit_stars(
    prf: PRFModel,
    boxes: StarBoxes,
    rows: np.ndarray,
    cols: np.ndarray,
    flux: np.ndarray,
    *,
    model_error: float,
    steps: int = STAR_FIT_STEPS,
) -> StarFits:
    """Each star's flux, position and sky fitted on its box (all stars at once).

    Parameters
    ----------
    prf : PRFModel
    boxes : StarBoxes
        The data (other stars' light already removed).
    rows, cols, flux : ndarray, shape (n,)
        First guesses.
    model_error : float
        Relative error of the model per pixel (in the weights).
    steps : int
        Gauss-Newton steps.

    Returns
    -------
    StarFits
    """
    rows, cols = clamp_positions(boxes, np.asarray(rows, float), np.asarray(cols, float))
    flux = np.asarray(flux, dtype=float).copy()
    sky = np.zeros(rows.size)
    data = np.nan_to_num(boxes.data)
    for _ in range(steps):
        image, jac = _jacobian(prf, boxes, rows, cols, flux)
        weight = pixel_weights(boxes, flux[:, None, None] * image, model_error)
        resid = (data - flux[:, None, None] * image - sky[:, None, None]).reshape(rows.size, -1)
        w = weight.reshape(rows.size, -1)
        jw = jac * w[:, :, None]
        jwt = jw.transpose(0, 2, 1)  # batched products (matmul: ~7x faster than einsum)
        normal = jwt @ jw
        rhs = (jwt @ (resid * w)[:, :, None])[:, :, 0]
        normal += (
            1e-12 * np.trace(normal, axis1=1, axis2=2)[:, None, None] * np.eye(N_STAR_PARAMETERS)
        )
        step = np.linalg.solve(normal, rhs[:, :, None])[:, :, 0]
        flux = flux + step[:, 0]
        rows = rows + np.clip(step[:, 1], -MAX_POSITION_STEP, MAX_POSITION_STEP)
        cols = cols + np.clip(step[:, 2], -MAX_POSITION_STEP, MAX_POSITION_STEP)
        sky = sky + step[:, 3]
        rows, cols = clamp_positions(boxes, rows, cols)
    zeros = np.zeros(rows.size)
    fits = StarFits(rows, cols, flux, sky, zeros, zeros, zeros)
    fits.chi2, fits.rms, fits.misfit = fit_quality(prf, boxes, fits, model_error)
    return fits


def fit_quality(
    prf: PRFModel, boxes: StarBoxes, fits: StarFits, model_error: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each star's reduced chi-square, relative rms residual and misfit (:class:`StarFits`)."""
    image = box_models(prf, boxes, fits.rows, fits.cols)
    resid = boxes.data - fits.flux[:, None, None] * image - fits.sky[:, None, None]
    ok = np.isfinite(resid) & np.isfinite(boxes.sigma) & (boxes.sigma > 0)
    n = ok.sum(axis=(1, 2))
    dof = np.maximum(n - N_STAR_PARAMETERS, 1)
    weight = pixel_weights(boxes, fits.flux[:, None, None] * image, model_error)
    with np.errstate(invalid="ignore", divide="ignore"):
        chi2 = np.where(ok, (resid / boxes.sigma) ** 2, 0.0).sum(axis=(1, 2)) / dof
        rms = np.sqrt(np.where(ok, resid**2, 0.0).sum(axis=(1, 2)) / np.maximum(n, 1)) / np.abs(
            fits.flux
        )
    misfit = np.where(ok, (resid * weight) ** 2, 0.0).sum(axis=(1, 2)) / dof
    return chi2, rms, misfit


@dataclass(frozen=True)
class Choice:
    """What makes a star fit to measure the PRF on (see :func:`choose_stars`)."""

    half: int
    min_snr: float
    max_contamination: float
    saturated_level: float
    saturation_margin: int
    max_stars: int


def saturated_pixels(image: np.ndarray, choice: Choice) -> np.ndarray:
    """Pixels at or near saturation (``saturated_level``).

    Within ``saturation_margin`` of a saturated pixel along the column (a bleed), or beside it.
    """
    return ndimage.binary_dilation(
        np.nan_to_num(image) >= choice.saturated_level,
        structure=np.ones((2 * choice.saturation_margin + 1, 3), dtype=bool),
    )


def choose_stars(
    image: np.ndarray,
    sigma: np.ndarray,
    origin: tuple[int, int],
    prf: PRFModel,
    stars: tuple[np.ndarray, np.ndarray, np.ndarray],
    scene: np.ndarray,
    choice: Choice,
) -> np.ndarray:
    """The stars to measure the PRF on: bright, isolated, unsaturated, wholly on the image.

    Parameters
    ----------
    image, sigma : ndarray, shape (ny, nx)
        The average image and its uncertainty.
    origin : (int, int)
        Science position of the image's pixel ``[0, 0]``.
    prf : PRFModel
        The model (for the stars' light in their boxes).
    stars : (rows, cols, flux)
        The catalogued stars [science px, e-/s].
    scene : ndarray, shape (ny, nx)
        The model image of all of them.
    choice : Choice

    Returns
    -------
    ndarray of int
        Indices into ``stars``, the highest signal-to-noise first; at most
        ``choice.max_stars``, shared evenly between the PRF's nodes (each star counted at
        its nearest node).
    """
    rows, cols, flux = stars
    half = choice.half
    ny, nx = image.shape
    r = np.rint(rows).astype(int) - origin[0]
    c = np.rint(cols).astype(int) - origin[1]
    candidate = np.flatnonzero(
        (r >= half) & (r < ny - half) & (c >= half) & (c < nx - half) & (flux > 0)
    )
    # The brightest are looked at (a sector's average image puts Tmag 19 above any sensible
    # signal-to-noise cut), in chunks (memory).
    candidate = candidate[np.argsort(-flux[candidate], kind="stable")]
    candidate = candidate[: CANDIDATES_PER_STAR * choice.max_stars]
    saturated = saturated_pixels(image, choice).astype(float)
    chosen, snr = [np.empty(0, dtype=int)], [np.empty(0)]
    for start in range(0, candidate.size, CHOICE_CHUNK):
        part = candidate[start : start + CHOICE_CHUNK]
        good, part_snr = _qualify(
            image, sigma, origin, prf, (rows[part], cols[part], flux[part]), scene, saturated,
            choice,
        )  # fmt: skip
        chosen.append(part[good])
        snr.append(part_snr[good])
    chosen, snr = np.concatenate(chosen), np.concatenate(snr)
    chosen = chosen[np.argsort(-snr, kind="stable")]
    return _share_between_nodes(prf, rows[chosen], cols[chosen], chosen, choice.max_stars)


def _qualify(
    image: np.ndarray,
    sigma: np.ndarray,
    origin: tuple[int, int],
    prf: PRFModel,
    stars: tuple[np.ndarray, np.ndarray, np.ndarray],
    scene: np.ndarray,
    saturated: np.ndarray,
    choice: Choice,
) -> tuple[np.ndarray, np.ndarray]:
    """Which stars qualify (:func:`choose_stars`), and their signal-to-noise ratios."""
    rows, cols, flux = stars
    half = choice.half
    boxes = star_boxes(image, sigma, origin, rows, cols, half)
    own = box_models(prf, boxes, *clamp_positions(boxes, rows, cols))
    own_light = flux[:, None, None] * own
    scene_box = box_pixels(scene, origin, boxes.rows, boxes.cols, half)
    others = np.clip(scene_box - own_light, 0.0, None).sum(axis=(1, 2))
    contamination = others / own_light.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = flux * np.sqrt(np.nansum(own**2 / boxes.sigma**2, axis=(1, 2)))
    near_saturated = box_pixels(saturated, origin, boxes.rows, boxes.cols, half)
    good = (
        np.all(np.isfinite(boxes.data) & np.isfinite(boxes.sigma), axis=(1, 2))
        & (snr >= choice.min_snr)
        & (contamination <= choice.max_contamination)
        & ~np.any(near_saturated > 0, axis=(1, 2))
    )
    return good, snr


def _share_between_nodes(
    prf: PRFModel, rows: np.ndarray, cols: np.ndarray, chosen: np.ndarray, max_stars: int
) -> np.ndarray:
    """At most ``max_stars`` of the (sorted) stars, shared evenly between their nearest nodes."""
    if chosen.size <= max_stars:
        return chosen
    node_r = np.abs(rows[:, None] - prf.node_rows[None, :]).argmin(axis=1)
    node_c = np.abs(cols[:, None] - prf.node_cols[None, :]).argmin(axis=1)
    cell = node_r * prf.node_cols.size + node_c
    # Each star's rank within its node: taking the lowest ranks first shares them evenly.
    rank = np.zeros(chosen.size, dtype=int)
    for value in np.unique(cell):
        members = np.flatnonzero(cell == value)
        rank[members] = np.arange(members.size)
    order = np.lexsort((np.arange(chosen.size), rank))[:max_stars]
    return chosen[np.sort(order)]
