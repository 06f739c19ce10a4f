"""The figures of the precision report: one PNG per subject and group of tasks.

Matplotlib (Agg backend) is imported when a figure is drawn, so that the report's other
parts (the data validation) do not load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tessphot.lightcurve.diagnostics import HOUR_SECONDS, PPM
from tessphot.paths import atomic_path
from tessphot.report.data import PTP_PER_SIGMA, RunTable, model_noise, published_noise
from tessphot.report.validation import expected_mask_size

#: Figure size [inches] and resolution [dots per inch] of the PNG files.
FIGSIZE = (10.0, 4.0)
DPI = 90
#: Magnitudes of the model curves [Tmag].
CURVE_TMAG = np.linspace(2.0, 18.0, 161)
#: Colour range of the CCD map: log10 of the noise over the model.
MAP_RANGE = (-0.5, 1.0)
#: Marker size [points^2].
MARKER = 9


def _pyplot() -> Any:
    """Matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    """Write a figure to a PNG file atomically and close it."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    _pyplot().close(fig)
    return path


def noise_figure(run: RunTable, cadence: float, path: Path) -> Path:
    """``rms_hour`` and point-to-point scatter [ppm] against Tmag, with the model curves."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=FIGSIZE, constrained_layout=True)
    n_pix = expected_mask_size(CURVE_TMAG)
    hour = model_noise(CURVE_TMAG, n_pix, cadence)
    point = model_noise(CURVE_TMAG, n_pix, cadence, timescale=cadence) * PTP_PER_SIGMA
    corrected = np.isfinite(run["rms_hour_corr"])
    raw_label = "stars, raw flux" if corrected.any() else "stars"
    left.scatter(run["tmag"], run["rms_hour"] * PPM, s=MARKER, label=raw_label)
    if corrected.any():
        for ax, column in ((left, "rms_hour_corr"), (right, "ptp_corr")):
            ax.scatter(
                run["tmag"][corrected],
                run[column][corrected] * PPM,
                s=MARKER,
                marker="x",
                label="stars, corrected flux",
            )
    left.plot(CURVE_TMAG, hour, "k-", label="model (usual mask)")
    left.plot(CURVE_TMAG, published_noise(CURVE_TMAG), "k--", label="published (ticgen)")
    left.set_ylabel(f"rms on {HOUR_SECONDS / 3600:g} h [ppm]")
    right.scatter(run["tmag"], run["ptp"] * PPM, s=MARKER)
    right.plot(CURVE_TMAG, point, "k-")
    right.set_ylabel("point-to-point scatter [ppm]")
    for ax in (left, right):
        ax.set_yscale("log")
        ax.set_xlabel("Tmag")
    left.legend(loc="upper left", fontsize="small")
    return _save(fig, path)


def aperture_figure(run: RunTable, path: Path) -> Path:
    """Mask size and contamination against Tmag."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=FIGSIZE, constrained_layout=True)
    left.scatter(run["tmag"], run["mask_size"], s=MARKER)
    left.plot(CURVE_TMAG, expected_mask_size(CURVE_TMAG), "k-", label="usual size")
    left.set_yscale("log")
    left.set_ylabel("mask size [pixels]")
    left.legend(fontsize="small")
    right.scatter(run["tmag"], run["contamination"], s=MARKER)
    right.set_ylabel("contamination")
    for ax in (left, right):
        ax.set_xlabel("Tmag")
    return _save(fig, path)


def prf_chi2_figure(run: RunTable, path: Path) -> Path:
    """The PRF fits' reduced chi-square (``PRFCHI2``) against Tmag, per method used."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(FIGSIZE[0] / 2, FIGSIZE[1]), constrained_layout=True)
    fitted = np.isfinite(run["prf_chi2"])
    for method in sorted({str(m) for m in run["method_used"][fitted]}):
        rows = fitted & (run["method_used"] == method)
        ax.scatter(run["tmag"][rows], run["prf_chi2"][rows], s=MARKER, label=method)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("Tmag")
    ax.set_ylabel("PRFCHI2 (reduced chi-square of the PRF fit)")
    ax.legend(fontsize="small")
    return _save(fig, path)


def map_figure(run: RunTable, ratio: np.ndarray, path: Path) -> Path:
    """The targets on the CCD, coloured by ``rms_hour`` over the model."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 5.0), constrained_layout=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        colour = np.log10(ratio)
    shown = np.isfinite(colour)
    ax.scatter(run["pos_column"][~shown], run["pos_row"][~shown], s=MARKER, c="lightgrey")
    points = ax.scatter(
        run["pos_column"][shown],
        run["pos_row"][shown],
        s=MARKER * 2,
        c=colour[shown],
        cmap="coolwarm",
        vmin=MAP_RANGE[0],
        vmax=MAP_RANGE[1],
    )
    fig.colorbar(points, ax=ax, label="log10(rms_hour / model)")
    ax.set_xlabel("column [pixels]")
    ax.set_ylabel("row [pixels]")
    ax.set_aspect("equal", adjustable="datalim")
    return _save(fig, path)


def time_figure(run: RunTable, path: Path) -> Path:
    """Computing time per star [s] against Tmag, by method used."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.0), constrained_layout=True)
    methods = run["method_used"]
    for method in sorted({m for m in methods if m is not None}):
        rows = methods == method
        ax.scatter(run["tmag"][rows], run["elaptime"][rows], s=MARKER, label=method)
    ax.set_xlabel("Tmag")
    ax.set_ylabel("computing time per star [s]")
    ax.set_yscale("log")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    return _save(fig, path)
