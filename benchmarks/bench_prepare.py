"""Benchmark of the prepare stage: time, memory and disk (run by hand).

``python benchmarks/bench_prepare.py [--sector DIR] [--subsets 120,1282] [--full-frames N]
[--workers 1,2] [--lossless] [--stamps] [--against SRC --repeats N]``

* ``--sector DIR``: a simulated sector kept by ``bench_sector.py`` (e.g. 600x600 px and the
  1282 cadences of sector 1): prepare its first N frames for every N of ``--subsets``, so
  that time, memory and disk can be compared between 120 frames and the whole sector;
* ``--full-frames N``: simulate N full 2048x2048 frames (kept in ``--full-folder``) and
  prepare them;
* each with every number of ``--workers``; ``--lossless`` adds the lossless storage.

Every run is a separate process, whose whole process tree (workers included) is sampled for
its peak memory. Reported per run: seconds per frame, core-seconds per frame, the speed-up
of 2 workers over 1, peak memory (total and main process), and the file's bytes per pixel
and frame with its size per full 2048x2048 frame. Core-seconds are the wall time times the
workers; the CPU time is that of the whole process tree (user and system). ``--stamps``
times the reads of a 15x15 stamp over all cadences from the prepared file of the first run.

With 2 workers it first measures the machine's ceiling: how much more two processes doing
the same work at once (background estimates) get done than one. On a virtual machine whose
two cores share a physical core, or on a busy host, that is well under 2 and limits any
2-worker speed-up; it is printed and stored beside the runs.

That machine's speed also drifts, by up to a third within minutes. ``--against SRC`` (the
``src`` folder of another checkout, e.g. a ``git worktree`` of the commit before a change)
runs every configuration with this code and that one in turn, ``--repeats N`` times, and
prints the ratios of their streaming time and CPU time run by run, and their medians.

Targets (issue 17): <= 6 MB per full frame (default storage); peak memory <= 1.5 GB in
total for full frames with 2 workers, the same for 120 and 1282 frames; <= 1.0
core-second per full frame; 2 workers >= 1.8x one.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tree_memory import TreeMemory

#: Pixels of a full frame.
FULL_FRAME_PIXELS = 2048 * 2048

PREPARE = """
import logging, sys
logging.basicConfig(level=logging.INFO, format="%(message)s")
from tessphot.prepare.run import prepare_ccd
folder, out, workers, lossless, prf = sys.argv[1:6]
settings = {"storage": {"lossless": lossless == "1"}}
prepare_ccd(folder, 1, 1, 4, settings=settings, workers=int(workers), progress=False,
            overwrite=True, output=out, prf_dir=prf or None)
"""


def subset(sector: Path, n: int, work: Path) -> Path:
    """A folder with the first ``n`` FFIs of a simulated sector (links) and its catalog."""
    folder = work / f"frames{n}"
    folder.mkdir()
    ffis = sorted(p for p in (sector / "ffi").iterdir() if ".fits" in p.name)
    for path in ffis[:n]:
        (folder / path.name).symlink_to(path)
    for path in sector.glob("catalog_*.sqlite"):
        shutil.copy(path, folder / path.name)
    return folder


def run(
    folder: Path,
    out: Path,
    workers: int,
    lossless: bool,
    prf_dir: str | None,
    src: str | None = None,
) -> dict:
    """Prepare in a process of its own; time, peak memory and file size.

    ``src``: the ``src`` folder of another checkout to run instead of this one.
    """
    args = [str(folder), str(out), str(workers), "1" if lossless else "0", prf_dir or ""]
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", PREPARE, *args], stderr=subprocess.PIPE, text=True, env=env
    )
    memory = TreeMemory(proc.pid)
    log = proc.stderr.read()
    code = proc.wait()
    memory.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU time of the whole process tree (the workers are waited for by the run).
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    streamed = re.search(r"Streamed \d+ frames in ([\d.]+) s.*set-up took ([\d.]+) s", log)
    elapsed = time.perf_counter() - start
    if code or not streamed:
        raise SystemExit(f"prepare failed ({code}) on {folder}:\n{log[-2000:]}")
    stream_s, setup_s = float(streamed[1]), float(streamed[2])
    import h5py

    with h5py.File(out, "r") as h5:
        n, ny, nx = h5["images"].shape
    size = out.stat().st_size
    per_pixel = size / (n * ny * nx)
    return {
        "frames": n,
        "shape": [ny, nx],
        "workers": workers,
        "lossless": lossless,
        "seconds": elapsed,
        "setup_seconds": setup_s,
        "stream_seconds": stream_s,
        # The rest: the finish (average image, effective PRF, motion) and the start-up.
        "finish_seconds": elapsed - setup_s - stream_s,
        "s_per_frame": elapsed / n,
        "stream_s_per_frame": stream_s / n,
        "core_s_per_full_frame": elapsed * workers / n * FULL_FRAME_PIXELS / (ny * nx),
        "cpu_seconds": cpu,
        "cpu_s_per_full_frame": cpu / n * FULL_FRAME_PIXELS / (ny * nx),
        "stream_core_s_per_full_frame": stream_s * workers / n * FULL_FRAME_PIXELS / (ny * nx),
        "peak_total_mib": memory.peak_total,
        "peak_main_mib": memory.peak_main,
        "sampler_cpu_seconds": memory.cpu_seconds,
        "file_mib": size / 2**20,
        "bytes_per_pixel_frame": per_pixel,
        "mb_per_full_frame": per_pixel * FULL_FRAME_PIXELS / 1e6,
        "code": src or "this",
    }


def line(r: dict) -> str:
    return (
        f"{r['frames']:5d} frames {r['shape'][0]}x{r['shape'][1]}, {r['workers']} worker(s)"
        f"{', lossless' if r['lossless'] else ''}: {r['seconds']:.0f} s = "
        f"{r['s_per_frame']:.3f} s/frame ({r['core_s_per_full_frame']:.2f} core-s per full "
        f"frame, CPU {r['cpu_s_per_full_frame']:.2f} s per full frame; set-up "
        f"{r['setup_seconds']:.0f} s, then {r['stream_s_per_frame']:.3f} s/frame "
        f"= {r['stream_core_s_per_full_frame']:.2f} core-s per full frame, then "
        f"{r['finish_seconds']:.0f} s of finish and start-up), peak "
        f"{r['peak_total_mib']:.0f} MiB (main {r['peak_main_mib']:.0f}; sampled with "
        f"{r.get('sampler_cpu_seconds', 0):.1f} s of CPU), file "
        f"{r['file_mib']:.0f} MiB = {r['bytes_per_pixel_frame']:.2f} B/px/frame = "
        f"{r['mb_per_full_frame']:.1f} MB per full frame"
    )


def stamp_reads(path: Path, n_reads: int = 200) -> str:
    """Median and 95th percentile of reading a 15x15 stamp of every cube over all cadences."""
    from tessphot.prepare.cube import CUBES, PreparedCube

    rng = np.random.default_rng(0)
    times = []
    with PreparedCube(path) as cube:
        (r0, c0), (ny, nx) = cube.origin, cube.shape
        for _ in range(n_reads):
            r = r0 + int(rng.integers(0, ny - 15))
            c = c0 + int(rng.integers(0, nx - 15))
            t = time.perf_counter()
            for name in CUBES:
                cube.stamp(name, r, r + 15, c, c + 15)
            times.append(time.perf_counter() - t)
        n = cube.n_cadences
    ms = np.array(times) * 1000
    return (
        f"stamp read (images, errors, background, flags), 15x15 px x {n} cadences, random "
        f"places: median {np.median(ms):.1f} ms, 95th percentile {np.percentile(ms, 95):.1f} ms"
    )


def full_frame_folder(folder: Path, n_frames: int, prf_dir: str | None) -> Path:
    """Simulated full frames and their catalog, made once."""
    if list(folder.glob("catalog_*.sqlite")):
        return folder
    from tessphot.catalog.make import make_catalogs
    from tessphot.catalog.sources.file import FileSource
    from tessphot.config.simulate import SimulationConfig
    from tessphot.evaluation.simulate.sector import simulate_sector

    folder.mkdir(parents=True, exist_ok=True)
    cfg = SimulationConfig(cadences=n_frames, prf_dir=prf_dir, seed=3)
    t0 = time.perf_counter()
    result = simulate_sector(cfg, folder, progress=True)
    make_catalogs(cfg.sector, folder, FileSource([result["catalog"]]), [cfg.camera], [cfg.ccd])
    print(f"simulated {n_frames} full frames in {time.perf_counter() - t0:.0f} s")
    return folder


def run_all(folders: list[Path], work: Path, args: argparse.Namespace) -> list[dict]:
    """Every folder with every storage and number of workers; the results.

    With ``--against``, each configuration runs with this code and the other in turn,
    ``--repeats`` times: the machine's drift then falls on both alike.
    """
    workers = [int(w) for w in args.workers.split(",")]
    codes = [None, args.against] if args.against else [None]
    storages = [False, True] if args.lossless else [False]
    results = []
    for repeat, folder, lossless, w, code in itertools.product(
        range(args.repeats), folders, storages, workers, codes
    ):
        out = work / f"{folder.name}_{w}_{int(lossless)}.hdf5"
        result = run(folder, out, w, lossless, args.prf_dir, code)
        result["repeat"] = repeat
        results.append(result)
        label = f"[{code or 'this code'}, run {repeat + 1}] " if args.against else ""
        print(label + line(result), flush=True)
        if args.stamps and w == workers[0] and code is None and not repeat:
            print(stamp_reads(out), flush=True)
        out.unlink()
    return results


def _configuration(r: dict) -> tuple:
    """What two runs must share to be compared: data, storage and workers."""
    return r["frames"], tuple(r["shape"]), r["lossless"], r["workers"]


def print_comparison(results: list[dict]) -> None:
    """This code against the other, run by run: the ratios of their streaming and CPU."""
    other = {(_configuration(r), r["repeat"]): r for r in results if r["code"] != "this"}
    pairs: dict[tuple, list[tuple[dict, dict]]] = {}
    for r in results:
        if r["code"] == "this":
            pair = (r, other[(_configuration(r), r["repeat"])])
            pairs.setdefault(_configuration(r), []).append(pair)
    for (frames, shape, lossless, workers), runs in sorted(pairs.items()):
        stream = np.array([a["stream_seconds"] / b["stream_seconds"] for a, b in runs])
        cpu = np.array([a["cpu_seconds"] / b["cpu_seconds"] for a, b in runs])
        print(
            f"{frames} frames {shape[0]}x{shape[1]}, {workers} worker(s)"
            f"{', lossless' if lossless else ''}: this code over {runs[0][1]['code']}: "
            f"streaming x{np.median(stream):.3f} (runs {', '.join(f'{v:.3f}' for v in stream)}), "
            f"CPU of the whole run x{np.median(cpu):.3f} "
            f"(runs {', '.join(f'{v:.3f}' for v in cpu)})"
        )


#: Repetitions of the reference work (a few seconds on one core).
CEILING_REPEATS = 20


def _reference_work(seed: int) -> float:
    """Prepare's kind of work on one core: background estimates of 1024x1024 frames [s]."""
    from threadpoolctl import threadpool_limits

    from tessphot.prepare.background import BackgroundSettings, estimate_background

    rng = np.random.default_rng(seed)
    image = rng.normal(100.0, 5.0, (1024, 1024)).astype(np.float32)
    image[rng.integers(0, 1024, 2000), rng.integers(0, 1024, 2000)] += 500.0
    uncertainty = np.full(image.shape, 5.0, dtype=np.float32)
    start = time.perf_counter()
    with threadpool_limits(1):
        for _ in range(CEILING_REPEATS):
            estimate_background(image, uncertainty, None, BackgroundSettings())
    return time.perf_counter() - start


def parallel_ceiling() -> float:
    """How much faster two processes get the same work done than one, on this machine now.

    Two processes each do the reference work at once; the ratio of twice one process's
    time alone to their time together is the most 2 workers can gain (2.0 on two free
    cores; less when the cores share a physical core or the host is busy).
    """
    import multiprocessing

    alone = _reference_work(0)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_reference_work, [1, 2])  # the workers' imports, outside the timing
        start = time.perf_counter()
        pool.map(_reference_work, [1, 2])
        together = time.perf_counter() - start
    return 2.0 * alone / together


def print_speed_ups(results: list[dict], ceiling: float | None = None) -> None:
    """Two workers' speed over one's, for each data set and storage (and the machine's)."""
    for a in results:
        for b in results:
            same = all(a[k] == b[k] for k in ("frames", "shape", "lossless", "repeat"))
            if same and a["workers"] == 1 and b["workers"] == 2:
                speed_up = a["seconds"] / b["seconds"]
                streaming = a["stream_seconds"] / b["stream_seconds"]
                print(
                    f"{a['frames']} frames {a['shape']}: 2 workers {speed_up:.2f}x one "
                    f"({streaming:.2f}x on the frames after the set-up)"
                    + (f"; the machine's ceiling {ceiling:.2f}x" if ceiling else "")
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sector", help="a simulated sector kept by bench_sector.py")
    parser.add_argument("--subsets", default="120,1282", help="numbers of its frames")
    parser.add_argument("--full-frames", type=int, default=0, help="full frames to simulate")
    parser.add_argument(
        "--full-folder",
        default=os.path.join(tempfile.gettempdir(), "bench_prepare_full"),
        help="where the full frames are kept",
    )
    parser.add_argument("--workers", default="1,2", help="numbers of worker processes")
    parser.add_argument("--lossless", action="store_true", help="also the lossless storage")
    parser.add_argument("--stamps", action="store_true", help="time stamp reads")
    parser.add_argument("--prf-dir", help="real SPOC PRFs (simulation and masks)")
    parser.add_argument(
        "--against", help="the src folder of another checkout, run in turn with this code"
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs of every configuration")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folders = []
        if args.sector:
            folders += [subset(Path(args.sector), int(n), work) for n in args.subsets.split(",")]
        if args.full_frames:
            full = Path(args.full_folder)
            folders.append(full_frame_folder(full, args.full_frames, args.prf_dir))
        ceiling = parallel_ceiling() if "2" in args.workers.split(",") else None
        if ceiling is not None:
            print(
                f"this machine now: two processes do {ceiling:.2f}x the work of one "
                "(the ceiling of 2 workers' speed-up)",
                flush=True,
            )
        results = run_all(folders, work, args)
    print_speed_ups([r for r in results if r["code"] == "this"], ceiling)
    if args.against:
        print_comparison(results)
    if args.json:
        summary = {"runs": results, "parallel_ceiling": ceiling}
        Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
