"""Benchmark of the simulator (run by hand: ``python benchmarks/bench_simulate.py``).

Target (issue 2): a 512x512 crop with 1000 stars and 100 cadences in under 30 s on one core.
Also times one full 2048x2048 frame, and reports peak memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

# One core: keep numpy's thread pools at one thread.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

from tessphot.config.simulate import SimulationConfig  # noqa: E402
from tessphot.evaluation.simulate.sector import simulate_sector  # noqa: E402


def run(label: str, config: SimulationConfig) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = simulate_sector(config, tmp, progress=False)
        elapsed = time.perf_counter() - t0
        n = len(result["ffis"])
        size = sum(p.stat().st_size for p in result["ffis"]) / n / 2**20
    print(
        f"{label}: {elapsed:.1f} s for {n} frames ({elapsed / n * 1000:.0f} ms/frame, "
        f"{size:.2f} MiB/frame)"
    )
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prf-dir", help="use the real SPOC PRFs from this folder")
    parser.add_argument("--full-frames", type=int, default=2, help="full frames to time")
    args = parser.parse_args()
    crop = run(
        "512x512 crop, 1000 stars, 100 cadences",
        SimulationConfig(size=512, stars=1000, cadences=100, bright=2, prf_dir=args.prf_dir),
    )
    print(f"  target < 30 s: {'PASS' if crop < 30 else 'FAIL'}")
    if args.full_frames:
        run(
            f"full 2048x2048 frame, default density ({0.06 * 2048**2:.0f} stars)",
            SimulationConfig(cadences=args.full_frames, prf_dir=args.prf_dir),
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
