"""Benchmark of the prepare stage (run by hand: ``python benchmarks/bench_prepare.py``).

Targets (issue 4): full 2048x2048 frames at most 1 s per frame per core including reading
and writing; memory bounded whatever the number of frames; one 15x15 stamp over 1300
cadences read in at most 10 ms. Also scores the background and jitter against the truth.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def peak_mib() -> float:
    self_ = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return self_ / 1024, children / 1024


def simulate(folder: Path, **config) -> dict:
    from tessphot.catalog.make import make_catalogs
    from tessphot.catalog.sources.file import FileSource
    from tessphot.config.simulate import SimulationConfig
    from tessphot.evaluation.simulate.sector import simulate_sector

    cfg = SimulationConfig(**config)
    result = simulate_sector(cfg, folder, progress=False)
    make_catalogs(cfg.sector, folder, FileSource([result["catalog"]]), [cfg.camera], [cfg.ccd])
    return result


def full_frames(n_frames: int, workers: list[int], prf_dir: str | None) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("tessphot.prepare").setLevel(logging.INFO)
    from tessphot.evaluation.scoring.prepare import score_prepared
    from tessphot.prepare.run import prepare_ccd

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        result = simulate(folder, cadences=n_frames, prf_dir=prf_dir, seed=3)
        print(f"simulated {n_frames} full frames in {time.perf_counter() - t0:.0f} s")
        for w in workers:
            t0 = time.perf_counter()
            out = prepare_ccd(
                folder, 1, 1, 4, workers=w, prf_dir=prf_dir, progress=False, overwrite=True
            )
            dt = time.perf_counter() - t0
            print(
                f"prepare, {w} worker(s): {dt:.1f} s = {dt / n_frames:.2f} s/frame "
                f"= {dt * w / n_frames:.2f} s per frame per core; file "
                f"{out.stat().st_size / 2**20:.0f} MiB"
            )
        main_mib, child_mib = peak_mib()
        print(f"peak memory: main process {main_mib:.0f} MiB, largest worker {child_mib:.0f} MiB")
        score = score_prepared(out, result["truth"], prf_dir, max_frames=6)
        print("\n".join(score.lines()))


def stamp_reads(n_reads: int) -> None:
    from tessphot.prepare.cube import PreparedCube
    from tessphot.prepare.run import prepare_ccd

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        simulate(folder, size=96, cadences=None, stars=150, bright=0, seed=5, compress=False)
        out = prepare_ccd(folder, 1, 1, 4, workers=2, progress=False)
        rng = np.random.default_rng(0)
        with PreparedCube(out) as cube:
            n = cube.n_cadences
            r0, c0 = cube.origin
            times = []
            for _ in range(n_reads):
                r = r0 + int(rng.integers(0, 96 - 15))
                c = c0 + int(rng.integers(0, 96 - 15))
                t = time.perf_counter()
                cube.stamp("images", r, r + 15, c, c + 15)
                times.append(time.perf_counter() - t)
        times = np.array(times) * 1000
        print(
            f"stamp read, 15x15 px x {n} cadences: median {np.median(times):.1f} ms, "
            f"95th percentile {np.percentile(times, 95):.1f} ms (target <= 10 ms)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=24, help="full frames to prepare")
    parser.add_argument("--prf-dir", help="real SPOC PRFs for the simulation and the masks")
    args = parser.parse_args()
    stamp_reads(200)
    full_frames(args.frames, [1, 2], args.prf_dir)


if __name__ == "__main__":
    main()
