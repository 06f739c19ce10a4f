"""Speed benchmark of FFI aperture photometry (run by hand).

``python benchmarks/bench_photometry.py [--folder DIR] [--cadences 1300] [--size 200]``

Target (issue 5): aperture photometry of 1300-cadence FFI data at no less than 20 stars per
second per core, at most 1 GB of memory per worker. Simulates a sector crop once (kept in
``--folder`` for later runs), runs the catalog, prepare and todo stages, then times the
photometry of every task in this one process (numpy limited to one thread), including
writing the light curves.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

# One core: keep numpy's thread pools at one thread.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

from simulated import add_sector_arguments, ensure_simulated  # noqa: E402

from tessphot.demo import prepare_simulated  # noqa: E402
from tessphot.io import find_ffis  # noqa: E402
from tessphot.runner import format_summary, run_photometry  # noqa: E402

#: Targets of the issue.
TARGET_STARS_PER_SECOND = 20.0
TARGET_MEMORY_MIB = 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sector_arguments(
        parser, "tessphot-bench-photometry", size=200, cadences=1300, stars=None, bright=2, seed=5
    )
    parser.add_argument("--limit", type=int, default=None, help="time only this many tasks")
    parser.add_argument(
        "--photometry-only", action="store_true", help=argparse.SUPPRESS
    )  # the timed part, run in a fresh process so that its peak memory is its own
    args = parser.parse_args()

    folder = Path(args.folder)
    if args.photometry_only:
        photometry(folder, args.limit)
        return
    ensure_simulated(args)
    t0 = time.perf_counter()
    prepare_simulated(folder, prf_dir=args.prf_dir, progress=True, workers=1)
    print(f"catalog, prepare, todo ready in {time.perf_counter() - t0:.0f} s")
    command = [sys.executable, __file__, "--folder", str(folder), "--photometry-only"]
    if args.limit:
        command += ["--limit", str(args.limit)]
    subprocess.run(command, check=True)


def photometry(folder: Path, limit: int | None) -> None:
    """Time the photometry of the tasks of a prepared folder (in this fresh process)."""
    n_cadences = len(find_ffis(folder))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    report = run_photometry(
        folder,
        folder / "lightcurves",
        run_all=limit is None,
        constraints={"priority": list(range(1, limit + 1))} if limit else None,
        overwrite=True,
    )
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(format_summary(report))
    rate = report.tasks / elapsed
    times = sorted(r[3] for r in report.results)
    median_ms = 1000 * times[len(times) // 2] if times else float("nan")
    print(
        f"photometry: {report.tasks} tasks of {n_cadences} cadences in {elapsed:.1f} s"
        f" = {rate:.1f} stars/s on one core (median {median_ms:.0f} ms per star, slowest "
        f"{1000 * times[-1]:.0f} ms)"
    )
    print(
        f"  target >= {TARGET_STARS_PER_SECOND:.0f} stars/s: "
        f"{'PASS' if rate >= TARGET_STARS_PER_SECOND else 'FAIL'}"
    )
    print(
        f"peak memory: {peak:.0f} MiB (before photometry {rss0:.0f} MiB); target <= "
        f"{TARGET_MEMORY_MIB:.0f} MiB: {'PASS' if peak <= TARGET_MEMORY_MIB else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
