"""Whole-sector stress benchmark (issue 14): a simulated sector scored with the new yardstick.

``python benchmarks/bench_sector.py [--folder DIR] [--size 400] [--cadences N] [--workers 2]
[--prf-dir DIR] [--sector1-dir DIR] [--preset benchmarks/sector_stress.toml] [--systematics]
[--correct] [--rerun]``

Simulates once (kept in ``--folder``) a crop of sector 1 camera 1 CCD 4 with the settings of
``--preset`` (by default the whole-sector stress case: the real 1282 sector-1 cadences, orbit
gap, quality flags and pointing, steep scattered light of several hundred e-/s at the orbits'
ends, 30 % variable stars with red noise up to 1 %), ``--cadences`` of them (default all;
e.g. 120 for a quick run). Runs catalog, prepare, todo and the photometry of every task, and
scores every light curve against the truth (:mod:`tessphot.evaluation.scoring.sector`): per
Tmag bin, constant and variable, isolated and crowded, the 1-hour robust rms of
``flux - true signal`` over the noise limit of the star's S/N-optimal aperture, on every
good cadence. ``--systematics`` adds the simulator's common-mode systematics to the raw flux
(``[simulate] systematics``, with the preset's ``systematics_*`` amplitudes or their
defaults; kept in ``<folder>-systematics`` unless ``--folder`` is given); the raw flux is
then scored against the truth with its systematics, so the ratios stay comparable.
``--correct`` runs the corrections (``tessphot correct``) after the photometry and scores
``FLUX_CORR`` against the intrinsic signal (issue 15's targets). Writes
the Markdown table and the JSON (with every star's score, the common
mode series and the stages' times) beside the data, and prints the table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import tomllib
from pathlib import Path

import h5py
from simulated import add_sector_arguments, ensure_simulated

from tessphot.config import load_settings
from tessphot.correct.stage import run_corrections
from tessphot.demo import prepare_simulated
from tessphot.evaluation.scoring.sector import score_sector_run
from tessphot.evaluation.scoring.sector_report import format_markdown, sector_report
from tessphot.runner import format_summary, run_photometry

HERE = Path(__file__).resolve().parent
#: Real data folder (``$TESSPHOT_TEST_DATA``, else ``../shared/data`` beside the project).
TEST_DATA = Path(os.environ.get("TESSPHOT_TEST_DATA", HERE.parent.parent / "shared" / "data"))
#: Suffix of the default folder of a simulation with systematics.
SYSTEMATICS_SUFFIX = "-systematics"


def parse_args() -> argparse.Namespace:
    """The benchmark's options."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_sector_arguments(
        parser, "tessphot-bench-sector", size=400, cadences=None, stars=None, bright=2, seed=14
    )
    parser.set_defaults(prf_dir=os.environ.get("TESSPHOT_PRF_DIR") or str(TEST_DATA / "prf"))
    parser.add_argument(
        "--sector1-dir", default=str(TEST_DATA / "sector001"), help="real sector-1 data"
    )
    parser.add_argument(
        "--preset",
        default=str(HERE / "sector_stress.toml"),
        help="TOML file whose [simulate] table sets the simulation",
    )
    parser.add_argument(
        "--systematics",
        action="store_true",
        help="add common-mode systematics to the raw flux ([simulate] systematics)",
    )
    parser.add_argument("--settings", help="TOML settings of the pipeline")
    parser.add_argument("--workers", type=int, default=2, help="processes of prepare and run")
    parser.add_argument("--rerun", action="store_true", help="redo the photometry")
    parser.add_argument(
        "--correct",
        action="store_true",
        help="run the corrections (tessphot correct) and score FLUX_CORR against the truth",
    )
    parser.add_argument(
        "--simulate-only", action="store_true", help="only simulate the sector (if not there)"
    )
    args = parser.parse_args()
    if args.systematics and args.folder == parser.get_default("folder"):
        args.folder += SYSTEMATICS_SUFFIX
    return args


def preset_overrides(path: str, sector1_dir: str, *, systematics: bool = False) -> dict:
    """The ``[simulate]`` values the preset file gives (checked), with the sector-1 folder
    (and ``systematics = true`` when asked)."""
    with open(path, "rb") as f:
        given = tomllib.load(f).get("simulate", {})
    checked = load_settings(path)["simulate"]
    out = {key: checked[key] for key in given} | {"sector1_dir": sector1_dir}
    return (out | {"systematics": True}) if systematics else out


def check_systematics(folder: Path, wanted: bool) -> None:
    """Refuse a kept simulation whose systematics are not the ones asked for."""
    found = sorted((folder / "truth").glob("truth_*.hdf5"))
    if not found:
        return
    with h5py.File(found[0], "r") as h5:
        simulated = bool(json.loads(h5.attrs["settings"]).get("systematics", False))
    if simulated != wanted:
        raise SystemExit(
            f"{folder} holds a simulation {'with' if simulated else 'without'} systematics; "
            f"give another --folder"
        )


def _finite(value):
    """JSON without NaN: NaN and infinities as None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def main() -> None:
    args = parse_args()
    folder = Path(args.folder)
    settings = load_settings(args.settings)
    times = {}
    t0 = time.perf_counter()
    overrides = preset_overrides(args.preset, args.sector1_dir, systematics=args.systematics)
    ensure_simulated(args, **overrides)
    check_systematics(folder, bool(overrides.get("systematics", False)))
    times["simulate"] = time.perf_counter() - t0
    if args.simulate_only:
        return
    t0 = time.perf_counter()
    prepare_simulated(folder, settings, prf_dir=args.prf_dir, workers=args.workers)
    times["catalog_prepare_todo"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        report = run_photometry(
            folder,
            run_all=True,
            overwrite=args.rerun,
            settings=settings["photometry"],
            workers=args.workers,
        )
        print(format_summary(report))
    except Exception as err:  # nothing left to do: score what is there
        print(f"photometry: {err}")
    times["photometry"] = time.perf_counter() - t0
    if args.correct:
        t0 = time.perf_counter()
        corrections = run_corrections(
            folder, overwrite=args.rerun, settings=settings["correct"], workers=args.workers
        )
        print(f"corrections: {corrections.counts}; {len(corrections.errors)} error(s)")
        times["corrections"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = sector_report(score_sector_run(folder))
    times["scoring"] = time.perf_counter() - t0
    table = format_markdown(result)
    times_line = ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
    text = f"# Whole-sector benchmark ({folder})\n\n{table}\n\nTimes: {times_line}\n"
    (folder / "bench_sector.md").write_text(text)
    result["times"] = times
    result["simulation"] = {
        "preset": args.preset,
        "size": args.size,
        "cadences": args.cadences,
        "systematics": bool(overrides.get("systematics", False)),
    }
    (folder / "bench_sector.json").write_text(json.dumps(_finite(result), indent=1))
    print(text)
    print(f"written: {folder / 'bench_sector.md'}, {folder / 'bench_sector.json'}")


if __name__ == "__main__":
    main()
