"""Write the TESS ephemeris shipped with tessphot from a folder of Horizons tables.

Compacts MAST's ``YYYYMMDD_tess_ephem.csv.gz`` tables (:mod:`tessphot.timing.shipped`) into
``src/tessphot/data/tess_ephemeris.npz`` and prints how far the compact copy is from the
full tables (every 10 min over the whole coverage) and its size. Run from the repository
root when MAST publishes a new table::

    python tools/ship_ephemeris.py ../shared/data/ephemeris
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tessphot.timing import TableEphemeris, find_tables, read_horizons_table
from tessphot.timing.barycentric import SPEED_OF_LIGHT_KM_S
from tessphot.timing.shipped import compact_tables, read_compact, write_compact

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "tessphot" / "data" / "tess_ephemeris.npz"
#: Step of the comparison [d].
PROBE_STEP_DAYS = 10.0 / 1440.0


def main() -> None:
    """Write the shipped tables and report their error and size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder of *_tess_ephem.csv.gz tables")
    parser.add_argument("-o", "--output", type=Path, default=TARGET, help="the .npz written")
    args = parser.parse_args()
    tables = [read_horizons_table(p) for p in find_tables([args.folder])]
    write_compact(compact_tables(tables), args.output)
    full = TableEphemeris(tables)
    compact = TableEphemeris(read_compact(args.output))
    probe = np.arange(full.start, full.stop, PROBE_STEP_DAYS)
    error = np.linalg.norm(compact.position_km(probe) - full.position_km(probe), axis=1)
    rows = sum(t.jd.size for t in read_compact(args.output))
    print(f"{len(tables)} tables, JD {full.start:.2f}-{full.stop:.2f}: {rows} rows kept")
    print(
        f"largest position error {error.max():.3f} km "
        f"({error.max() / SPEED_OF_LIGHT_KM_S * 1e6:.2f} us of light time), "
        f"99.9 % below {np.percentile(error, 99.9):.3f} km, over {probe.size} times"
    )
    size = args.output.stat().st_size / 1e3
    sources = sum(p.stat().st_size for p in find_tables([args.folder])) / 1e3
    print(f"{args.output}: {size:.0f} kB (the tables: {sources:.0f} kB)")


if __name__ == "__main__":
    main()
