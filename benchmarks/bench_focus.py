"""The effective PRF's change with time (focus, issue 18): recovery, precision, cost.

``python benchmarks/bench_focus.py measure --folder DIR``
    ``DIR`` is a simulated sector with PRF differences (``tessphot simulate
    --prf-differences``, the SPOC PRF), catalogued and prepared. The focus is measured
    again on a copy of its prepared file (timed) and compared with the truth's focus
    ``f(t)`` relative to its mean over the measured cadences: offset, rms about it, slope,
    in the first 2 days of each orbit and after. The copy is kept as ``DIR/focus/focus.hdf5``.

``python benchmarks/bench_focus.py exact --folder DIR``
    Writes ``DIR/focus/exact.hdf5``: the prepared file with the PRF the stars were rendered
    with as its effective PRF (the truth's at focus 1) and the truth's focus as its scale.

``python benchmarks/bench_focus.py truthfocus --folder DIR``
    Writes ``DIR/focus/truthfocus.hdf5``: ``focus.hdf5`` (run ``measure`` first) with the
    truth's focus as its scale, at the measured scale's mean level (the static effective
    PRF's own width error): what a perfect focus measurement would give.

``python benchmarks/bench_focus.py truthhalo --folder DIR``
    Writes ``DIR/focus/truthhalo.hdf5``: ``exact.hdf5`` (run ``exact`` first) with the
    truth's halo of each star (the simulator gives it to the stars brighter than
    ``halo_tmag`` only) as the stars' halos (:mod:`tessphot.prf.star_halo`): what a perfect
    measurement of the halos gives.

``python benchmarks/bench_focus.py photometry --folder DIR [--methods ...] [--variants ...]``
    Every method on every task, with the static effective PRF, the time-dependent one
    (``focus.hdf5``, with the stars' halos; ``nohalo``: without them), optionally
    ``truthfocus``, ``truthhalo`` and the exact one (``exact.hdf5``), each in
    ``DIR/focus/<variant>-<method>``; per Tmag bin the median over isolated stars of the
    1-hour rms against the truth over each method's own expected noise, over all cadences
    and over the first 2 days of each orbit.

``python benchmarks/bench_focus.py crowded --folder DIR [--variants ...] [--methods ...]``
    Issue 18's crowded stars (contamination of the aperture run over 0.1): per Tmag bin the
    median over the stars of each method's 1-hour rms over the aperture's, in the same
    variant's runs (``photometry`` first). Both are taken relative to the target's own
    light (the aperture's median flux less its neighbours' share, ``contamination``), with
    the true light of the stars within :data:`NEIGHBOUR_RADIUS` regressed out of both (their
    variability is signal to the aperture, not noise; the other method fits it out).
    Relative to the median flux alone, a contaminated aperture looks better than it is by
    ``1 / (1 - contamination)``.

Single process throughout (run by hand; nothing here is a test).
"""

from __future__ import annotations

import argparse
import math
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
from bench_methods import median

from tessphot.config import load_settings
from tessphot.config.prepare import EffectivePRFSettings
from tessphot.evaluation.scoring.photometry import (
    _truth,
    aligned_flux,
    find_truth,
    lightcurve_path,
    score_star,
    todo_rows,
)
from tessphot.evaluation.simulate.prf_differences import exact_prf
from tessphot.evaluation.simulate.prf_halo import HaloProfile
from tessphot.evaluation.simulate.truth import read_truth
from tessphot.lightcurve.diagnostics import rms_timescale
from tessphot.prepare.cube import PreparedCube, hdf5_name
from tessphot.prepare.effective_prf import FOCUS_GROUP, GROUP, HALO_GROUP
from tessphot.prepare.focus import build_focus_change, catalog_stars
from tessphot.prf import load_prf
from tessphot.runner.loop import run_photometry
from tessphot.tasks import TODO_FILENAME

#: The window after each orbit's start scored apart [d].
EARLY_DAYS = 2.0
#: Orbits are separated by gaps longer than this [d].
GAP_DAYS = 0.5
#: Tmag bins of the tables.
BINS = (8.0, 9.0, 10.0, 11.0, 12.0, 13.0)
#: Files of the sector every variant's folder links to.
SHARED = ("ffi", "truth")
#: Parts per million.
PPM = 1e6
#: Contamination above which a star is crowded.
CROWDED = 0.1
#: Stars within this distance of a crowded target have their true light regressed out [px].
NEIGHBOUR_RADIUS = 4.0


def prepared(folder: Path) -> Path:
    """The sector's prepared file."""
    return folder / hdf5_name(1, 1, 4)


def early_mask(tmid: np.ndarray) -> np.ndarray:
    """Cadences within :data:`EARLY_DAYS` of their orbit's first cadence."""
    starts = np.r_[0, np.flatnonzero(np.diff(tmid) > GAP_DAYS) + 1]
    first = tmid[starts[np.searchsorted(starts, np.arange(tmid.size), side="right") - 1]]
    return tmid - first < EARLY_DAYS


def measure(folder: Path) -> None:
    """Measure the focus on a copy of the prepared file and compare it with the truth."""
    out = folder / "focus"
    out.mkdir(exist_ok=True)
    work = out / "focus.hdf5"
    shutil.copy2(prepared(folder), work)
    with PreparedCube(work) as cube:
        catalogued = catalog_stars(cube, folder)
    t0 = time.perf_counter()
    change = build_focus_change(work, EffectivePRFSettings(), catalogued=catalogued)
    elapsed = time.perf_counter() - t0
    print(change.summary() if change else "no focus measured", f"(total {elapsed:.1f} s)")
    with h5py.File(work) as h5:
        effective_seconds = float(h5[GROUP].attrs["seconds"])
    print(f"effective PRF fit {effective_seconds:.1f} s; focus {elapsed:.1f} s")
    truth = read_truth(find_truth(folder))
    focus = truth["prf_differences"]["focus"]
    tmid = truth["tmid"]
    smoothed, raw = change.smoothed, change.measured
    ok = np.isfinite(smoothed) & np.isfinite(raw)
    relative = focus / np.mean(focus[ok])
    early = early_mask(tmid)
    for name, which in (("all", ok), ("first 2 d", ok & early), ("after", ok & ~early)):
        d = smoothed[which] - relative[which]
        print(
            f"  {name:9s} ({which.sum():4d} cadences): smoothed - truth mean {d.mean():+.5f}, "
            f"rms about it {d.std():.5f}; raw rms about it "
            f"{(raw[which] - relative[which] - d.mean()).std():.5f}"
        )
    slope = np.polyfit(relative[ok], smoothed[ok], 1)[0]
    print(f"  slope measured/truth {slope:.3f}; truth range {np.ptp(relative[ok]):.4f}")


def exact(folder: Path, prf_dir: str) -> None:
    """Write the prepared file with the exact PRF and the truth's focus."""
    out = folder / "focus"
    out.mkdir(exist_ok=True)
    work = out / "exact.hdf5"
    shutil.copy2(prepared(folder), work)
    truth = read_truth(find_truth(folder))
    differences = truth["prf_differences"]
    with PreparedCube(work) as cube:
        origin, shape = cube.origin, cube.shape
    margin = 8
    region = (
        origin[0] - margin,
        origin[0] + shape[0] + margin,
        origin[1] - margin,
        origin[1] + shape[1] + margin,
    )
    prf = exact_prf(load_prf(prf_dir, 1, 1, 4), differences, region, focus=1.0)
    with h5py.File(work, "r+") as h5:
        group = h5[GROUP]
        for name, data in (
            ("tables", prf.tables),
            ("node_rows", prf.node_rows),
            ("node_cols", prf.node_cols),
        ):
            del group[name]
            group.create_dataset(name, data=data)
        group.attrs.update({"accepted": True, "short_name": "exact PRF"})
        for name in (FOCUS_GROUP, HALO_GROUP):  # the halos measured: relative to another PRF
            if name in group:
                del group[name]
        focus = group.create_group(FOCUS_GROUP)
        focus.create_dataset("scale", data=np.asarray(differences["focus"], float))
        focus.attrs["significant"] = True
    print(f"wrote {work}")


def truth_halo(folder: Path) -> None:
    """Write ``truthhalo.hdf5``: the exact PRF with each star's halo as the truth has it."""
    differences = read_truth(find_truth(folder))["prf_differences"]
    if not differences.get("halo"):
        raise SystemExit(f"{folder}: the simulation has no halo")
    profile = HaloProfile(**differences["halo"])
    stars = read_truth(find_truth(folder))["stars"]
    share = np.asarray(differences["halo_fraction"], dtype=float)
    has = share > 0
    work = folder / "focus" / "truthhalo.hdf5"
    shutil.copy2(folder / "focus" / "exact.hdf5", work)
    with h5py.File(work, "r+") as h5:
        group = h5[GROUP]
        if HALO_GROUP in group:
            del group[HALO_GROUP]
        halos = group.create_group(HALO_GROUP)
        halos.create_dataset("starid", data=np.asarray(stars["starid"])[has].astype(np.int64))
        halos.create_dataset("fraction", data=share[has])
        halos.create_dataset("trend_tmag", data=np.array([10.0]))
        halos.create_dataset("trend", data=np.array([0.0]))
        halos.attrs.update({"core": profile.core, "index": profile.index, "radius": profile.radius})
        group.attrs["short_name"] = "exact PRF + halos"
    print(f"wrote {work} ({has.sum()} stars with a halo of {share[has].max():.3f})")


def truth_focus(folder: Path) -> None:
    """Write ``focus.hdf5`` with the truth's focus at the measured scale's level."""
    focus = read_truth(find_truth(folder))["prf_differences"]["focus"]
    work = folder / "focus" / "truthfocus.hdf5"
    shutil.copy2(folder / "focus" / "focus.hdf5", work)
    with h5py.File(work, "r+") as h5:
        group = h5[GROUP][FOCUS_GROUP]
        measured = group["measured"][()]
        ok = np.isfinite(measured)
        relative = focus / np.mean(focus[ok])
        level = float(np.mean(measured[ok] / relative[ok]))
        group["scale"][...] = relative * level
        group.attrs["significant"] = True
    print(f"wrote {work} (level {level:.5f})")


def variant_folder(folder: Path, variant: str, method: str) -> Path:
    """``folder/focus/<variant>-<method>``: the sector linked, the variant's prepared file."""
    out = folder / "focus" / f"{variant}-{method}"
    out.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.name in SHARED or path.suffix == ".sqlite" and path.name != TODO_FILENAME:
            link = out / path.name
            if not link.exists():
                link.symlink_to(path.resolve())
    source = folder / "focus" / f"{variant}.hdf5"
    if variant in ("static", "nohalo"):
        source = folder / "focus" / "focus.hdf5"
    link = out / prepared(folder).name
    link.unlink(missing_ok=True)
    link.symlink_to(source.resolve())
    shutil.copy2(folder / TODO_FILENAME, out / TODO_FILENAME)
    return out


def window_ratio(path: Path, truth: dict, index: int, expected: float, early: np.ndarray):
    """The 1-hour rms against the truth over the expected noise, early in the orbits."""
    flux, k, good = aligned_flux(path, truth)
    if good.sum() < 20 or not expected > 0:
        return math.nan
    f, true = flux[good], truth["flux"][k[good], index]
    coef, *_ = np.linalg.lstsq(np.column_stack([true, np.ones_like(true)]), f, rcond=None)
    residual = (f - coef[0] * true - coef[1]) / np.median(f)
    which = early[k[good]]
    return rms_timescale(truth["tmid"][k[good]][which], residual[which]) * PPM / expected


def score(sub: Path, truth: dict, early: np.ndarray) -> dict[int, tuple[float, float, float]]:
    """Per isolated star: Tmag, the whole run's ratio, the early cadences' ratio."""
    index = {int(s): i for i, s in enumerate(truth["stars"]["starid"])}
    out = {}
    for starid, tmag, status, lc, contamination, mask_size in todo_rows(sub):
        i = index.get(int(starid))
        path = lightcurve_path(sub, sub / "lightcurves", lc)
        if path is None or i is None or status is None or contamination is None:
            continue
        if contamination > 0.1:
            continue
        s = score_star(path, truth, i, float(contamination), float(mask_size or math.nan))
        out[int(starid)] = (
            float(tmag),
            s["ratio"],
            window_ratio(path, truth, i, s["expected_ppm"], early),
        )
    return out


def photometry(folder: Path, methods: list[str], variants: list[str]) -> None:
    """Each method with the static, the time-dependent and the exact PRF."""
    base = dict(load_settings()["photometry"])
    truth = _truth(find_truth(folder))
    early = early_mask(truth["tmid"])
    results = {}
    for method in methods:
        for variant in variants:
            sub = variant_folder(folder, variant, method)
            settings = {
                **base,
                "effective_prf_focus": variant != "static",
                "effective_prf_halos": variant not in ("static", "nohalo"),
            }
            t0 = time.perf_counter()
            report = run_photometry(
                sub, sub / "lightcurves", run_all=True, overwrite=True, method=method,
                settings=settings, workers=1,
            )  # fmt: skip
            elapsed = time.perf_counter() - t0
            print(
                f"{method} {variant}: {report.tasks} tasks in {elapsed:.0f} s "
                f"({report.tasks / elapsed:.1f} stars/s)",
                flush=True,
            )
            results[(method, variant)] = score(sub, truth, early)
    names = list(results)
    head = " | ".join(f"{m[:6]}-{v[:6]:6s} all / 2 d" for m, v in names)
    print("Tmag  | " + head + "   (isolated; median ratio to own expected noise; n)")
    for lo, hi in zip(BINS[:-1], BINS[1:], strict=True):
        cells = []
        for name in names:
            rows = [v for v in results[name].values() if lo <= v[0] < hi]
            cells.append(
                f"{median([r[1] for r in rows]):6.2f} / {median([r[2] for r in rows]):6.2f}"
                f" {len(rows):3d}"
            )
        print(f"{lo:2.0f}-{hi:<2.0f} | " + " | ".join(cells), flush=True)


def target_rms(path: Path, truth: dict, index: int, neighbours: np.ndarray, share: float):
    """1-hour rms [ppm of the target's own light] less the target's and neighbours' truth."""
    flux, k, good = aligned_flux(path, truth)
    if good.sum() < 20:
        return math.nan
    f = flux[good]
    columns = [truth["flux"][k[good], index], np.ones(f.size)]
    columns += [truth["flux"][k[good], j] for j in neighbours]
    design = np.column_stack(columns)
    coef, *_ = np.linalg.lstsq(design, f, rcond=None)
    residual = (f - design @ coef) / (np.median(f) * (1 - share))
    return rms_timescale(truth["tmid"][k[good]], residual) * PPM


def crowded(folder: Path, methods: list[str], variants: list[str]) -> None:
    """Each method's crowded stars against the aperture's, per Tmag bin (see the notes)."""
    truth = _truth(find_truth(folder))
    index = {int(s): i for i, s in enumerate(truth["stars"]["starid"])}
    rows, cols = np.nanmean(truth["row"], axis=0), np.nanmean(truth["col"], axis=0)
    bins = (*BINS, 14.0)
    for variant in variants:
        aperture = folder / "focus" / f"{variant}-aperture"
        runs = {m: {int(r[0]): r for r in todo_rows(folder / "focus" / f"{variant}-{m}")}
                for m in methods}  # fmt: skip
        ratios = {m: [] for m in methods}
        for starid, tmag, status, lc, contamination, _ in todo_rows(aperture):
            i = index.get(int(starid))
            if i is None or status is None or contamination is None:
                continue
            if not CROWDED < contamination < 1:
                continue
            near = np.hypot(rows - rows[i], cols - cols[i]) < NEIGHBOUR_RADIUS
            near[i] = False
            path = lightcurve_path(aperture, aperture / "lightcurves", lc)
            base = target_rms(path, truth, i, np.flatnonzero(near), contamination) if path else 0
            for method in methods:
                row = runs[method].get(int(starid))
                sub = folder / "focus" / f"{variant}-{method}"
                other = lightcurve_path(sub, sub / "lightcurves", row[3]) if row else None
                if other is None or not base > 0:
                    continue
                rms = target_rms(other, truth, i, np.flatnonzero(near), row[4] or 0.0)
                ratios[method].append((float(tmag), rms / base))
        print(f"{variant}: crowded stars (contamination > {CROWDED}), median rms over the "
              "aperture's (own light, neighbours' truth regressed out); n")  # fmt: skip
        for lo, hi in zip(bins[:-1], bins[1:], strict=True):
            cells = []
            for method in methods:
                r = [v for t, v in ratios[method] if lo <= t < hi and math.isfinite(v)]
                cells.append(f"{method} {median(r):6.3f} {len(r):3d}")
            print(f"{lo:2.0f}-{hi:<2.0f} | " + " | ".join(cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "what",
        choices=("measure", "exact", "truthhalo", "truthfocus", "photometry", "crowded"),
    )
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--prf-dir", default="/work/shared/data/prf")
    parser.add_argument("--methods", nargs="+", default=["aperture", "linpsf", "psf"])
    parser.add_argument("--variants", nargs="+", default=["static", "focus", "exact"])
    args = parser.parse_args()
    if args.what == "measure":
        measure(args.folder)
    elif args.what == "exact":
        exact(args.folder, args.prf_dir)
    elif args.what == "truthhalo":
        truth_halo(args.folder)
    elif args.what == "truthfocus":
        truth_focus(args.folder)
    elif args.what == "crowded":
        crowded(args.folder, [m for m in args.methods if m != "aperture"], args.variants)
    else:
        photometry(args.folder, args.methods, args.variants)


if __name__ == "__main__":
    main()
