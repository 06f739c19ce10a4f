"""The PRF fits' reduced chi-square (``PRFCHI2``, issue 18) and the automatic choice's fallback.

``python benchmarks/bench_prf_chi2.py --folder DIR [--folder DIR2 ...] [--tmag-max 13]``

Each ``DIR`` is a simulated sector prepared up to the todo list (e.g. one simulated with
``tessphot simulate --prf-differences`` and the SPOC PRF, and the same seed without the
differences: the exact PRF). In each, in its own copies of the todo list
(``DIR/chi2/<run>``, as ``benchmarks/bench_methods.py``):

- linear PSF photometry forced on every task of Tmag <= ``--tmag-max``, once with the model
  (``[photometry] effective_prf = false``) and once with the effective PRF;
- aperture photometry forced on the same tasks (the yardstick of the noise);
- the automatic choice (no method forced) on the tasks of Tmag <= ``choice.spill_tmag``.

Printed per Tmag bin: the median and 90th percentile of ``PRFCHI2``, the median 1-hour noise
in the target's own light over the aperture's expected noise (the scorer of
:mod:`tessphot.evaluation.scoring.photometry`), and how many tasks exceed
``[photometry.choice] prf_chi2_max``; then, for the automatic choice's bright stars, the
method used, the linear PSF fit's ``PRFCHI2`` and each light curve's noise ratio, with the
plain aperture and the linear PSF fit beside it. Single process (run by hand; not a test).
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path

import numpy as np
from bench_methods import median, method_folder

from tessphot.config import load_settings
from tessphot.config.photometry import PhotometrySettings
from tessphot.evaluation.scoring.photometry import TMAG_BINS, score_sector
from tessphot.runner.loop import run_photometry
from tessphot.tasks import TODO_FILENAME

#: The forced runs: name, method, effective PRF.
RUNS = (
    ("aperture", "aperture", True),
    ("linpsf-model", "linpsf", False),
    ("linpsf-effective", "linpsf", True),
)


def _diagnostics(folder: Path) -> dict[int, dict]:
    """``starid -> {method_used, prf_chi2, errors}`` of a run's todo list."""
    con = sqlite3.connect(folder / TODO_FILENAME)
    try:
        rows = con.execute(
            "SELECT t.starid, d.method_used, d.prf_chi2, d.errors FROM todolist t "
            "JOIN diagnostics d ON d.priority = t.priority"
        ).fetchall()
    finally:
        con.close()
    return {int(r[0]): {"method_used": r[1], "prf_chi2": r[2], "errors": r[3]} for r in rows}


def _run(folder: Path, name: str, method: str | None, settings: dict, tmag_max: float):
    sub = method_folder(folder, name, under="chi2")
    t0 = time.perf_counter()
    report = run_photometry(
        sub, sub / "lightcurves", run_all=True, overwrite=True, method=method,
        settings=settings, workers=1, constraints={"tmag_max": tmag_max},
    )  # fmt: skip
    print(f"  {name}: {report.tasks} tasks in {time.perf_counter() - t0:.0f} s")
    scores = {s.starid: s for s in score_sector(sub, sub / "lightcurves").stars}
    return scores, _diagnostics(sub)


def _ratio(score, yardstick) -> float:
    """Noise in the target's own light over the aperture's expected noise."""
    if score is None or yardstick is None or not yardstick.expected_ppm > 0:
        return float("nan")
    return (score.rms_hour_ppm / score.target_fraction) / (
        yardstick.expected_ppm / yardstick.target_fraction
    )


#: Bins of ``PRFCHI2`` of the harm table.
CHI2_BINS = (0.0, 1.5, 3.0, 10.0, 30.0, 100.0, 1e3, np.inf)


def _harm_table(runs: dict, limit: float) -> None:
    """Per bin of ``PRFCHI2``: the fits' noise over the aperture's own noise (isolated stars)."""
    yard = runs["aperture"][0]
    pairs = []
    for name in ("linpsf-model", "linpsf-effective"):
        scores, diag = runs[name]
        for sid, d in diag.items():
            ref = yard.get(sid)
            if d["prf_chi2"] is None or sid not in scores or ref is None or ref.crowded:
                continue
            pairs.append((d["prf_chi2"], _ratio(scores[sid], ref) / _ratio(ref, ref)))
    print(f"  isolated stars: linear PSF noise over the aperture's per PRFCHI2 (> {limit:g})")
    for lo, hi in zip(CHI2_BINS[:-1], CHI2_BINS[1:], strict=True):
        ratios = [r for c, r in pairs if lo <= c < hi]
        if ratios:
            worse = sum(r > 1 for r in ratios)
            print(
                f"    {lo:6g}-{hi:<6g}: {len(ratios):3d} fits, median {median(ratios):6.2f}, "
                f"worse than the aperture {worse:3d}"
            )


def bench(folder: Path, tmag_max: float) -> None:
    """Every run of one sector, and its tables."""
    base = dict(load_settings()["photometry"])
    limit = PhotometrySettings.from_mapping(base).choice.prf_chi2_max
    spill_tmag = PhotometrySettings.from_mapping(base).choice.spill_tmag
    print(f"{folder}:")
    runs = {}
    for name, method, effective in RUNS:
        runs[name] = _run(folder, name, method, {**base, "effective_prf": effective}, tmag_max)
    trim = {**base, "aperture": {**base.get("aperture", {}), "trim_spilling_columns": True}}
    runs["aperture-trim"] = _run(folder, "aperture-trim", "aperture", trim, spill_tmag)
    yard = runs["aperture"][0]
    print(f"  PRFCHI2 median / 90 % / noise over the aperture's expected; > {limit:g}")
    for lo, hi in zip(TMAG_BINS[:-1], TMAG_BINS[1:], strict=True):
        cells = []
        for name in ("linpsf-model", "linpsf-effective"):
            scores, diag = runs[name]
            chi2 = [
                d["prf_chi2"] for sid, d in diag.items()
                if sid in scores and lo <= scores[sid].tmag < hi and d["prf_chi2"] is not None
            ]  # fmt: skip
            ratios = [_ratio(s, yard.get(sid)) for sid, s in scores.items() if lo <= s.tmag < hi]
            if not chi2:
                cells.append(f"{'':>34}")
                continue
            cells.append(
                f"{np.median(chi2):8.3g} {np.percentile(chi2, 90):8.3g} "
                f"{median(ratios):5.2f} {sum(c > limit for c in chi2):3d}/{len(chi2):<3d}"
            )
        own = median([_ratio(s, s) for s in yard.values() if lo <= s.tmag < hi])
        if any(c.strip() for c in cells):
            print(
                f"  {lo:4.0f}-{hi:<4.0f} aperture {own:5.2f} model: {cells[0]} | "
                f"effective: {cells[1]}"
            )
    _harm_table(runs, limit)
    auto_scores, auto_diag = _run(folder, "auto", None, base, spill_tmag)
    print("  automatic choice of the bright stars (noise over the aperture's expected):")
    others = {name: runs[name][0] for name in ("aperture-trim", "linpsf-model", "linpsf-effective")}
    for sid, d in sorted(auto_diag.items(), key=lambda item: auto_scores[item[0]].tmag):
        s = auto_scores.get(sid)
        fell = "fell back" if d["errors"] and "Fell back" in d["errors"] else ""
        switched = "switched" if d["errors"] and "switched" in d["errors"] else ""
        chi2 = d["prf_chi2"] if d["prf_chi2"] is not None else float("nan")
        model = runs["linpsf-model"][1].get(sid, {}).get("prf_chi2") or float("nan")
        fits = ", ".join(
            f"{name} {_ratio(scores.get(sid), yard.get(sid)):6.2f}"
            for name, scores in others.items()
        )
        print(
            f"    TIC {sid} Tmag {s.tmag:4.1f}: {d['method_used']:8s} {switched:8s} {fell:9s} "
            f"PRFCHI2 {chi2:9.3g} (model's {model:9.3g}) noise {_ratio(s, yard.get(sid)):6.2f} "
            f"(aperture {_ratio(yard.get(sid), yard.get(sid)):6.2f}, {fits})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folder", type=Path, action="append", required=True)
    parser.add_argument("--tmag-max", type=float, default=13.0)
    args = parser.parse_args()
    for folder in args.folder:
        bench(folder, args.tmag_max)


if __name__ == "__main__":
    main()
