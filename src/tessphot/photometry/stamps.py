"""Stamp sizes and boxes of pixels.

Coordinates are 0-based science-area ``(row, column)`` (pixel centres on integers). A stamp is
``(row_min, row_max, col_min, col_max)``, half-open like a numpy slice; "stamp coordinates"
are science coordinates minus ``(row_min, col_min)``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

#: The original's stamp sizes [px] as a function of Tmag: heights at Tmag 0-10 in 19 steps
#: and at 13; widths equal the heights from Tmag 4.7 on (bright stars bleed along columns).
STAMP_TMAG = (*np.linspace(0.0, 10.0, 20).tolist(), 13.0)
STAMP_HEIGHT = (832, 534, 344, 224, 147, 99, 68, 48, 36, 28, 23, 19.9, 17.8, 16.6, 15.7, 15.2,
                14.9, 14.7, 14.5, 14.5, 14.0)  # fmt: skip
STAMP_WIDTH = (158, 125, 100, 81, 66, 54, 45, 38, 33, *STAMP_HEIGHT[9:])


def stamp_size(tmag: float, min_size: int) -> tuple[int, int]:
    """Default stamp (height, width) for a star [px].

    The original's table, odd, at least ``min_size``.
    """

    def odd(n: float) -> int:
        n = max(int(math.ceil(n)), int(min_size))
        return 2 * (n // 2) + 1

    tmag = float(tmag) if math.isfinite(float(tmag)) else STAMP_TMAG[-1]
    return odd(np.interp(tmag, STAMP_TMAG, STAMP_HEIGHT)), odd(
        np.interp(tmag, STAMP_TMAG, STAMP_WIDTH)
    )


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The smallest box ``(row_min, row_max, col_min, col_max)`` holding a mask's pixels.

    The mask must not be empty; the box is half-open.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


#: The sides of a stamp, as :func:`footprint_cut` names them: its first and last rows and
#: columns.
SIDES = ("down", "up", "left", "right")


def footprint_cut(
    mask: np.ndarray, pixel: tuple[int, int], reach: int, *, sides=SIDES
) -> np.ndarray | None:
    """The part of a mask near ``pixel`` that connects to it (8-connected).

    Near: within ``reach`` pixels in rows and columns. For a mask that runs on into another
    star's light: the pixels a star's light can reach (its PRF's footprint) are all that
    can matter for it. None when ``pixel`` is not in the mask, or when that part touches
    one of the stamp's ``sides`` (of :data:`SIDES`).
    """
    row, col = pixel
    if not (0 <= row < mask.shape[0] and 0 <= col < mask.shape[1]) or not mask[row, col]:
        return None
    near = np.zeros(mask.shape, dtype=bool)
    near[max(row - reach, 0) : row + reach + 1, max(col - reach, 0) : col + reach + 1] = True
    labels, _ = ndimage.label(mask & near, structure=np.ones((3, 3), dtype=bool))
    cut = labels == labels[row, col]
    if any(touched_sides(cut)[side] for side in sides):
        return None
    return cut


def touched_sides(mask: np.ndarray) -> dict[str, bool]:
    """Whether a mask reaches each side of its stamp (:data:`SIDES`)."""
    return {
        "down": bool(mask[0].any()),
        "up": bool(mask[-1].any()),
        "left": bool(mask[:, 0].any()),
        "right": bool(mask[:, -1].any()),
    }
