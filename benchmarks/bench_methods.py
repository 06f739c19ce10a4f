"""Photometry methods compared on a simulated sector, against the simulator's truth.

``python benchmarks/bench_methods.py --folder DIR [--methods aperture linpsf psf halo]
[--prf-dir DIR] [--workers 1]``

``DIR`` is a simulated sector prepared up to the todo list (e.g. the folder of
``benchmarks/bench_precision.py``). Every method runs every task in its own copy of the todo
list (``DIR/methods/<method>``, the data linked), timed (stars per second), and is scored with
:mod:`tessphot.evaluation.scoring.photometry`. The table gives, per Tmag bin, the median ratio
of each method's 1-hour RMS of ``flux - truth`` to the expected noise of the star *with the
first method's aperture* (the same yardstick for every method), for crowded stars (the first
method's contamination above 10 %) and isolated ones, and the median recovered amplitude of
injected sinusoids.

Both are expressed relative to the **target's own light** in the light curve (the truth
fit's ``a F_t``, see ``StarScore.target_fraction``): an aperture's light curve of a crowded
star also holds its neighbours' light, which makes its scatter in ppm of the total look
smaller than the scatter on the target's signal (a transit of depth ``d`` shows as
``d (1 - contamination)``), while a PSF fit holds only the target. Per method the ratio to
its own expected noise is unchanged by this (both scale alike).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np

from tessphot.config import load_settings
from tessphot.evaluation.scoring.photometry import TMAG_BINS, Score, score_sector
from tessphot.photometry.task import KNOWN_METHODS
from tessphot.runner.loop import run_photometry
from tessphot.tasks import TODO_FILENAME

#: Files and folders of the sector that every method's copy links to.
SHARED = ("ffi", "truth")


def method_folder(folder: Path, method: str, *, under: str = "methods") -> Path:
    """A folder for one method (``folder/under/method``): the sector's data linked, a fresh
    copy of the todo list."""
    out = folder / under / method
    out.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.name in SHARED or path.suffix in (".hdf5", ".sqlite"):
            if path.name == TODO_FILENAME:
                continue
            link = out / path.name
            if not link.exists():
                link.symlink_to(path.resolve())
    shutil.copy2(folder / TODO_FILENAME, out / TODO_FILENAME)
    return out


def median(values) -> float:
    """The median of the finite values (NaN when there is none)."""
    values = [v for v in values if math.isfinite(v)]
    return float(np.median(values)) if values else math.nan


def format_comparison(scores: dict[str, Score]) -> str:
    """Per Tmag bin: each method's median noise ratio (the first method's expected noise,
    both in the target's own light) for crowded and isolated stars."""
    methods = list(scores)
    reference = {s.starid: s for s in scores[methods[0]].stars}
    head = "   Tmag  | " + " ".join(f"{'crowded ' + m:>16}" for m in methods)
    head += " | " + " ".join(f"{'isolated ' + m:>17}" for m in methods)
    lines = [head]
    for lo, hi in zip(TMAG_BINS[:-1], TMAG_BINS[1:], strict=True):
        cells = {True: [], False: []}
        for crowded in (True, False):
            for m in methods:
                ratios = []
                for s in scores[m].stars:
                    ref = reference.get(s.starid)
                    if ref is None or not lo <= s.tmag < hi or ref.crowded != crowded:
                        continue
                    if ref.expected_ppm > 0:
                        ratios.append(
                            (s.rms_hour_ppm / s.target_fraction)
                            / (ref.expected_ppm / ref.target_fraction)
                        )
                n = sum(math.isfinite(r) for r in ratios)
                cells[crowded].append(f"{median(ratios):7.2f} (n={n:3d})")
        lines.append(
            f"{lo:4.0f}-{hi:<4.0f} | "
            + " ".join(f"{c:>16}" for c in cells[True])
            + " | "
            + " ".join(f"{c:>17}" for c in cells[False])
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folder", required=True, help="a simulated, prepared sector")
    parser.add_argument(
        "--methods", nargs="+", choices=KNOWN_METHODS, default=["aperture", "linpsf", "psf"]
    )
    parser.add_argument("--prf-dir", default=os.environ.get("TESSPHOT_PRF_DIR"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--settings", help="TOML settings file")
    args = parser.parse_args()
    folder = Path(args.folder)
    settings = dict(load_settings(args.settings)["photometry"])
    if args.prf_dir:
        settings["prf_dir"] = args.prf_dir
    scores = {}
    for method in args.methods:
        sub = method_folder(folder, method)
        t0 = time.perf_counter()
        report = run_photometry(
            sub,
            sub / "lightcurves",
            run_all=True,
            overwrite=True,
            method=method,
            settings=settings,
            workers=args.workers,
        )
        elapsed = time.perf_counter() - t0
        scores[method] = score_sector(sub, sub / "lightcurves")
        ok = sum(s.status in ("OK", "WARNING") for s in scores[method].stars)
        amplitudes = scores[method].amplitude_ratios(crowded=None)
        print(
            f"{method}: {report.tasks} tasks in {elapsed:.1f} s with {args.workers} worker(s) "
            f"({report.tasks / elapsed:.1f} stars/s), {ok} with a light curve; sinusoid "
            f"amplitude median |ratio - 1| {np.median(np.abs(amplitudes - 1)):.3f} over "
            f"{amplitudes.size} stars"
        )
    print(format_comparison(scores))


if __name__ == "__main__":
    main()
