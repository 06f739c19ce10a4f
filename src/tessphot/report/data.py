"""The tasks of a run as read from ``todo.sqlite``, and the noise model they are judged by."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tessphot.constants import CR_BLOCK_SIZE, FRAME_TIME, INTEGRATION_TIME
from tessphot.lightcurve.diagnostics import HOUR_SECONDS, MAD_TO_SIGMA, PPM, expected_noise

#: Sky background assumed by the noise model [e-/s per pixel]: a typical zodiacal light
#: (noise-model.md gives tens to ~150 e-/s per pixel); the diagnostics hold no per-star sky.
REFERENCE_BACKGROUND = 50.0
#: Cadences [s] at or below which no cosmic-ray mitigation is done on board (20-s data).
NO_CR_MITIGATION_CADENCE = 20
#: Point-to-point scatter (median absolute difference of consecutive points) of white noise
#: per unit standard deviation: sqrt(2) / 1.4826.
PTP_PER_SIGMA = math.sqrt(2.0) / MAD_TO_SIGMA

#: Columns read, as ``(name, SQL expression)``.
COLUMNS = (
    ("priority", "t.priority"),
    ("starid", "t.starid"),
    ("sector", "t.sector"),
    ("camera", "t.camera"),
    ("ccd", "t.ccd"),
    ("cadence", "t.cadence"),
    ("datasource", "t.datasource"),
    ("tmag", "t.tmag"),
    ("status", "t.status"),
    ("method", "t.method"),
    ("method_used", "d.method_used"),
    ("lightcurve", "d.lightcurve"),
    ("elaptime", "d.elaptime"),
    ("mean_flux", "d.mean_flux"),
    ("rms_hour", "d.rms_hour"),
    ("ptp", "d.ptp"),
    ("pos_row", "d.pos_row"),
    ("pos_column", "d.pos_column"),
    ("contamination", "d.contamination"),
    ("mask_size", "d.mask_size"),
    ("prf_chi2", "d.prf_chi2"),
    ("errors", "d.errors"),
)
#: Columns of ``diagnostics`` that older todo files lack (read as NULL there).
NEWER_DIAGNOSTICS = frozenset({"prf_chi2"})
#: Columns of the corrections (``tessphot correct``), NULL before they are made.
CORRECTION_COLUMNS = (
    ("corr_status", "t.corr_status"),
    ("corr_method", "c.method"),
    ("rms_hour_corr", "c.rms_hour"),
    ("ptp_corr", "c.ptp"),
)
#: Columns holding text (the others are numbers; NULL becomes NaN).
TEXT_COLUMNS = frozenset(
    {"datasource", "method", "method_used", "lightcurve", "errors", "corr_method"}
)


@dataclass
class RunTable:
    """Every task of a todo list with its diagnostics, one array per column.

    Numbers are float arrays (NaN where NULL), text columns object arrays (None where NULL).
    """

    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns["priority"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def subset(self, keep: np.ndarray) -> RunTable:
        """The rows where ``keep`` is true."""
        return RunTable({name: values[keep] for name, values in self.columns.items()})


def read_run(todo_path: str | Path) -> RunTable:
    """Read the todo list and diagnostics of ``todo.sqlite`` (read-only).

    Raises
    ------
    ValueError
        When the file is not a todo list with its diagnostics.
    """
    con = sqlite3.connect(f"{Path(todo_path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        corrected = "diagnostics_corr" in tables
        columns_read = COLUMNS + CORRECTION_COLUMNS if corrected else COLUMNS
        present = {r[1] for r in con.execute("PRAGMA table_info(diagnostics)")}
        select = ", ".join(
            "NULL" if name in NEWER_DIAGNOSTICS and name not in present else expr
            for name, expr in columns_read
        )
        join = " LEFT JOIN diagnostics_corr AS c ON c.priority = t.priority" if corrected else ""
        rows = con.execute(
            f"SELECT {select} FROM todolist AS t "
            f"LEFT JOIN diagnostics AS d ON d.priority = t.priority{join} ORDER BY t.priority"
        ).fetchall()
    except sqlite3.DatabaseError as err:
        raise ValueError(f"{todo_path}: not a todo list with diagnostics ({err})") from None
    finally:
        con.close()
    if not corrected:  # before the corrections: their columns all NULL
        columns_read = COLUMNS + CORRECTION_COLUMNS
        rows = [(*row, None, None, None, None) for row in rows]
    columns: dict[str, np.ndarray] = {}
    for i, (name, _) in enumerate(columns_read):
        values = [row[i] for row in rows]
        if name in TEXT_COLUMNS:
            columns[name] = np.array(values, dtype=object)
        else:
            columns[name] = np.array([np.nan if v is None else v for v in values], dtype=float)
    return RunTable(columns)


def exposure(cadence: float) -> tuple[float, float]:
    """Photon-collecting time per cadence [s] and 2-s frames co-added, for a cadence [s].

    On-board cosmic-ray mitigation drops the highest and lowest frame of every block of
    ``CR_BLOCK_SIZE`` (not for 20-s data).
    """
    kept = 1.0 if cadence <= NO_CR_MITIGATION_CADENCE else 1.0 - 2.0 / CR_BLOCK_SIZE
    frames = cadence / FRAME_TIME * kept
    return frames * INTEGRATION_TIME, frames


def model_noise(tmag, n_pix, cadence: float, *, timescale: float = HOUR_SECONDS):
    """Expected noise [ppm] of stars of a cadence on a timescale (noise-model.md).

    Shot, sky (at ``REFERENCE_BACKGROUND``), read noise of ``n_pix`` pixels and the
    systematic floor, summed in quadrature (:func:`tessphot.lightcurve.expected_noise`).
    """
    exposure_time, frames = exposure(cadence)
    n_pix = np.where(np.asarray(n_pix, dtype=float) > 0, n_pix, np.nan)
    return expected_noise(
        tmag,
        n_pix=n_pix,
        background=REFERENCE_BACKGROUND,
        exposure_time=exposure_time,
        n_frames=frames,
        cadence=cadence,
        timescale=timescale,
    )


def noise_ratios(run: RunTable) -> tuple[np.ndarray, np.ndarray]:
    """Per task: ``rms_hour`` over the 1-hour model, and ``ptp`` over the model of white noise.

    Both NaN where a term is missing (no mask size, no magnitude, no diagnostics).
    """
    rms = np.full(len(run), np.nan)
    ptp = np.full(len(run), np.nan)
    for cadence in np.unique(run["cadence"][np.isfinite(run["cadence"])]):
        rows = run["cadence"] == cadence
        tmag, n_pix = run["tmag"][rows], run["mask_size"][rows]
        hour = model_noise(tmag, n_pix, cadence)
        point = model_noise(tmag, n_pix, cadence, timescale=cadence) * PTP_PER_SIGMA
        rms[rows] = run["rms_hour"][rows] * PPM / hour
        ptp[rows] = run["ptp"][rows] * PPM / point
    return rms, ptp


#: Coefficients of the published 1-hour precision curve (TIC paper; ticgen; noise-model.md):
#: ``ln(sigma / ppm)`` as a polynomial in Tmag, lowest power first.
PUBLISHED_COEFFICIENTS = (3.29685, 0.85002, -0.285042, 0.0395908, -0.00223080, 4.73508e-5)


def published_noise(tmag) -> np.ndarray:
    """The published 1-hour precision of a star of magnitude ``tmag`` [ppm] (ticgen)."""
    tmag = np.asarray(tmag, dtype=float)
    return np.exp(np.polynomial.polynomial.polyval(tmag, PUBLISHED_COEFFICIENTS))
