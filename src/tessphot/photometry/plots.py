"""Diagnostic plots of a photometry target (``tessphot run --plot``).

One PNG per target in the original's plot folder
(``<output>/c{cadence:04d}/{TIC[:5]}/plots/{TIC:011d}/``): the stamp's average image with the
aperture outline, the K2P2 mask and the catalog stars, the light curve, and the background
summed over the aperture. matplotlib runs with the Agg backend (no display needed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from tessphot.lightcurve.diagnostics import DEFAULT_QUALITY_BITMASK  # noqa: E402
from tessphot.paths import atomic_path  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from tessphot.photometry.method import PhotometryMethod
    from tessphot.photometry.result import MethodResult

#: Figure size [in] and resolution [dpi].
FIGURE_SIZE = (11.0, 8.0)
DPI = 100
#: Catalog stars fainter than this many magnitudes below the target are not drawn.
NEIGHBOUR_DMAG = 6.0
#: Marker area of a star of the target's magnitude [pt^2].
MARKER_AREA = 80.0


def outline_segments(mask: np.ndarray) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """Line segments ((x0, y0), (x1, y1)) along the outer edges of a mask's pixels.

    In image coordinates (x = column, y = row, pixel centres on integers).
    """
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, 1)
    segments = []
    rows, cols = np.nonzero(mask)
    for r, c in zip(rows, cols, strict=True):
        pr, pc = r + 1, c + 1
        if not padded[pr - 1, pc]:
            segments.append(((c - 0.5, r - 0.5), (c + 0.5, r - 0.5)))
        if not padded[pr + 1, pc]:
            segments.append(((c - 0.5, r + 0.5), (c + 0.5, r + 0.5)))
        if not padded[pr, pc - 1]:
            segments.append(((c - 0.5, r - 0.5), (c - 0.5, r + 0.5)))
        if not padded[pr, pc + 1]:
            segments.append(((c + 0.5, r - 0.5), (c + 0.5, r + 0.5)))
    return segments


def _draw_outline(ax, mask, **style) -> None:
    from matplotlib.collections import LineCollection

    segments = outline_segments(mask)
    if segments:
        ax.add_collection(LineCollection(segments, **style))


def plot_photometry(phot: PhotometryMethod, result: MethodResult, path: str | os.PathLike) -> Path:
    """Write the diagnostic figure of a finished target.

    Parameters
    ----------
    phot : PhotometryMethod
        The method, after it ran (its masks).
    result : MethodResult
        Its result (the light curve).
    path : path-like
        The PNG.

    Returns
    -------
    pathlib.Path
        The file written (atomically).
    """
    path = Path(path)
    target = phot.target
    lc = result.columns
    fig = plt.figure(figsize=FIGURE_SIZE)
    try:
        grid = fig.add_gridspec(2, 2, width_ratios=(1, 1.6))
        ax_img = fig.add_subplot(grid[:, 0])
        ax_lc = fig.add_subplot(grid[0, 1])
        ax_bkg = fig.add_subplot(grid[1, 1], sharex=ax_lc)

        image = np.asarray(target.sumimage, dtype=float)
        positive = image[np.isfinite(image) & (image > 0)]
        vmin = max(float(np.percentile(positive, 5)), 1e-3) if positive.size else 1e-3
        vmax = max(float(np.percentile(positive, 99.5)), vmin * 10) if positive.size else 1.0
        shown = np.where(np.isfinite(image) & (image > vmin), image, vmin)
        im = ax_img.imshow(shown, origin="lower", cmap="Blues", norm=LogNorm(vmin=vmin, vmax=vmax))
        fig.colorbar(im, ax=ax_img, fraction=0.046, label="mean flux [e-/s]")
        k2p2 = getattr(phot, "k2p2_mask", None)
        if k2p2 is not None:
            _draw_outline(ax_img, k2p2, colors="orange", linewidths=1.0, linestyles="--")
        if phot.final_mask is not None:
            _draw_outline(ax_img, phot.final_mask, colors="red", linewidths=1.8)
        cat = target.catalog
        near = cat["tmag"] <= target.tmag + NEIGHBOUR_DMAG
        sizes = MARKER_AREA * 10 ** (-0.4 * (cat["tmag"][near] - target.tmag))
        ax_img.scatter(
            cat["column"][near],
            cat["row"][near],
            s=np.clip(sizes, 4, 400),
            facecolors="none",
            edgecolors="k",
            linewidths=0.8,
            label="catalog stars",
        )
        row, col = target.stamp_position
        ax_img.plot(col, row, "r+", ms=12, mew=2, label=f"TIC {target.starid}")
        ax_img.set_xlim(-0.5, image.shape[1] - 0.5)
        ax_img.set_ylim(-0.5, image.shape[0] - 0.5)
        ax_img.set_xlabel(f"column - {target.stamp[2]} [px]")
        ax_img.set_ylabel(f"row - {target.stamp[0]} [px]")
        ax_img.set_title(
            f"TIC {target.starid}, Tmag {target.tmag:.2f}: aperture {int(phot.final_mask.sum())} px"
            if phot.final_mask is not None
            else f"TIC {target.starid}"
        )
        ax_img.legend(loc="upper right", fontsize=8)

        time = lc.time
        flag = (lc.pixel_quality & DEFAULT_QUALITY_BITMASK) != 0
        flag |= lc.quality != 0
        ax_lc.errorbar(
            time[~flag],
            lc.flux[~flag],
            lc.flux_err[~flag],
            fmt=".",
            ms=3,
            color="k",
            ecolor="0.7",
            elinewidth=0.5,
            label="good",
        )
        if flag.any():
            ax_lc.plot(time[flag], lc.flux[flag], "x", color="tab:red", ms=4, label="flagged")
        ax_lc.set_ylabel("FLUX_RAW [e-/s]")
        d = target.source
        ax_lc.set_title(
            f"sector {d.sector}, camera {d.camera}, CCD {d.ccd}, "
            f"{d.cadence:.0f}-s cadence; contamination {result.contamination:.3f}"
        )
        ax_lc.legend(loc="best", fontsize=8)
        ax_bkg.plot(time, lc.flux_bkg, ".", ms=3, color="tab:green")
        ax_bkg.set_ylabel("FLUX_BKG [e-/s]")
        ax_bkg.set_xlabel("time [BTJD]")
        fig.tight_layout()
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=DPI)
    finally:
        plt.close(fig)
    return path
