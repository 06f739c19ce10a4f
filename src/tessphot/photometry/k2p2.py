"""K2P2 aperture masks from a sum image (Lund et al. 2015; Handberg & Lund 2017).

The algorithm of the original TASOC pipeline (§5.9 of the notes):

1. The sky level is the mode of the distribution of the pixel values (a Gaussian kernel
   density estimate with Scott's bandwidth, the brightest 15 % left out); the noise is the
   robust scatter of the pixels below the mode. Pixels brighter than ``mode + thresh *
   noise`` are significant.
2. DBSCAN groups the significant pixels into clusters.
3. A watershed on the (blurred) flux splits clusters holding several stars, with markers at
   the local maxima nearest to catalog stars (or at all local maxima without a catalog); a
   saturated patch keeps a single marker.
4. Masks smaller than ``min_no_pixels_in_mask`` are dropped, single-pixel holes filled, and
   the masks of saturated stars extended along their bleed columns.

tessphot departs from the original in two ways, both settings:

* The sky is estimated from all finite pixels, not only the positive ones
  (:attr:`K2P2Settings.sky_positive_only`). The original was designed for images with a
  positive sky; on a background-subtracted image the positive pixels of the sky are half a
  Gaussian whose mode is at zero, so the cut fell on the sky level itself, half of the sky
  pixels were "significant", and noise percolated into every mask.
* A mask must contain a pixel that stands out from the sky by
  :attr:`K2P2Settings.min_peak_significance` robust standard deviations (5 by default), so
  that clusters of noise pixels, which always exist above a cut near the sky level, give no
  masks. 0 disables it.

``sky_positive_only=True, min_peak_significance=0`` is the original algorithm.

Pixel coordinates are (row, column) of the image array, pixel centres on integers.
"""

from __future__ import annotations

import logging
import math
from typing import Any, NamedTuple

import numpy as np
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.segmentation import watershed

from tessphot.config.k2p2 import K2P2Settings
from tessphot.photometry.errors import K2P2NoStars
from tessphot.photometry.k2p2_clusters import cluster_pixels
from tessphot.photometry.k2p2_sky import sky_level

logger = logging.getLogger(__name__)

#: Magnitude of the zero-flux limit when combining magnitudes.
_NO_STAR_MAG = math.inf
#: The 8-connected structuring element.
_EIGHT = np.ones((3, 3), dtype=bool)


class K2P2Result(NamedTuple):
    """Masks found by :func:`k2p2_masks`."""

    #: Boolean masks, shape (n, rows, columns), largest first.
    masks: np.ndarray
    #: Bandwidth of the kernel density estimate of the sky [e-/s] (0 if degenerate).
    bandwidth: float


# --------------------------------------------------------------------------------------------
# Catalog helpers


def _catalog_arrays(catalog: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, tmag) arrays of a catalog table in stamp coordinates."""

    def get(*names: str) -> np.ndarray:
        for name in names:
            try:
                return np.asarray(catalog[name], dtype=float).ravel()
            except (KeyError, ValueError, IndexError):
                continue
        raise ValueError(f"catalog without a column {' or '.join(repr(n) for n in names)}")

    row = get("row", "row_stamp")
    column = get("column", "column_stamp")
    tmag = get("tmag")
    if not row.shape == column.shape == tmag.shape:
        raise ValueError("catalog columns row, column and tmag differ in length")
    return row, column, tmag


def pixel_index(position: np.ndarray) -> np.ndarray:
    """Index of the pixel containing a position (pixel centres on integers)."""
    return np.floor(np.asarray(position, dtype=float) + 0.5).astype(np.int64)


def _stars_on_mask(mask: np.ndarray, row, column) -> np.ndarray:
    """Boolean array: which positions fall on a pixel of the mask."""
    rows = pixel_index(row)
    cols = pixel_index(column)
    inside = (rows >= 0) & (rows < mask.shape[0]) & (cols >= 0) & (cols < mask.shape[1])
    on = np.zeros(rows.shape, dtype=bool)
    on[inside] = mask[rows[inside], cols[inside]]
    return on


def combined_magnitude(tmag) -> float:
    """Magnitude of the summed flux of stars (inf for none)."""
    tmag = np.asarray(tmag, dtype=float)
    tmag = tmag[np.isfinite(tmag)]
    if tmag.size == 0:
        return _NO_STAR_MAG
    return float(-2.5 * np.log10(np.sum(10.0 ** (-0.4 * tmag))))


# --------------------------------------------------------------------------------------------
# The algorithm


def _saturated_columns(image: np.ndarray, mask: np.ndarray, settings: K2P2Settings) -> list[int]:
    """Columns of a mask that look saturated (flat and bright)."""
    peak = float(np.max(image[mask]))
    columns = []
    # The median of a column cannot exceed its maximum: test only the bright columns.
    column_max = np.max(np.where(mask, image, -np.inf), axis=0)
    candidates = np.flatnonzero(
        (mask.sum(axis=0) >= 2) & (column_max >= settings.overflow_level * peak)
    )
    for col in candidates:
        values = image[mask[:, col], col]
        if values.size < 2 or peak <= 0:
            continue
        flat = abs(float(np.median(np.diff(values)))) / float(np.max(values))
        if (
            flat < settings.overflow_flatness
            and np.median(values) >= settings.overflow_level * peak
        ):
            columns.append(int(col))
    return columns


def _catalog_markers(
    peaks: np.ndarray,
    catalog: tuple[np.ndarray, np.ndarray, np.ndarray],
    settings: K2P2Settings,
) -> np.ndarray:
    """The peaks nearest to a catalog star (within the marker distance for its brightness)."""
    rows, cols, tmag = (np.asarray(a, dtype=float) for a in catalog)
    # Each star's distance to every peak (stars x peaks) and its nearest peak.
    distance = np.hypot(peaks[None, :, 0] - rows[:, None], peaks[None, :, 1] - cols[:, None])
    nearest = np.argmin(distance, axis=1)
    limit = np.where(
        tmag < settings.saturation_limit,
        settings.marker_distance_bright,
        settings.marker_distance,
    )
    close = distance[np.arange(nearest.size), nearest] < limit
    return peaks[np.unique(nearest[close])]


def _saturated_markers(
    image: np.ndarray, cluster: np.ndarray, peaks: np.ndarray, settings: K2P2Settings
) -> np.ndarray:
    """The peaks without all but the highest of those on one saturated patch."""
    saturated = np.zeros_like(cluster)
    peak_flux = float(np.max(image[cluster]))
    for col in _saturated_columns(image, cluster, settings):
        saturated[:, col] = cluster[:, col] & (image[:, col] >= settings.overflow_level * peak_flux)
    if not saturated.any():
        return peaks
    patches, _ = ndimage.label(saturated, structure=_EIGHT)
    patch_of_peak = patches[peaks[:, 0], peaks[:, 1]]
    keep = np.ones(len(peaks), dtype=bool)
    for patch in np.unique(patch_of_peak[patch_of_peak > 0]):
        members = np.flatnonzero(patch_of_peak == patch)
        best = members[np.argmax(image[peaks[members, 0], peaks[members, 1]])]
        keep[members] = False
        keep[best] = True
    return peaks[keep]


def _segment_cluster(
    image: np.ndarray,
    cluster: np.ndarray,
    core: np.ndarray,
    catalog: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    settings: K2P2Settings,
) -> list[np.ndarray]:
    """Split one cluster with a watershed; returns the segments (boolean images)."""
    basin = np.where(core, image, 0.0)
    if settings.ws_blur > 0:
        basin = ndimage.gaussian_filter(basin, settings.ws_blur)
    peaks = peak_local_max(
        basin,
        footprint=np.ones((settings.ws_footprint, settings.ws_footprint), dtype=bool),
        threshold_rel=settings.ws_thres,
        exclude_border=False,
        labels=cluster.astype(np.int32),
    )
    if peaks.size == 0:
        return [cluster]
    if catalog is not None:
        peaks = _catalog_markers(peaks, catalog, settings)
        if peaks.size == 0:
            logger.debug("cluster of %d pixels without catalog stars: dropped", cluster.sum())
            return []
    peaks = _saturated_markers(image, cluster, peaks, settings)
    if len(peaks) == 1:
        return [cluster]
    markers = np.zeros(image.shape, dtype=np.int32)
    markers[peaks[:, 0], peaks[:, 1]] = np.arange(1, len(peaks) + 1)
    labels = watershed(-basin, markers, mask=cluster)
    return [labels == k for k in range(1, len(peaks) + 1) if np.any(labels == k)]


def _fill_single_holes(mask: np.ndarray) -> np.ndarray:
    """Add the pixels whose four neighbours are all in the mask."""
    padded = np.pad(mask, 1)
    neighbours = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask | neighbours


def _extend_overflow(
    image: np.ndarray, mask: np.ndarray, significant: np.ndarray, settings: K2P2Settings
) -> np.ndarray:
    """Add the significant pixels of saturated columns connected to the mask."""
    extended = mask.copy()
    for col in _saturated_columns(image, mask, settings):
        rows = np.flatnonzero(mask[:, col])
        start = int(rows[np.argmax(image[rows, col])])
        lo = start
        while lo - 1 >= 0 and significant[lo - 1, col]:
            lo -= 1
        hi = start
        while hi + 1 < image.shape[0] and significant[hi + 1, col]:
            hi += 1
        extended[lo : hi + 1, col] = True
    return extended


def _extend_masks(
    image: np.ndarray,
    masks: list[np.ndarray],
    significant: np.ndarray,
    stars: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    settings: K2P2Settings,
) -> list[np.ndarray]:
    """Extend the masks of saturated stars along their bleed columns.

    With a catalog, only masks whose catalog stars combine to ``saturation_limit`` or
    brighter are extended (masks without catalog stars are not). Pixels added to a mask are
    taken from the other masks (the first extension wins).
    """
    additions = []
    for mask in masks:
        allowed = True
        if stars is not None:
            on = _stars_on_mask(mask, stars[0], stars[1])
            allowed = combined_magnitude(stars[2][on]) <= settings.saturation_limit
        grown = _extend_overflow(image, mask, significant, settings) if allowed else mask
        additions.append(grown & ~mask)
    if not any(a.any() for a in additions):
        return masks
    everything_added = np.logical_or.reduce(additions)
    taken = np.zeros(image.shape, dtype=bool)
    result = []
    for mask, added in zip(masks, additions, strict=True):
        others = everything_added & ~added
        result.append((mask & ~others) | (added & ~taken))
        taken |= added
    return [m for m in result if m.sum() >= settings.min_no_pixels_in_mask]


def k2p2_masks(
    sumimage,
    catalog: Any = None,
    settings: K2P2Settings | None = None,
    *,
    target: tuple[int, int] | None = None,
) -> K2P2Result:
    """Aperture masks of the stars in a sum image.

    Parameters
    ----------
    sumimage : array_like, shape (rows, columns)
        Mean (background-subtracted) image of the stamp [e-/s]; NaN where not collected.
    catalog : table, optional
        Stars in stamp coordinates: anything indexable by column name (mapping of arrays,
        astropy Table, numpy structured array) with ``row``, ``column`` (or the original's
        ``row_stamp``, ``column_stamp``) [pixels] and ``tmag``. With a catalog, clusters
        without catalog stars are dropped and watershed markers sit at catalog stars.
    settings : K2P2Settings, optional
        Default: ``K2P2Settings()`` (the original's values, tessphot's sky estimate and
        significance gate).
    target : (int, int), optional
        A pixel (row, column) whose masks alone are wanted. Where no mask can grow or take
        pixels (with a catalog, no saturated stars) and the pixel lies in a cluster with
        no other cluster around it, only that cluster is segmented: the masks holding the
        pixel are those found among all masks; the others may be left out.

    Returns
    -------
    K2P2Result
        ``masks`` (n, rows, columns) booleans, largest first; ``bandwidth`` of the sky KDE.

    Raises
    ------
    K2P2NoFlux
        If no pixel of the image is positive.
    K2P2NoStars
        If no pixel or cluster of pixels stands out of the noise.
    """
    settings = settings or K2P2Settings()
    image = np.asarray(sumimage, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"the sum image must be 2-D, not of shape {image.shape}")
    finite = np.isfinite(image)
    sky = sky_level(image, finite, settings)
    significant = finite & (image > sky.cut)
    logger.debug(
        "K2P2 sky mode %.4g, noise %.4g, cut %.4g, bandwidth %.4g, %d significant pixels",
        sky.mode,
        sky.noise,
        sky.cut,
        sky.bandwidth,
        significant.sum(),
    )
    if not significant.any():
        raise K2P2NoStars("no stars above threshold in the sum image")

    stars = None if catalog is None else _catalog_arrays(catalog)
    coords, labels, core_flags = cluster_pixels(
        significant, settings.cluster_radius, settings.min_for_cluster
    )

    segments: list[np.ndarray] = []
    for label in _clusters_to_segment(labels, coords, image.shape, stars, settings, target):
        members = labels == label
        cluster = np.zeros(image.shape, dtype=bool)
        cluster[coords[members, 0], coords[members, 1]] = True
        if settings.segmentation:
            core = np.zeros(image.shape, dtype=bool)
            core[coords[members & core_flags, 0], coords[members & core_flags, 1]] = True
            segments.extend(_segment_cluster(image, cluster, core, stars, settings))
        else:
            segments.append(cluster)

    gate = sky.mode + settings.min_peak_significance * sky.noise
    if settings.min_peak_significance > 0:
        segments = [s for s in segments if np.max(image[s]) > gate]
        if not segments:
            raise K2P2NoStars("no stars above the noise in the sum image")
    masks = [_fill_single_holes(s) for s in segments if s.sum() >= settings.min_no_pixels_in_mask]
    if settings.extend_overflow and masks:
        masks = _extend_masks(image, masks, significant, stars, settings)

    masks.sort(key=lambda m: -int(m.sum()))
    stack = np.array(masks, dtype=bool).reshape(len(masks), *image.shape)
    return K2P2Result(masks=stack, bandwidth=float(sky.bandwidth))


def _clusters_to_segment(
    labels: np.ndarray,
    coords: np.ndarray,
    shape: tuple[int, int],
    stars: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    settings: K2P2Settings,
    target: tuple[int, int] | None,
) -> np.ndarray:
    """The clusters whose segments :func:`k2p2_masks` makes: all, or the target's alone.

    A mask holds the target pixel only if its cluster does, unless it grows over it (a
    saturated star's bleed columns: not without stars at ``saturation_limit`` combined) or
    fills it as a hole (not unless another cluster reaches the pixel's four neighbours).
    """
    every = np.unique(labels[labels >= 0])
    if target is None or stars is None or every.size < 2:
        return every
    if settings.extend_overflow and combined_magnitude(stars[2]) <= settings.saturation_limit:
        return every
    image = np.full(shape, -1)
    image[coords[:, 0], coords[:, 1]] = labels
    row, col = target
    if not (0 <= row < shape[0] and 0 <= col < shape[1]) or image[row, col] < 0:
        return every
    around = np.pad(image, 1, constant_values=-1)[row : row + 3, col : col + 3]
    neighbours = around[[0, 1, 1, 2], [1, 0, 2, 1]]
    if np.any((neighbours >= 0) & (neighbours != image[row, col])):
        return every
    return np.array([image[row, col]])


# --------------------------------------------------------------------------------------------
# Helpers of aperture photometry


def minimum_aperture(
    shape: tuple[int, int], row: float, column: float, collected=None
) -> np.ndarray:
    """The fallback aperture: collected pixels within one pixel of the target in each axis.

    That is 2x2 pixels, or 3x3 when the target is exactly on a pixel centre.

    Parameters
    ----------
    shape : (int, int)
        (rows, columns) of the stamp.
    row, column : float
        Target position in stamp coordinates [pixels].
    collected : array_like of bool, optional
        Pixels with data; by default all.
    """
    rows, cols = np.ogrid[0 : shape[0], 0 : shape[1]]
    mask = (np.abs(rows - row) <= 1) & (np.abs(cols - column) <= 1)
    if collected is not None:
        mask &= np.asarray(collected, dtype=bool)
    return mask


def skip_targets(mask, starid, row, column, target_starid: int) -> list[int]:
    """The other catalog stars on a mask: their own photometry would duplicate this one.

    Parameters
    ----------
    mask : array_like of bool, shape (rows, columns)
    starid, row, column : array_like
        Catalog stars in stamp coordinates.
    target_starid : int
    """
    mask = np.asarray(mask, dtype=bool)
    on = _stars_on_mask(mask, row, column)
    ids = np.asarray(starid)[on]
    return [int(s) for s in ids if int(s) != int(target_starid)]
