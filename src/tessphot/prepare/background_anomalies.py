"""Background anomalies: sub-boxes of a frame whose sky the smooth background model misses.

After the background passes (:mod:`tessphot.prepare.background`), the residual of the sky
pixels is examined in sub-boxes smaller than the mesh's boxes: where its median is both
significant and large, the smooth surface cannot follow the sky (a sharp scattered-light
feature, a glint), and the pixels are flagged.
"""

from __future__ import annotations

import bottleneck as bn
import numpy as np

from tessphot.config.prepare import BackgroundSettings

#: A median's uncertainty relative to rms / sqrt(n) for Gaussian data.
MEDIAN_EFFICIENCY = 1.2533
#: Pixels searched at once: a band of rows of a few MB [px].
ANOMALY_BAND_PIXELS = 2**19


def anomalies(
    residual: np.ndarray,
    used: np.ndarray,
    uncertainty: np.ndarray,
    settings: BackgroundSettings,
    box: int,
) -> np.ndarray:
    """Pixels in sub-boxes where the background model misses structure of the real sky.

    ``residual`` is image - stars - background, on the image the statistics run on (binned
    when the estimate bins); ``box`` is the sub-box's size on that image [its px]. A sub-box
    is anomalous when the median residual of its background pixels is both significant and
    large.
    """
    b = int(box)
    ny, nx = residual.shape
    bad = np.zeros((-(-ny // b), -(-nx // b)), dtype=bool)
    # In bands of sub-box rows: the temporaries are a band's, not a whole image's.
    step = max(1, ANOMALY_BAND_PIXELS // (bad.shape[1] * b * b))
    for r0 in range(0, bad.shape[0], step):
        rows = slice(r0 * b, min(r0 + step, bad.shape[0]) * b)
        bad[r0 : r0 + step] = _anomalous_sub_boxes(
            residual[rows], used[rows], uncertainty[rows], settings, b
        )
    full = np.repeat(np.repeat(bad, b, axis=0), b, axis=1)
    return full[:ny, :nx]


def _anomalous_sub_boxes(
    residual: np.ndarray,
    used: np.ndarray,
    uncertainty: np.ndarray,
    settings: BackgroundSettings,
    b: int,
) -> np.ndarray:
    """:func:`anomalies` of a band of rows, per sub-box."""
    ny, nx = residual.shape
    py, px = -ny % b, -nx % b
    res, unc = np.where(used, residual, np.nan), np.where(used, uncertainty, np.nan)
    if py or px:
        res = np.pad(res, ((0, py), (0, px)), constant_values=np.nan)
        unc = np.pad(unc, ((0, py), (0, px)), constant_values=np.nan)
    res, unc = _sub_boxes(res, b), _sub_boxes(unc, b)
    med = bn.nanmedian(res, axis=-1)  # NaN for a sub-box without background pixels
    n = np.sum(np.isfinite(res), axis=-1)
    sigma = MEDIAN_EFFICIENCY * bn.nanmedian(unc, axis=-1) / np.sqrt(np.maximum(n, 1))
    with np.errstate(invalid="ignore"):
        bad = (np.abs(med) > settings.anomaly_sigma * sigma) & (
            np.abs(med) > settings.anomaly_min_level
        )
    return bad & (n >= 4)


def _sub_boxes(image: np.ndarray, box: int) -> np.ndarray:
    """The pixels of each ``box`` x ``box`` sub-box along a last axis (ny/box, nx/box, box²)."""
    ny, nx = image.shape[0] // box, image.shape[1] // box
    return image.reshape(ny, box, nx, box).transpose(0, 2, 1, 3).reshape(ny, nx, box * box)
