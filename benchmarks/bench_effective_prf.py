"""The effective PRF (issue 18): its residuals, its accuracy against the truth, its cost.

``python benchmarks/bench_effective_prf.py crop --folder DIR [--prf-dir DIR]``
    ``DIR`` is a simulated sector (``tessphot simulate --prf-differences``, the SPOC PRF),
    catalogued: it is prepared (once with the effective PRF, timed; the fit's own time is
    the group's ``seconds``), and the stored quality is printed with the effective PRF's
    table error against the PRF the stars were rendered with (the truth's, at the mean
    focus), relative to the model's, at the fitted stars' positions.

``python benchmarks/bench_effective_prf.py full-frame [--stars N] [--frames N]``
    A synthetic average image of a whole CCD (``--stars`` drawn as the simulator draws them,
    rendered with the SPOC PRF changed by the simulator's default PRF differences, the noise
    of ``--frames`` 1800-s FFIs): the fit's time and quality, to compare with the prepare
    stage's ~1 core-second per full frame (issue 17).

``python benchmarks/bench_effective_prf.py photometry --folder DIR [--methods ...]``
    ``DIR`` prepared up to the todo list: every method runs every task twice, with the model
    and with the effective PRF (``[photometry] effective_prf``), each in a copy of the todo
    list (``DIR/eprf/<method>-<prf>``), and is scored against the truth: per Tmag bin the
    median 1-hour rms over the expected noise (the model run's aperture as yardstick for
    both), isolated and crowded (contamination > 10 %).

Single process throughout (run by hand; nothing here is a test).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from bench_methods import median, method_folder

from tessphot.config import load_settings
from tessphot.config.prepare import EffectivePRFSettings
from tessphot.config.simulate import PRFDifferenceSettings
from tessphot.constants import SCIENCE_SIZE, tmag_to_flux
from tessphot.evaluation.scoring.photometry import TMAG_BINS, score_sector
from tessphot.evaluation.simulate.prf_differences import TransformedPRF, exact_prf
from tessphot.evaluation.simulate.prf_field import PRFField
from tessphot.evaluation.simulate.stars import default_star_count, draw_tmag
from tessphot.evaluation.simulate.truth import read_truth
from tessphot.prepare.cube import PreparedCube
from tessphot.prepare.effective_prf import GROUP
from tessphot.prepare.run import prepare_ccd
from tessphot.prf import load_prf
from tessphot.prf.effective import measure_effective_prf
from tessphot.runner.loop import run_photometry

#: Time on source of one 1800-s FFI [s] (0.8 of the frames, 0.99 of each) ...
FFI_EXPOSURE = 1425.6
#: ... and the sky of the synthetic average image [e-/s/px].
SKY = 30.0


def table_error(prf, truth, rows, cols) -> float:
    """Median over positions of the summed absolute difference of two PRFs' tables."""
    return float(
        np.median(np.abs(prf.tables_at(rows, cols) - truth.tables_at(rows, cols)).sum(axis=(1, 2)))
    )


def crop(folder: Path, prf_dir: str) -> None:
    """Prepare a simulated sector and report the effective PRF's quality and cost."""
    with open(next((folder / "truth").glob("truth_*.hdf5")), "rb"):
        pass
    t0 = time.perf_counter()
    out = prepare_ccd(folder, 1, 1, 4, workers=1, prf_dir=prf_dir, progress=False, overwrite=True)
    elapsed = time.perf_counter() - t0
    with PreparedCube(out) as cube:
        prf = cube.effective_prf()
        quality = cube.dataset_attrs(GROUP)
        stars = cube.array(f"{GROUP}/stars")
        origin, shape = cube.origin, cube.shape
    print(
        f"prepare {elapsed:.1f} s, of which the effective PRF {quality['seconds']:.1f} s "
        f"({quality['seconds'] / elapsed:.0%})"
    )
    for key in ("n_chosen", "n_stars", "n_check"):
        print(f"  {key}: {quality[key]}")
    for suffix in ("", "_check"):
        print(
            f"  stars{suffix or ' fitted'}: rms {quality['rms_model' + suffix]:.2e} -> "
            f"{quality['rms_effective' + suffix]:.2e} of the flux "
            f"(x{quality['rms_effective' + suffix] / quality['rms_model' + suffix]:.2f}), "
            f"chi2 {quality['chi2_model' + suffix]:.1f} -> {quality['chi2_effective' + suffix]:.1f}"
        )
    truth = read_truth(next((folder / "truth").glob("truth_*.hdf5")))
    differences = truth["prf_differences"]
    base = load_prf(prf_dir, 1, 1, 4)
    region = (origin[0], origin[0] + shape[0], origin[1], origin[1] + shape[1])
    focus = float(np.mean(differences["focus"])) if differences is not None else 1.0
    exact = exact_prf(base, differences, region, focus=focus) if differences else base
    rows, cols = stars["row"], stars["col"]
    print(
        f"  table error against the truth's PRF: model {table_error(base, exact, rows, cols):.4f}, "
        f"effective {table_error(prf, exact, rows, cols):.4f} (sum of |difference| of a "
        "unit-flux stamp's pixels)"
    )


def full_frame(prf_dir: str, n_stars: int | None, frames: int, seed: int) -> None:
    """Time the fit on a synthetic whole-CCD average image."""
    rng = np.random.default_rng(seed)
    base = load_prf(prf_dir, 1, 1, 4)
    region = (0, SCIENCE_SIZE, 0, SCIENCE_SIZE)
    field = PRFField.draw(PRFDifferenceSettings(enabled=True), seed)
    truth = TransformedPRF(base, field, region).model(1.0)
    n = n_stars if n_stars is not None else default_star_count(region)
    tmag = draw_tmag(rng, n)
    rows = rng.uniform(-0.5, SCIENCE_SIZE - 0.5, n)
    cols = rng.uniform(-0.5, SCIENCE_SIZE - 0.5, n)
    flux = tmag_to_flux(tmag)
    t0 = time.perf_counter()
    shape = (SCIENCE_SIZE, SCIENCE_SIZE)
    image = truth.render(rows, cols, flux, shape, (0, 0))
    sigma = np.sqrt((np.clip(image, 0, None) + SKY) / (frames * FFI_EXPOSURE))
    image += sigma * rng.standard_normal(shape)
    print(f"{n} stars rendered in {time.perf_counter() - t0:.1f} s")
    settings = EffectivePRFSettings()
    t0 = time.perf_counter()
    fit = measure_effective_prf(image, sigma, (0, 0), (rows, cols, flux), base, settings)
    elapsed = time.perf_counter() - t0
    print(fit.summary())
    print(
        f"fit {elapsed:.1f} s: {elapsed / frames:.3f} s per frame of a {frames}-frame sector "
        "(prepare: ~1 core-second per full frame)"
    )
    rows, cols = fit.after.rows, fit.after.cols
    print(
        f"table error against the truth: model {table_error(base, truth, rows, cols):.4f}, "
        f"effective {table_error(fit.prf, truth, rows, cols):.4f}"
    )


def photometry(folder: Path, methods: list[str]) -> None:
    """Each method's precision with the model and with the effective PRF."""
    base = dict(load_settings()["photometry"])
    scores = {}
    for method in methods:
        for prf in ("model", "effective"):
            sub = method_folder(folder, f"{method}-{prf}", under="eprf")
            settings = {**base, "effective_prf": prf == "effective"}
            t0 = time.perf_counter()
            report = run_photometry(
                sub, sub / "lightcurves", run_all=True, overwrite=True, method=method,
                settings=settings, workers=1,
            )  # fmt: skip
            print(
                f"{method} with the {prf} PRF: {report.tasks} tasks in "
                f"{time.perf_counter() - t0:.0f} s"
            )
            scores[f"{method}-{prf}"] = score_sector(sub, sub / "lightcurves")
    yardstick = {s.starid: s for s in scores[f"{methods[0]}-model"].stars}
    names = list(scores)
    print("   Tmag  | " + " | ".join(f"{n:>22}" for n in names) + "   (isolated; crowded)")
    for lo, hi in zip(TMAG_BINS[:-1], TMAG_BINS[1:], strict=True):
        cells = []
        for name in names:
            ratios = {True: [], False: []}
            for s in scores[name].stars:
                ref = yardstick.get(s.starid)
                if ref is None or not lo <= s.tmag < hi or not ref.expected_ppm > 0:
                    continue
                ratio = (s.rms_hour_ppm / s.target_fraction) / (
                    ref.expected_ppm / ref.target_fraction
                )
                ratios[ref.crowded].append(ratio)
            cells.append(
                f"{median(ratios[False]):5.2f} ({len(ratios[False]):3d}); "
                f"{median(ratios[True]):5.2f} ({len(ratios[True]):3d})"
            )
        print(f"{lo:4.0f}-{hi:<4.0f} | " + " | ".join(f"{c:>22}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=("crop", "full-frame", "photometry"))
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--prf-dir", default=os.environ.get("TESSPHOT_PRF_DIR"))
    parser.add_argument("--stars", type=int, help="full-frame: stars (default ~0.06 per px)")
    parser.add_argument("--frames", type=int, default=1282, help="full-frame: FFIs averaged")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=["aperture", "linpsf", "psf"])
    args = parser.parse_args()
    if args.what == "crop":
        crop(args.folder, args.prf_dir)
    elif args.what == "full-frame":
        full_frame(args.prf_dir, args.stars, args.frames, args.seed)
    else:
        photometry(args.folder, args.methods)


if __name__ == "__main__":
    main()
