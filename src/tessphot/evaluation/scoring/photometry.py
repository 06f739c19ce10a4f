"""Precision of light curves of a simulated sector, scored against the simulator's truth.

Shared by ``tessphot demo`` and ``benchmarks/bench_precision.py``. For every task of the
todo list with a light curve:

* **Residual scatter.** The flux is compared with the star's true flux per cadence: the
  truth ``F_t`` is fitted to the measured flux as ``a F_t + b`` (the scale takes the
  aperture's enclosed fraction, the offset the constant light of neighbours), and the 1-hour
  robust RMS of ``(flux - a F_t - b) / median(flux)`` (:func:`rms_timescale`, on cadences
  without the default quality flags) is the achieved noise, with the injected signal
  removed. With simulated systematics ``F_t`` includes them (the flux as rendered) and
  their shapes in a fixed aperture, ``m_t`` (the neighbours' light) and the additive
  ``g_t``, are fitted too (:mod:`tessphot.evaluation.scoring.systematics`).
* **Expected noise** (noise-model.md, "On simulated data"), from the simulator's own
  parameters: shot noise of the flux actually collected (the median measured flux), sky
  noise of ``n_pix`` pixels (the mask size the pipeline used) of the true background at the
  star, read noise of the star's CCD output with the headers' number of co-added frames and
  exposure time. No systematic floor (the simulator has none). The ratio of the two is the
  headline figure.
* **Amplitude recovery** of injected sinusoids: a sinusoid of the true period fitted to the
  relative light curve, divided by ``1 - contamination`` (the pipeline's estimate of the
  light of other stars in the aperture), compared with the same fit to the true relative
  flux. Only stars whose fitted amplitude is measured to 1 % or better (error at most half
  the 2 % target) count, so that the score measures how the pipeline recovers amplitudes
  (dilution, contamination, aperture losses) rather than the noise of the fit: with the
  error allowed up to 10 %, the median |ratio - 1| of a typical sample is 0.02 from the
  fit's noise alone.
* **Signal recovery** of an injected signal of any kind
  (:func:`~tessphot.evaluation.scoring.signals.signal_recovery`): the relative light curve
  ``flux / median - 1`` regressed on the true relative signal ``F_t / mean(F_t) - 1`` plus a
  low-order polynomial in time (slow trends), divided by ``1 - contamination``; 1 when
  the signal is recovered in full.
* **Status**: the fraction of the tasks that ended OK.

Targets are *crowded* when the pipeline's contamination exceeds 10 %; the table reports
isolated and crowded stars separately.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from astropy.io import fits

from tessphot.constants import OUTPUT_WIDTH
from tessphot.evaluation.scoring.signals import MIN_CADENCES, amplitude_ratio, signal_recovery
from tessphot.evaluation.scoring.systematics import TargetSystematics
from tessphot.evaluation.simulate.truth import read_systematics
from tessphot.evaluation.simulate.variability import CONSTANT, SINUSOID
from tessphot.lightcurve.diagnostics import (
    DEFAULT_QUALITY_BITMASK,
    HOUR_SECONDS,
    expected_noise,
    rms_timescale,
)
from tessphot.paths import output_folder as default_output_folder
from tessphot.paths import stored_lightcurve
from tessphot.tasks import STATUS, TODO_FILENAME

#: Contamination above which a target counts as crowded.
CROWDED_CONTAMINATION = 0.10
#: Edges of the Tmag bins of the table.
TMAG_BINS = (2.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0)
#: Targets of the issue: median noise ratio of isolated Tmag 8-14 stars and amplitudes.
TARGET_RATIO = 1.10
TARGET_RATIO_TMAG = (8.0, 14.0)
TARGET_AMPLITUDE = 0.02
#: Parts per million.
PPM = 1e6


def is_crowded(contamination: float) -> bool:
    """Whether a target's contamination exceeds :data:`CROWDED_CONTAMINATION`."""
    return math.isfinite(contamination) and contamination > CROWDED_CONTAMINATION


@dataclass
class StarScore:
    """The score of one task."""

    starid: int
    tmag: float
    status: str
    contamination: float = math.nan
    mask_size: float = math.nan
    rms_hour_ppm: float = math.nan
    expected_ppm: float = math.nan
    ratio: float = math.nan
    #: Median measured flux over the star's median true flux (the aperture's enclosed
    #: fraction plus contamination).
    flux_fraction: float = math.nan
    #: Fraction of the median measured flux that is the target's own light (from the truth
    #: fit ``a F_t + b``: ``a median(F_t) / median(flux)``); 1 for a method that fits the
    #: neighbours out, ``1 - contamination`` for an aperture.
    target_fraction: float = math.nan
    amplitude_ratio: float = math.nan
    #: Fraction of the injected signal (any kind) recovered
    #: (:func:`~tessphot.evaluation.scoring.signals.signal_recovery`).
    signal_fraction: float = math.nan
    #: Error of :attr:`signal_fraction` (1 sigma, from the fit's residuals).
    signal_fraction_error: float = math.nan

    @property
    def crowded(self) -> bool:
        """Whether the pipeline's contamination exceeds :data:`CROWDED_CONTAMINATION`."""
        return is_crowded(self.contamination)


@dataclass
class Score:
    """Scores of all tasks of a simulated sector."""

    stars: list[StarScore] = field(default_factory=list)

    def select(self, lo: float, hi: float, crowded: bool | None = None) -> list[StarScore]:
        """Stars with ``lo <= tmag < hi`` (and the given crowding)."""
        return [
            s for s in self.stars if lo <= s.tmag < hi and (crowded is None or s.crowded == crowded)
        ]

    def median_ratio(self, lo: float, hi: float, crowded: bool | None = False) -> float:
        """Median noise ratio of the stars with ``lo <= tmag < hi`` (NaN without any)."""
        values = [s.ratio for s in self.select(lo, hi, crowded) if math.isfinite(s.ratio)]
        return float(np.median(values)) if values else math.nan

    def amplitude_ratios(self, lo: float = -math.inf, hi: float = math.inf, crowded=False):
        """Measured sinusoid amplitude ratios of the stars with ``lo <= tmag < hi``."""
        return np.array(
            [
                s.amplitude_ratio
                for s in self.select(lo, hi, crowded)
                if math.isfinite(s.amplitude_ratio)
            ]
        )


def _truth(path: Path) -> dict:
    with h5py.File(path, "r") as h5:
        attrs = dict(h5.attrs)
        background = h5["background"]
        stars = h5["stars"][:]
        return {
            "stars": stars,
            "signals": h5["signals"][:],
            "flux": h5["flux"][:],
            "row": h5["row"][:],
            "col": h5["col"][:],
            "ffiindex": h5["time/ffiindex"][:],
            "tmid": h5["time/tmid"][:],
            "background_mean": background[:].mean(axis=0),
            "binning": int(background.attrs["binning"]),
            "background_origin": tuple(int(v) for v in background.attrs["origin"]),
            "exposure_time": float(attrs["exposure_time"]),
            "num_coadded": float(attrs["num_coadded"]),
            "read_noise": np.asarray(attrs["read_noise"], dtype=float),
            "cadence": float(attrs["cadence"]),
            "systematics": TargetSystematics.select(read_systematics(h5), np.arange(stars.size)),
        }


def aligned_flux(path: Path, truth: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A light curve's raw flux, each cadence's index in the truth, and its good cadences.

    Returns
    -------
    flux : ndarray
        ``FLUX_RAW`` [e-/s].
    k : ndarray of int
        The truth's cadence of each (-1: none).
    good : ndarray of bool
        In the truth, finite, and of good quality (the default bitmask).
    """
    with fits.open(path, memmap=False) as hdul:
        data = hdul["LIGHTCURVE"].data
        flux = np.asarray(data["FLUX_RAW"], dtype=float)
        cadenceno = np.asarray(data["CADENCENO"])
        quality = np.asarray(data["PIXEL_QUALITY"]) | np.asarray(data["QUALITY"])
    lookup = {int(c): k for k, c in enumerate(truth["ffiindex"])}
    k = np.array([lookup.get(int(c), -1) for c in cadenceno])
    good = (k >= 0) & np.isfinite(flux) & ((quality & DEFAULT_QUALITY_BITMASK) == 0)
    return flux, k, good


def score_star(
    path: Path, truth: dict, index: int, contamination: float, mask_size: float
) -> dict[str, float]:
    """Score one light curve against the truth of star ``index``."""
    flux, k, good = aligned_flux(path, truth)
    out = dict.fromkeys(
        (
            "rms_hour_ppm",
            "expected_ppm",
            "ratio",
            "flux_fraction",
            "target_fraction",
            "amplitude_ratio",
            "signal_fraction",
            "signal_fraction_error",
        ),
        math.nan,
    )
    if good.sum() < MIN_CADENCES:
        return out
    f = flux[good]
    true_flux = truth["flux"][k[good], index]
    t = truth["tmid"][k[good]]
    design = np.column_stack([true_flux, np.ones_like(true_flux)])
    if truth["systematics"] is not None:
        design = np.column_stack([design, truth["systematics"].raw_columns(index, k[good])])
    coef, *_ = np.linalg.lstsq(design, f, rcond=None)
    scale, offset = coef[:2]
    median = float(np.median(f))
    if not median > 0:
        return out
    fitted = scale * true_flux + offset
    if design.shape[1] > 2:
        fitted = fitted + design[:, 2:] @ coef[2:]
    residual = (f - fitted) / median
    rms = rms_timescale(t, residual) * PPM
    star = truth["stars"][index]
    origin = truth["background_origin"]
    binning = truth["binning"]
    bg = truth["background_mean"]
    by = int(np.clip((star["row"] - origin[0]) // binning, 0, bg.shape[0] - 1))
    bx = int(np.clip((star["col"] - origin[1]) // binning, 0, bg.shape[1] - 1))
    output = int(np.clip(star["col"] // OUTPUT_WIDTH, 0, truth["read_noise"].size - 1))
    noise = expected_noise(
        flux=median,
        n_pix=mask_size,
        background=float(bg[by, bx]),
        exposure_time=truth["exposure_time"],
        n_frames=truth["num_coadded"],
        cadence=truth["cadence"],
        read_noise=float(truth["read_noise"][output]),
        timescale=HOUR_SECONDS,
        components=True,
    )
    expected = math.sqrt(noise["shot"] ** 2 + noise["sky"] ** 2 + noise["read"] ** 2)
    out.update(
        rms_hour_ppm=rms,
        expected_ppm=expected,
        ratio=rms / expected if expected > 0 else math.nan,
        flux_fraction=median / float(np.median(true_flux)),
        target_fraction=scale * float(np.median(true_flux)) / median,
    )
    signal = truth["signals"][index]
    if int(signal["kind"]) == SINUSOID:
        period = float(signal["period"])
        out["amplitude_ratio"] = amplitude_ratio(t, f, true_flux, period, contamination)
    if int(signal["kind"]) != CONSTANT:
        recovery = signal_recovery(t, f, true_flux, contamination)
        out["signal_fraction"] = recovery.fraction
        out["signal_fraction_error"] = recovery.fraction_error
    return out


def score_sector(
    input_folder: str | Path,
    output_folder: str | Path | None = None,
    truth_file: str | Path | None = None,
) -> Score:
    """Score every task of ``<input_folder>/todo.sqlite`` against the simulation's truth.

    Parameters
    ----------
    input_folder : path-like
        The simulated sector's folder (with ``truth/truth_*.hdf5`` and ``todo.sqlite``).
    output_folder : path-like, optional
        Light-curve root (default as ``tessphot run``).
    truth_file : path-like, optional
        The truth file (default the only ``truth/truth_*.hdf5``).

    Returns
    -------
    Score
    """
    folder = Path(input_folder)
    truth_file = Path(truth_file) if truth_file is not None else find_truth(folder)
    output = Path(output_folder) if output_folder else default_output_folder(folder)
    truth = _truth(truth_file)
    index = {int(s): i for i, s in enumerate(truth["stars"]["starid"])}
    score = Score()
    for starid, tmag, status, lightcurve, contamination, mask_size in todo_rows(folder):
        name = STATUS(status).name if status is not None else "NOT_RUN"
        star = StarScore(
            starid=int(starid),
            tmag=float(tmag),
            status=name,
            contamination=math.nan if contamination is None else float(contamination),
            mask_size=math.nan if mask_size is None else float(mask_size),
        )
        i = index.get(int(starid))
        path = lightcurve_path(folder, output, lightcurve)
        if path is not None and i is not None and name in ("OK", "WARNING"):
            for key, value in score_star(
                path, truth, i, star.contamination, star.mask_size
            ).items():
                setattr(star, key, value)
        score.stars.append(star)
    return score


def find_truth(folder: Path) -> Path:
    """The only ``truth/truth_*.hdf5`` of a simulated sector's folder.

    Raises
    ------
    FileNotFoundError
        When there is none or more than one.
    """
    found = sorted((Path(folder) / "truth").glob("truth_*.hdf5"))
    if len(found) != 1:
        raise FileNotFoundError(f"expected one truth/truth_*.hdf5 in {folder}")
    return found[0]


def todo_rows(folder: Path) -> list[tuple]:
    """Every task of ``<folder>/todo.sqlite``, in priority order.

    Each row: starid, tmag, status, light curve, contamination and mask size (None where
    not run).
    """
    con = sqlite3.connect(f"file:{Path(folder) / TODO_FILENAME}?mode=ro", uri=True)
    try:
        return con.execute(
            "SELECT t.starid, t.tmag, t.status, d.lightcurve, d.contamination, d.mask_size "
            "FROM todolist AS t LEFT JOIN diagnostics AS d ON d.priority = t.priority "
            "ORDER BY t.priority"
        ).fetchall()
    finally:
        con.close()


def lightcurve_path(folder: Path, output: Path, lightcurve: str | None) -> Path | None:
    """The file of a task's light curve, or None when there is none.

    A relative name is sought in the input folder, then in the output folder.
    """
    if not lightcurve:
        return None
    path = stored_lightcurve(lightcurve, folder, output)
    return path if path.is_file() else None


def _fmt(value: float, spec: str) -> str:
    return format(value, spec) if math.isfinite(value) else "-"


def format_table(score: Score, bins: Sequence[float] = TMAG_BINS) -> str:
    """The precision table: per Tmag bin, isolated and crowded stars."""
    lines = [
        "Precision against the truth (1-h robust RMS of flux - truth, expected noise for the "
        "aperture used):",
        f"{'Tmag':>9} {'n':>4} {'OK':>5} | {'isolated':>8} {'ratio':>6} {'rms ppm':>8} "
        f"{'exp ppm':>8} {'npix':>5} {'frac':>5} {'amp':>11} | {'crowded':>7} {'ratio':>6}",
    ]
    for lo, hi in zip(bins[:-1], bins[1:], strict=True):
        every = score.select(lo, hi)
        if not every:
            continue
        ok = sum(s.status == "OK" for s in every) / len(every)
        iso = [s for s in score.select(lo, hi, False) if math.isfinite(s.ratio)]
        crowd = [s for s in score.select(lo, hi, True) if math.isfinite(s.ratio)]

        def med(stars, attr):
            values = [getattr(s, attr) for s in stars if math.isfinite(getattr(s, attr))]
            return float(np.median(values)) if values else math.nan

        amps = score.amplitude_ratios(lo, hi, False)
        amp = f"{np.median(amps):.3f} ({amps.size})" if amps.size else "-"
        lines.append(
            f"{lo:4.0f}-{hi:<4.0f} {len(every):4d} {ok:5.0%} | {len(iso):8d} "
            f"{_fmt(med(iso, 'ratio'), '6.2f')} {_fmt(med(iso, 'rms_hour_ppm'), '8.0f')} "
            f"{_fmt(med(iso, 'expected_ppm'), '8.0f')} {_fmt(med(iso, 'mask_size'), '5.0f')} "
            f"{_fmt(med(iso, 'flux_fraction'), '5.2f')} {amp:>11} | {len(crowd):7d} "
            f"{_fmt(med(crowd, 'ratio'), '6.2f')}"
        )
    lo, hi = TARGET_RATIO_TMAG
    ratio = score.median_ratio(lo, hi, crowded=False)
    amps = score.amplitude_ratios(crowded=False)
    amp_dev = float(np.median(np.abs(amps - 1))) if amps.size else math.nan
    ok = sum(s.status == "OK" for s in score.stars) / max(len(score.stars), 1)
    lines.append(
        f"Isolated Tmag {lo:g}-{hi:g}: median ratio {_fmt(ratio, '.2f')} (target <= "
        f"{TARGET_RATIO:.2f}: {'PASS' if ratio <= TARGET_RATIO else 'FAIL'}); sinusoid "
        f"amplitudes: median |ratio - 1| {_fmt(amp_dev, '.3f')} over {amps.size} stars "
        f"measured to 1 % "
        f"(target <= {TARGET_AMPLITUDE:.2f}: "
        f"{'PASS' if amp_dev <= TARGET_AMPLITUDE else 'FAIL' if amps.size else 'n/a'}); "
        f"OK {ok:.0%} of {len(score.stars)} tasks"
    )
    return "\n".join(lines)
