"""Saturated stars (Tmag 2-6) with injected signals, through the automatic choice of method
and through each method forced.

``python benchmarks/bench_bright.py [--folder DIR] [--prf-dir DIR] [--methods auto aperture
halo linpsf psf] [--workers N] [--size N] [--prf-differences] [--effective-prf]``

Simulates once (kept in ``--folder``; delete it to simulate anew) a 256x256 crop (``--size``:
larger crops keep the crop-top stars at the top edge) of sector 1,
camera 1, CCD 4 whose first row is the CCD's first science row, 400 cadences, the normal
field of Tmag 6-17 stars and 14 placed saturated stars of Tmag 2.2-6.0 (:data:`BRIGHT_STARS`)
in four classes:

``interior``
    at least 45 px from every edge of the crop;
``ccd-bottom``
    on rows 3-15: the bleed columns and the halo run off the CCD's bottom edge;
``crop-top``
    within 18 rows of the crop's top: they run off the top of the crop (the edge of the data);
``column-edge``
    on columns 3-8: the halo is cut by the crop's left edge.

No two of them are within :data:`MIN_SEPARATION` px, and their columns differ (their bleed
columns do not cross) but for the column-edge class, spread in rows instead. Each carries a
chosen signal: a sinusoid of 0.3-1 % semi-amplitude and 0.7-3 d period, or a transit of
0.3-1 % depth. The catalog, prepare and todo stages are run as for
``benchmarks/bench_precision.py``; then the photometry of the placed stars only (the
``starid`` constraint of :func:`tessphot.runner.loop.run_photometry`), once with the
automatic choice (``auto``: no method forced) and once per forced method, each in its own
copy of the todo list (``DIR/methods/<name>``, as ``benchmarks/bench_methods.py``). Methods
not implemented in this checkout are skipped. The photometry is redone on every run.

Scored per star and method (:mod:`tessphot.evaluation.scoring.photometry`): the status; for
``auto`` the method used and why (the switch to halo photometry logged in the diagnostics'
errors, or ``HALO_WHY``); the ratio of the 1-hour RMS of ``flux - (a F_t + b)`` to the expected
noise from the simulator's own parameters and the mask size the pipeline reports; the recovered
fraction of the injected signal (:func:`tessphot.evaluation.scoring.signals.signal_recovery`:
regression of ``flux / median - 1`` on ``F_t / mean(F_t) - 1`` plus a quadratic trend, divided
by ``1 - contamination``); the seconds spent on the star.

Target (the issue): every star ends OK, with a ratio of at most :data:`TARGET_RATIO` and the
signal recovered within :data:`TARGET_RECOVERY`. The thresholds are reported, never tuned.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from bench_methods import method_folder
from simulated import add_sector_arguments, ensure_simulated

from tessphot.config import load_settings
from tessphot.config.simulate import PRFDifferenceSettings
from tessphot.demo import prepare_simulated
from tessphot.evaluation.scoring.photometry import StarScore, score_sector
from tessphot.photometry.task import KNOWN_METHODS
from tessphot.runner import format_summary, run_photometry
from tessphot.tasks import SWITCH_TEXT, TODO_FILENAME

#: Simulated sector, camera and CCD.
SECTOR, CAMERA, CCD = 1, 1, 4
#: Science-area (row, column) of the crop's first pixel: row 0 is the CCD's first science
#: row, so that the bleed of stars near it runs off the real CCD edge.
ORIGIN = (0, 1100)
#: Crop size [px] and cadences (30 min each: 8.3 days).
SIZE = 256
CADENCES = 400
#: Seed of the simulation (the field of fainter stars, noise, jitter).
SEED = 2026
#: Name of the automatic choice among the methods of the tables.
AUTO = "auto"
#: Methods run by default: the automatic choice, then each forced.
DEFAULT_METHODS = (AUTO, "aperture", "halo", "linpsf", "psf")
#: Least distance between two placed bright stars [px].
MIN_SEPARATION = 25.0
#: Least distance of an interior star from every crop edge [px].
INTERIOR_MARGIN = 45.0
#: Targets of the issue: noise ratio at most 2, signal recovered within 5 %.
TARGET_RATIO = 2.0
TARGET_RECOVERY = 0.05
#: First TIC number of the placed stars.
FIRST_TIC = 990_000_001


@dataclass(frozen=True)
class BrightStar:
    """A placed saturated star: crop position [px], class and injected signal."""

    kind: str
    tmag: float
    #: Position on the crop [px] (science-area position minus :data:`ORIGIN`).
    row: float
    col: float
    signal: Mapping[str, Any]


def _sine(amplitude: float, period: float) -> dict[str, Any]:
    return {"kind": "sinusoid", "amplitude": amplitude, "period": period}


def _transit(depth: float, period: float, duration: float) -> dict[str, Any]:
    return {"kind": "transit", "amplitude": depth, "period": period, "duration": duration}


#: The placed stars: Tmag 2.2-6.0 spread over the classes, each class with both signal
#: kinds (periods [d], transit durations [d]; epochs drawn by the simulator).
BRIGHT_STARS = (
    BrightStar("interior", 2.20, 128.3, 128.6, _sine(0.004, 1.3)),
    BrightStar("interior", 3.37, 70.4, 180.2, _transit(0.006, 2.1, 0.16)),
    BrightStar("interior", 4.54, 190.7, 80.3, _sine(0.008, 0.7)),
    BrightStar("interior", 5.71, 100.2, 60.5, _transit(0.003, 1.6, 0.12)),
    BrightStar("ccd-bottom", 2.49, 8.3, 40.2, _transit(0.004, 2.7, 0.20)),
    BrightStar("ccd-bottom", 3.66, 12.6, 95.4, _sine(0.003, 2.4)),
    BrightStar("ccd-bottom", 4.83, 5.2, 160.7, _transit(0.010, 1.9, 0.10)),
    BrightStar("ccd-bottom", 6.00, 10.5, 225.3, _sine(0.006, 1.1)),
    BrightStar("crop-top", 2.78, 245.3, 200.4, _sine(0.010, 3.0)),
    BrightStar("crop-top", 3.95, 240.6, 30.3, _transit(0.005, 2.3, 0.14)),
    BrightStar("crop-top", 5.12, 249.2, 100.6, _sine(0.005, 0.9)),
    BrightStar("column-edge", 3.08, 60.4, 5.5, _transit(0.008, 1.4, 0.18)),
    BrightStar("column-edge", 4.25, 140.7, 3.6, _sine(0.007, 1.8)),
    BrightStar("column-edge", 5.42, 205.3, 7.4, _transit(0.005, 2.9, 0.15)),
)


def check_layout(stars: Sequence[BrightStar], size: int = SIZE) -> None:
    """Raise ValueError unless the placed stars keep to their classes and distances."""
    inside = {
        "interior": lambda s: (
            min(s.row, s.col, size - 1 - s.row, size - 1 - s.col) >= INTERIOR_MARGIN
        ),
        "ccd-bottom": lambda s: 3 <= s.row <= 15,
        "crop-top": lambda s: s.row >= size - 18,
        "column-edge": lambda s: 3 <= s.col <= 8,
    }
    for s in stars:
        if not inside[s.kind](s):
            raise ValueError(f"star at ({s.row}, {s.col}) is not of class {s.kind}")
    for a, b in itertools.combinations(stars, 2):
        if math.hypot(a.row - b.row, a.col - b.col) < MIN_SEPARATION:
            raise ValueError(f"stars at ({a.row}, {a.col}) and ({b.row}, {b.col}) too close")


def placed_stars(size: int = SIZE) -> tuple[BrightStar, ...]:
    """The placed stars on a crop of ``size`` px: the crop-top ones move with the top edge."""
    return tuple(
        replace(s, row=s.row + size - SIZE) if s.kind == "crop-top" else s for s in BRIGHT_STARS
    )


def extra_stars(stars: Sequence[BrightStar] = BRIGHT_STARS) -> list[tuple]:
    """The placed stars as :attr:`SimulationConfig.extra_stars` (science-area positions)."""
    return [
        (FIRST_TIC + i, s.tmag, s.row + ORIGIN[0], s.col + ORIGIN[1], dict(s.signal))
        for i, s in enumerate(stars)
    ]


@dataclass
class Outcome:
    """One star's result with one method."""

    score: StarScore
    method_used: str = ""
    reason: str = ""
    seconds: float = math.nan

    @property
    def deviation(self) -> float:
        """``|recovered fraction - 1|``."""
        return abs(self.score.signal_fraction - 1)

    @property
    def passes(self) -> bool:
        """OK, noise ratio and signal recovery within the targets."""
        return (
            self.score.status == "OK"
            and self.score.ratio <= TARGET_RATIO
            and self.deviation <= TARGET_RECOVERY
        )


@dataclass
class MethodRun:
    """The outcome of one method (or the automatic choice) on every placed star."""

    name: str
    elapsed: float
    outcomes: dict[int, Outcome] = field(default_factory=dict)


def _diagnostics(folder: Path, starids: Sequence[int]) -> dict[int, dict[str, Any]]:
    con = sqlite3.connect(f"file:{folder / TODO_FILENAME}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    marks = ",".join("?" * len(starids))
    try:
        rows = con.execute(
            "SELECT t.starid, d.method_used, d.elaptime, d.errors, d.lightcurve "
            "FROM todolist AS t LEFT JOIN diagnostics AS d ON d.priority = t.priority "
            f"WHERE t.starid IN ({marks})",
            list(starids),
        ).fetchall()
    finally:
        con.close()
    return {int(r["starid"]): dict(r) for r in rows}


def _reason(diag: Mapping[str, Any], folder: Path) -> str:
    """Why the automatic choice used its method: the logged switch of method (or the light
    curve's ``HALO_WHY`` / ``PSF_WHY``), else the first warning or error."""
    errors = [e for e in (diag.get("errors") or "").splitlines() if e]
    switched = SWITCH_TEXT.split("{}")[0]
    for line in errors:
        if switched in line:
            start, end = line.find("(", line.find(switched)), line.rfind(")")
            if 0 <= start < end:
                return line[start + 1 : end]
    lightcurve = diag.get("lightcurve")
    if lightcurve:
        path = Path(lightcurve)
        path = path if path.is_absolute() else folder / "lightcurves" / path
        if path.is_file():
            header = fits.getheader(path, 0)
            why = header.get("HALO_WHY") or header.get("PSF_WHY")
            if why:
                return str(why)
    return errors[0] if errors else ""


def run_method(
    folder: Path,
    name: str,
    starids: Sequence[int],
    settings: Mapping[str, Any],
    workers: int | None,
) -> MethodRun:
    """Run one method (``auto``: none forced) on the placed stars in its own todo copy and
    score them."""
    sub = method_folder(folder, name)
    output = sub / "lightcurves"
    began = time.perf_counter()
    try:
        report = run_photometry(
            sub,
            output,
            constraints={"starid": list(starids)},
            run_all=True,
            overwrite=True,
            method=None if name == AUTO else name,
            settings=settings,
            workers=workers,
        )
        print(f"{name}: {format_summary(report)}")
    except Exception as err:  # nothing to run: score what is there
        print(f"{name}: photometry: {err}")
    run = MethodRun(name, time.perf_counter() - began)
    diagnostics = _diagnostics(sub, starids)
    for score in score_sector(sub, output).stars:
        if score.starid not in diagnostics:
            continue
        diag = diagnostics[score.starid]
        run.outcomes[score.starid] = Outcome(
            score=score,
            method_used=diag.get("method_used") or "",
            reason=_reason(diag, sub),
            seconds=float(diag["elaptime"]) if diag.get("elaptime") is not None else math.nan,
        )
    return run


def _fmt(value: float, spec: str, width: int) -> str:
    return format(value, spec).rjust(width) if math.isfinite(value) else "-".rjust(width)


#: Short status names of the table.
SHORT_STATUS = {"WARNING": "WARN", "SKIPPED": "SKIP", "NOT_RUN": "----"}


def _cell(outcome: Outcome | None) -> str:
    """``status ratio |f-1|`` with ``x`` after a value beyond its target."""
    if outcome is None:
        return f"{'----':>5} {'-':>6} {'-':>7}"
    s = outcome.score
    status = SHORT_STATUS.get(s.status, s.status)
    ratio = _fmt(s.ratio, ".2f", 5) + ("x" if s.ratio > TARGET_RATIO else " ")
    dev = outcome.deviation
    deviation = _fmt(100 * dev, ".1f", 5) + "%" + ("x" if dev > TARGET_RECOVERY else " ")
    return f"{status:>5} {ratio:>6} {deviation:>7}"


def _signal_text(signal: Mapping[str, Any]) -> str:
    short = "sin" if signal["kind"] == "sinusoid" else "tra"
    return f"{short} {100 * signal['amplitude']:.1f}% {signal['period']:.1f}d"


def _cells(runs: Sequence[MethodRun], sid: int, cell) -> list[str]:
    """One table cell per method for a star (``cell(outcome)``; '-' where not run)."""
    return [f"{'-':>20}" if r.outcomes.get(sid) is None else cell(r.outcomes[sid]) for r in runs]


def _recovery_cell(o) -> str:
    frac = _fmt(o.score.signal_fraction, ".3f", 6)
    err = _fmt(o.score.signal_fraction_error, ".3f", 5)
    return f"{frac}+-{err} {_fmt(o.seconds, '.2f', 6)}s"


def _noise_cell(o) -> str:
    sc = o.score
    return (
        f"{_fmt(sc.rms_hour_ppm, '.0f', 6)}/{_fmt(sc.expected_ppm, '.0f', 5)} "
        f"({_fmt(sc.mask_size, '.0f', 5)})"
    )


def format_tables(
    runs: Sequence[MethodRun], stars: Sequence[BrightStar], starids: Sequence[int]
) -> str:
    """The per-star tables (status, noise ratio, recovery; automatic choice and seconds;
    recovered fractions with errors) and the summary per method."""
    names = [r.name for r in runs]
    lines = [
        "Per star and method: status, 1-h RMS / expected noise, |recovered fraction - 1| "
        f"('x': beyond {TARGET_RATIO:g} or {100 * TARGET_RECOVERY:g} %)",
        f"{'TIC':>9} {'Tmag':>4} {'class':<11} {'signal':<15}| "
        + " | ".join(f"{n:^20}" for n in names),
    ]
    for sid, star in zip(starids, stars, strict=True):
        cells = [_cell(r.outcomes.get(sid)) for r in runs]
        lines.append(
            f"{sid:9d} {star.tmag:4.2f} {star.kind:<11} {_signal_text(star.signal):<15}| "
            + " | ".join(cells)
        )
    lines += [
        "",
        "Recovered fraction (+- 1 sigma) and seconds per star; the method the automatic "
        "choice used and why",
        f"{'TIC':>9} {'Tmag':>4} | "
        + " | ".join(f"{n:^20}" for n in names)
        + " | auto used: reason",
    ]
    auto = next((r for r in runs if r.name == AUTO), None)
    for sid, star in zip(starids, stars, strict=True):
        cells = _cells(runs, sid, _recovery_cell)
        used = ""
        if auto is not None and sid in auto.outcomes:
            o = auto.outcomes[sid]
            used = f"{o.method_used}: {o.reason}" if o.reason else o.method_used
        lines.append(f"{sid:9d} {star.tmag:4.2f} | " + " | ".join(cells) + f" | {used}")
    lines += [
        "",
        "1-h RMS of flux - truth fit / expected noise [ppm] (mask size [px])",
        f"{'TIC':>9} {'Tmag':>4} | " + " | ".join(f"{n:^20}" for n in names),
    ]
    for sid, star in zip(starids, stars, strict=True):
        cells = _cells(runs, sid, _noise_cell)
        lines.append(f"{sid:9d} {star.tmag:4.2f} | " + " | ".join(cells))
    lines += ["", "Summary (of the placed stars):"]
    total = len(starids)
    for r in runs:
        out = [r.outcomes[s] for s in starids if s in r.outcomes]
        ok = sum(o.score.status == "OK" for o in out)
        ratio_ok = sum(o.score.ratio <= TARGET_RATIO for o in out)
        rec_ok = sum(o.deviation <= TARGET_RECOVERY for o in out)
        passed = sum(o.passes for o in out)
        seconds = [o.seconds for o in out if math.isfinite(o.seconds)]
        median = float(np.median(seconds)) if seconds else math.nan
        lines.append(
            f"  {r.name:<9} {passed:2d}/{total} OK with ratio <= {TARGET_RATIO:g} and "
            f"recovery within {100 * TARGET_RECOVERY:g} % (OK {ok}, ratio {ratio_ok}, "
            f"recovery {rec_ok}); median {_fmt(median, '.2f', 0)} s per star, "
            f"{r.elapsed:.0f} s in all"
        )
    if auto is not None:
        used: dict[str, int] = {}
        for o in auto.outcomes.values():
            used[o.method_used] = used.get(o.method_used, 0) + 1
        lines.append(
            "  automatic choice used: " + ", ".join(f"{k} {v}" for k, v in sorted(used.items()))
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_sector_arguments(
        parser,
        "tessphot-bench-bright",
        size=SIZE,
        cadences=CADENCES,
        stars=None,
        bright=0,
        seed=SEED,
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(DEFAULT_METHODS),
        help=f"'{AUTO}' (the automatic choice) and methods to force",
    )
    parser.add_argument("--workers", type=int, help="worker processes (default: in-process)")
    parser.add_argument("--settings", help="TOML settings file")
    parser.add_argument(
        "--prf-differences",
        action="store_true",
        help="render the stars with a PRF that differs from the model ([simulate.prf] "
        "defaults: width and shape over the CCD, focus over each orbit, bright stars' halo); "
        "use a --folder of its own",
    )
    parser.add_argument(
        "--effective-prf",
        action="store_true",
        help="the photometry uses the effective PRF that prepare measured (the pipeline's "
        "default), not the --prf-dir model",
    )
    args = parser.parse_args()

    stars = placed_stars(args.size)
    check_layout(stars, args.size)
    folder = Path(args.folder)
    settings = load_settings(args.settings)
    photometry = dict(settings["photometry"])
    if args.prf_dir and not args.effective_prf:
        photometry["prf_dir"] = args.prf_dir
    ensure_simulated(
        args,
        sector=SECTOR,
        camera=CAMERA,
        ccd=CCD,
        origin=ORIGIN,
        extra_stars=extra_stars(stars),
        **({"prf": PRFDifferenceSettings(enabled=True)} if args.prf_differences else {}),
    )
    prepare_simulated(folder, settings, prf_dir=args.prf_dir, progress=True)
    starids = [FIRST_TIC + i for i in range(len(stars))]
    runs = []
    for name in args.methods:
        if name != AUTO and name not in KNOWN_METHODS:
            print(f"{name}: not implemented in this checkout, skipped")
            continue
        runs.append(run_method(folder, name, starids, photometry, args.workers))
    print()
    print(format_tables(runs, stars, starids))


if __name__ == "__main__":
    main()
