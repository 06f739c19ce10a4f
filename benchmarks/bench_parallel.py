"""Benchmark of parallel photometry runs (run by hand).

``python benchmarks/bench_parallel.py [--folder DIR] [--stars 20000] [--size 576]
[--cadences 200] [--workers 1 2] [--ranks 3]``

Issue 8: on a simulated CCD of at least 10 000 stars, the stars per second of
``tessphot run --all -j N`` with 1 and 2 local workers and of ``mpiexec -n 3 tessphot
run-mpi --all`` (a master and two worker ranks), and the fraction of their time the workers
wait for the master. Simulates the crop once (kept in ``--folder`` for later runs), with the
todo list's faint limit raised (``--faint-limit``, Tmag 16) so that it has >= 10 000 tasks,
runs the catalog, prepare and todo stages, then times each run as a command of its own on a
fresh copy of the todo list (wall-clock time of the run, including starting the workers).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from simulated import add_sector_arguments, ensure_simulated

from tessphot.config import load_settings
from tessphot.demo import prepare_simulated

#: The issue's minimum number of stars.
MIN_STARS = 10_000
#: Name of the untouched todo list kept in the folder (each run starts from a copy).
PRISTINE_TODO = "todo.pristine.sqlite"
#: What the runs print (tessphot.runner.report.format_summary).
RAN = re.compile(r"Ran (\d+) task\(s\) in ([\d.]+) s")
WAITED = re.compile(r"waited ([\d.]+) % of their time")
BUSY = re.compile(r"([\d.]+) workers busy on average")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sector_arguments(
        parser, "tessphot-bench-parallel", size=576, cadences=200, stars=20_000, bright=2, seed=8
    )
    parser.add_argument("--faint-limit", type=float, default=16.0, help="todo faint limit")
    parser.add_argument(
        "--workers", type=int, nargs="*", default=[1, 2], help="local worker counts to time"
    )
    parser.add_argument("--ranks", type=int, default=3, help="MPI ranks (0: no MPI run)")
    parser.add_argument(
        "--serial", action="store_true", help="also time a run without workers (reference)"
    )
    args = parser.parse_args()

    folder = Path(args.folder)
    ready(folder, args)
    tasks = _count_tasks(folder / PRISTINE_TODO)
    print(f"{args.stars} simulated stars, {tasks} tasks, {args.cadences} cadences")
    if args.stars < MIN_STARS:
        print(f"  (fewer than the issue's {MIN_STARS} stars)")

    rows = []
    if args.serial:
        rows.append(("serial, in one process", timed_run(folder, ["run", "--all"])))
    for workers in args.workers:
        rows.append(
            (f"local, -j {workers}", timed_run(folder, ["run", "--all", "-j", str(workers)]))
        )
    if args.ranks:
        mpiexec = ["mpiexec", "--oversubscribe", "-n", str(args.ranks)]
        if os.geteuid() == 0:
            mpiexec.insert(1, "--allow-run-as-root")
        rows.append(
            (
                f"MPI, {args.ranks} ranks ({args.ranks - 1} workers)",
                timed_run(folder, ["run-mpi", "--all"], prefix=mpiexec),
            )
        )
    print(
        f"\n{'run':32s} {'run':>6s} {'seconds':>8s} {'stars/s':>8s} {'todo/s':>7s} "
        f"{'wait %':>7s} {'busy':>5s} {'load':>5s}"
    )
    for name, (ran, seconds, waited, busy, load) in rows:
        print(
            f"{name:32s} {ran:6d} {seconds:8.1f} {ran / seconds:8.2f} {tasks / seconds:7.2f} "
            f"{waited:7.2f} {busy:5.2f} {load:5.1f}"
        )
    print(
        "\nrun: tasks run (the others became SKIPPED by a brighter star's result before their "
        "turn); stars/s: tasks run per second of wall-clock time of the whole command; "
        "todo/s: tasks of the todo list settled per second; wait %: time the workers waited "
        "for a task from the master, of their total time; busy: workers busy with a task on "
        "average (the seconds spent on tasks over the wall-clock time); load: the machine's "
        "1-minute load "
        f"average before the run (other programs share its {os.cpu_count()} cores)"
    )


def ready(folder: Path, args: argparse.Namespace) -> None:
    """Simulate and prepare the benchmark CCD, unless done already."""
    ensure_simulated(args)
    if not (folder / PRISTINE_TODO).is_file():
        settings = load_settings()
        settings["todo"]["faint_limit"] = args.faint_limit
        began = time.perf_counter()
        stages = prepare_simulated(folder, settings, prf_dir=args.prf_dir, progress=True)
        shutil.copy2(stages["todo"], folder / PRISTINE_TODO)
        print(f"catalog, prepare, todo ready in {time.perf_counter() - began:.0f} s")


def timed_run(
    folder: Path, command: list[str], prefix: tuple[str, ...] | list[str] = ()
) -> tuple[int, float, float, float, float]:
    """Run a photometry command on a fresh todo list: ``(tasks run, seconds, wait %, workers
    busy on average, load average of the machine before the run)``."""
    shutil.copy2(folder / PRISTINE_TODO, folder / "todo.sqlite")
    output = folder / "lightcurves"
    shutil.rmtree(output, ignore_errors=True)
    full = [*prefix, sys.executable, "-m", "tessphot.cli", "-q", *command, str(folder)]
    load = os.getloadavg()[0]
    print("$", " ".join(full), f"(load average {load:.1f})", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run(full, capture_output=True, text=True, env=env)
    print(result.stdout, end="")
    if result.returncode not in (0, 1):  # 1: some task failed, which the counts show
        sys.exit(f"the run failed:\n{result.stderr}")
    ran, seconds = RAN.search(result.stdout).groups()
    waited, busy = WAITED.search(result.stdout), BUSY.search(result.stdout)
    return (
        int(ran),
        float(seconds),
        float(waited.group(1)) if waited else 0.0,
        float(busy.group(1)) if busy else float("nan"),
        load,
    )


def _count_tasks(todo: Path) -> int:
    con = sqlite3.connect(todo)
    try:
        return int(con.execute("SELECT COUNT(*) FROM todolist").fetchone()[0])
    finally:
        con.close()


if __name__ == "__main__":
    main()
