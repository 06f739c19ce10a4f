"""The starlight model brought to each frame's pointing, by whole pixels.

The starlight model (:mod:`tessphot.prepare.stars`) is rendered once per CCD at the
catalogue positions and subtracted from every frame before its background is estimated
(:func:`tessphot.prepare.background.estimate_background`). The pointing carries the stars
away from there by up to ~1.5 px over a sector (sector 1), and the faint stars' light left
in the sky pixels then depends on the pointing: on a crowded crop the background's bias
changed by 0.1 e-/s/px between frames (0.17-0.27), a common step of 200 ppm in the aperture
fluxes of Tmag 11-12 stars. Moved by the frame's pointing to the nearest whole pixel, which
keeps the rendered model exact, the bias stays within 0.18-0.23.

The pointing is measured from the reference stars' flux-weighted centroids in their boxes
about the catalogue positions, above a rough sky level (the median of a sparse sample of the
frame): their median offset from the catalogue, rounded; measured again in boxes moved by
it (a box centroid follows a star by ~0.85 of its move near the box's centre, less towards
its edge).
"""

from __future__ import annotations

import numpy as np

from tessphot.prepare.motion import measure_centroids

#: Every this many rows and columns are sampled for a frame's rough sky level [px].
SKY_SAMPLE_STEP = 8
#: Passes of the pointing's measurement, the boxes moved by the shift found so far (a box
#: centroid follows a star by less the farther it is from the box's centre).
POINTING_PASSES = 3


def pointing_shift(
    image: np.ndarray,
    ref_rows: np.ndarray,
    ref_cols: np.ndarray,
    origin: tuple[int, int],
    half: int,
) -> tuple[int, int]:
    """The whole-pixel shift (rows, columns) from the catalogue positions to a frame's stars.

    Parameters
    ----------
    image : ndarray
        The frame [e-/s].
    ref_rows, ref_cols : ndarray
        The reference stars' catalogue positions [science px].
    origin : (int, int)
        Science position of the frame's pixel ``[0, 0]``.
    half : int
        Half-width of the centroid boxes [px].

    Returns
    -------
    (int, int)
        (0, 0) without reference stars or a measurement.
    """
    if not np.size(ref_rows):
        return (0, 0)
    sample = image[::SKY_SAMPLE_STEP, ::SKY_SAMPLE_STEP]
    if not np.isfinite(sample).any():
        return (0, 0)
    sky = np.broadcast_to(np.float32(np.nanmedian(sample)), image.shape)
    shift = np.zeros(2)
    for _ in range(POINTING_PASSES):
        rows, cols = ref_rows + shift[0], ref_cols + shift[1]
        centroids = measure_centroids(image, rows, cols, origin, half, background=sky)
        with np.errstate(invalid="ignore"):
            offsets = centroids - np.column_stack([rows, cols])
        good = np.isfinite(offsets).all(axis=1)
        if not good.any():
            break
        step = np.rint(np.median(offsets[good], axis=0))
        if not step.any():
            break
        shift += step
    return int(shift[0]), int(shift[1])


def shifted(starlight: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """The starlight model moved by whole pixels (rows, columns); the edges repeated.

    Pixel ``(i, j)`` of the result is pixel ``(i - rows, j - columns)`` of the model (a
    padded copy sliced: ten times faster than an interpolation of order 0).
    """
    if shift == (0, 0):
        return starlight
    dy, dx = shift
    ny, nx = starlight.shape
    pad = ((max(dy, 0), max(-dy, 0)), (max(dx, 0), max(-dx, 0)))
    padded = np.pad(starlight, pad, mode="edge")
    r0, c0 = max(-dy, 0), max(-dx, 0)
    return padded[r0 : r0 + ny, c0 : c0 + nx]
