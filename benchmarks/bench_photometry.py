"""Speed benchmark of FFI aperture photometry (run by hand).

``python benchmarks/bench_photometry.py [--folder DIR] [--cadences 1300] [--size 200]
[--against SRC [--against-folder DIR] --repeats N]``

Targets: aperture photometry of 1300-cadence FFI data at no less than 20 stars per second
per core (issue 5) and no slower than the code of issue 14's day (40 stars/s on the machine
of that day), at most 1 GB of memory per worker. Simulates a sector crop once (kept in
``--folder`` for later runs), runs the catalog, prepare and todo stages, then times the
photometry of every task in a fresh process (numpy limited to one thread), including
writing the light curves.

The machine's speed drifts by a third within minutes, so a speed compared with another
day's is compared with that day's code run in the same minutes: ``--against SRC`` (the
``src`` folder of another checkout, e.g. a ``git worktree`` of an older commit) runs the
photometry with this code and that one in turn, ``--repeats N`` times (each first in every
other repeat), each in a fresh process, and prints the ratios of their stars per second run
by run. The other code reads
``--against-folder`` (default ``--folder``): the same FFIs prepared by that code, when its
prepared file differs (e.g. ``prepare_simulated`` of that checkout on a folder linking to
this one's ``ffi`` and ``truth``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

# One core: keep numpy's thread pools at one thread.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

from simulated import add_sector_arguments, ensure_simulated  # noqa: E402

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
        "--against", help="the src folder of another checkout, run in turn with this code"
    )
    parser.add_argument(
        "--against-folder", help="the folder the other code reads (default: --folder)"
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs of each code")
    parser.add_argument(
        "--photometry-only", action="store_true", help=argparse.SUPPRESS
    )  # the timed part, run in a fresh process so that its peak memory is its own
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # its numbers
    args = parser.parse_args()

    folder = Path(args.folder)
    if args.photometry_only:
        photometry(folder, args.limit, as_json=args.json)
        return
    # The simulation and preparation with this code (the timed runs may be another's).
    from tessphot.demo import prepare_simulated

    ensure_simulated(args)
    t0 = time.perf_counter()
    prepare_simulated(folder, prf_dir=args.prf_dir, progress=True, workers=1)
    print(f"catalog, prepare, todo ready in {time.perf_counter() - t0:.0f} s")
    if not args.against:
        for _ in range(args.repeats):
            subprocess.run(_command(folder, args.limit), check=True)
        return
    other = Path(args.against_folder or folder)
    runs: dict[str, list[dict]] = {"this code": [], args.against: []}
    for repeat in range(args.repeats):
        pair = [("this code", folder), (args.against, other)]
        # Each code first in every other repeat: a drift within a pair falls on both alike.
        for code, data in pair if repeat % 2 == 0 else pair[::-1]:
            env = dict(os.environ)
            if code != "this code":
                env["PYTHONPATH"] = os.pathsep.join(p for p in (code, env.get("PYTHONPATH")) if p)
            done = subprocess.run(
                [*_command(data, args.limit), "--json"],
                check=True,
                env=env,
                capture_output=True,
                text=True,
            )
            run = json.loads(done.stdout.strip().splitlines()[-1])
            runs[code].append(run)
            print(
                f"[{code}, run {repeat + 1}] {run['tasks']} tasks ({run['lightcurves']} light "
                f"curves) in {run['seconds']:.1f} s, CPU {run['cpu_seconds']:.1f} s: "
                f"{run['stars_per_second']:.1f} stars/s; peak {run['peak_mib']:.0f} MiB",
                flush=True,
            )
    ratios = [
        a["stars_per_second"] / b["stars_per_second"]
        for a, b in zip(runs["this code"], runs[args.against], strict=True)
    ]
    print(
        f"stars per second, this code over {args.against}: x{statistics.median(ratios):.3f} "
        f"(runs {', '.join(f'{r:.3f}' for r in ratios)})"
    )


def _command(folder: Path, limit: int | None) -> list[str]:
    """The timed photometry of a folder in a fresh process."""
    command = [sys.executable, __file__, "--folder", str(folder), "--photometry-only"]
    return command + (["--limit", str(limit)] if limit else [])


def photometry(folder: Path, limit: int | None, *, as_json: bool = False) -> None:
    """Time the photometry of the tasks of a prepared folder (in this fresh process).

    With ``as_json``, the numbers are printed as one JSON line last.
    """
    # Imported here: this runs with the code under test (possibly another checkout's).
    from tessphot.io import find_ffis
    from tessphot.runner import format_summary, run_photometry

    n_cadences = len(find_ffis(folder))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0, cpu0 = time.perf_counter(), time.process_time()
    report = run_photometry(
        folder,
        folder / "lightcurves",
        run_all=limit is None,
        constraints={"priority": list(range(1, limit + 1))} if limit else None,
        overwrite=True,
    )
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rate = report.tasks / elapsed
    if as_json:
        written = sum(report.counts.get(name, 0) for name in ("OK", "WARNING"))
        numbers = {
            "tasks": report.tasks,
            "lightcurves": written,
            "seconds": elapsed,
            "cpu_seconds": cpu,
            "stars_per_second": rate,
            "peak_mib": peak,
        }
        print(json.dumps(numbers))
        return
    print(format_summary(report))
    times = sorted(r[3] for r in report.results)
    median_ms = 1000 * times[len(times) // 2] if times else float("nan")
    print(
        f"photometry: {report.tasks} tasks of {n_cadences} cadences in {elapsed:.1f} s"
        f" = {rate:.1f} stars/s on one core (median {median_ms:.0f} ms per star, slowest "
        f"{1000 * times[-1]:.0f} ms; CPU {cpu:.1f} s)"
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
