#!/usr/bin/env python3
"""Benchmark of the catalog stage: build a 1-million-star catalog from a file, query stamps.

Run by hand from the repository root::

    python benchmarks/bench_catalog.py [--stars 1000000] [--format csv|parquet|fits]

It writes a TIC-like file of random stars spread over sector 1, camera 1, CCD 4 (and a little
beyond the buffer), builds the catalog with the file source (no faint limit, so every star on
the footprint is kept), and reports the build time and its parts, the file size, and the time
of ``CatalogDB.stars_in_box`` for random 20x20-pixel stamps (median over many), checked
against a brute-force selection.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: The CCD of the benchmark.
SECTOR, CAMERA, CCD = 1, 1, 4
#: Stars are spread over this pixel range (the science area is 0-2047), so some fall beyond
#: the 0.2-degree buffer (~34 px) and are rejected.
SPREAD_PX = (-60.0, 2108.0)
#: Stamp size [px] and number of stamps timed.
STAMP = 20
N_STAMPS = 2000
#: Stamps checked against brute force, and how close to an edge a star may go either way [px].
N_CHECK = 200
EDGE_PX = 0.01


def write_catalog_file(path: Path, n: int, fmt: str, seed: int = 1) -> None:
    """Random TIC-like stars over the CCD, written as CSV, Parquet or FITS."""
    from astropy.table import Table

    from tessphot.catalog.motion import julian_epoch, propagate
    from tessphot.geometry import sector_geometry
    from tessphot.sectors import sector_info

    rng = np.random.default_rng(seed)
    wcs = sector_geometry(SECTOR, CAMERA, CCD).science_wcs
    cols, rows = (rng.uniform(*SPREAD_PX, n) for _ in range(2))
    ra, dec = wcs.all_pix2world(cols, rows, 0)
    pm_ra = rng.standard_t(3, n) * 8.0
    pm_dec = rng.standard_t(3, n) * 8.0
    # Positions at J2000, so that after proper motion they land where they were drawn.
    years = julian_epoch(sector_info(SECTOR).reference_time) - 2000.0
    ra0, dec0 = propagate(ra, dec, pm_ra, pm_dec, -years)
    table = Table(
        {
            "ID": rng.choice(np.arange(1, 30 * n), n, replace=False).astype(np.int64),
            "ra": ra0,
            "dec": dec0,
            "pmRA": pm_ra,
            "pmDEC": pm_dec,
            "Tmag": rng.uniform(6.0, 19.0, n).round(3),
            "Teff": rng.uniform(3000.0, 9000.0, n).round(0),
        }
    )
    if fmt == "csv":
        table.write(path, format="ascii.csv", overwrite=True)
    elif fmt == "fits":
        table.write(path, format="fits", overwrite=True)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({k: np.asarray(table[k]) for k in table.colnames}), path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stars", type=int, default=1_000_000, help="stars in the file")
    parser.add_argument("--format", choices=("csv", "parquet", "fits"), default="csv")
    parser.add_argument("--folder", help="work folder (default: a temporary one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    from tessphot.catalog.footprint import ccd_footprint
    from tessphot.catalog.make import make_catalogs
    from tessphot.catalog.sources.file import FileSource, read_tic_file
    from tessphot.catalog.sqlite_catalog import CatalogDB

    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as tmp:
        folder = Path(args.folder or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        data = folder / f"tic_bench.{args.format}"
        t0 = time.perf_counter()
        write_catalog_file(data, args.stars, args.format)
        print(f"input: {args.stars} stars, {data.stat().st_size / 1e6:.1f} MB {args.format}")
        print(f"  (written in {time.perf_counter() - t0:.1f} s)")

        ccd_footprint(SECTOR, CAMERA, CCD, 0.2)  # warm up: imports, tesswcs tables
        t0 = time.perf_counter()
        batches = list(read_tic_file(data))
        t_read = time.perf_counter() - t0
        t0 = time.perf_counter()
        paths = make_catalogs(
            SECTOR,
            folder,
            FileSource([data]),
            [CAMERA],
            [CCD],
            overwrite=True,
            faint_limit=None,
        )
        t_build = time.perf_counter() - t0
        path = paths[0]
        del batches

        with CatalogDB(path) as db:
            n = len(db)
            print(f"catalog: {n} stars kept, {path.stat().st_size / 1e6:.1f} MB")
            print(f"build time: {t_build:.1f} s in total ({n / t_build / 1e3:.0f} k stars/s)")
            print(f"  of which reading the {args.format} file: {t_read:.1f} s")
            t_write = _time_writer(db, folder)
            print(f"  of which writing SQLite (rows, R*Tree, index, VACUUM): {t_write:.1f} s")

            rng = np.random.default_rng(7)
            corners = rng.integers(0, 2048 - STAMP, size=(N_STAMPS, 2))
            wcs = db.wcs
            db.stars_in_box(0, STAMP, 0, STAMP)  # warm up
            times, counts = [], []
            for r0, c0 in corners:
                t = time.perf_counter()
                stars = db.stars_in_box(r0, r0 + STAMP, c0, c0 + STAMP, wcs=wcs)
                times.append(time.perf_counter() - t)
                counts.append(len(stars))
            med = statistics.median(times) * 1e6
            p95 = float(np.percentile(times, 95)) * 1e6
            print(
                f"stamp query ({STAMP}x{STAMP} px, {N_STAMPS} random stamps): median "
                f"{med:.0f} us, 95th percentile {p95:.0f} us, {np.mean(counts):.1f} stars/stamp"
            )
            _check(db, wcs, corners[:N_CHECK])
    return 0


def _time_writer(db, folder: Path) -> float:
    """Time writing the same stars again with CatalogWriter alone."""
    from tessphot.catalog.writer import CatalogWriter

    stars = db.stars()
    t0 = time.perf_counter()
    with CatalogWriter(folder / "rewrite.sqlite", db.settings, {}) as writer:
        writer.add(*(stars[name] for name in stars.dtype.names))
        writer.finish()
    return time.perf_counter() - t0


def _check(db, wcs, corners) -> None:
    """Compare stamp queries with a brute-force selection on all stars (stars closer than
    EDGE_PX to a stamp edge may go either way: the stamp outline is sampled)."""
    stars = db.stars()
    col, row = wcs.all_world2pix(stars["ra"], stars["decl"], 0)
    bad = 0
    for r0, c0 in corners:
        got = set(db.stars_in_box(r0, r0 + STAMP, c0, c0 + STAMP, wcs=wcs)["starid"].tolist())
        lo_r, hi_r, lo_c, hi_c = r0 - 0.5, r0 + STAMP - 0.5, c0 - 0.5, c0 + STAMP - 0.5
        inside = (row >= lo_r) & (row < hi_r) & (col >= lo_c) & (col < hi_c)
        near = (
            (
                np.minimum.reduce(
                    [abs(row - lo_r), abs(row - hi_r), abs(col - lo_c), abs(col - hi_c)]
                )
                < EDGE_PX
            )
            & (row > lo_r - 1)
            & (row < hi_r + 1)
            & (col > lo_c - 1)
            & (col < hi_c + 1)
        )
        sure = set(stars["starid"][inside & ~near].tolist())
        bad += not (sure <= got <= sure | set(stars["starid"][near].tolist()))
    print(f"brute-force check: {len(corners) - bad}/{len(corners)} stamps identical")


if __name__ == "__main__":
    sys.exit(main())
