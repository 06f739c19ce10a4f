"""Compare two folders of light curves bit for bit (run by hand).

``python benchmarks/compare_lightcurves.py BEFORE AFTER``

Every FITS file below either folder must exist in both, with the same extensions, the same
data (compared as raw bytes: bit-identical) and the same header cards (their 80-character
images), except those that change from one run to the next (``DATE``, ``CHECKSUM``,
``DATASUM``, ``HISTORY``). Other files (``summary.json``) are compared on their keys that do
not depend on timing. Exits with status 1 and lists the differences if there are any.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from astropy.io import fits

#: Header keywords allowed to differ between two runs.
VOLATILE_KEYWORDS = frozenset({"DATE", "CHECKSUM", "DATASUM", "HISTORY"})
#: summary.json keys that depend on timing.
VOLATILE_SUMMARY = frozenset({"mean_elaptime", "mean_worker_waittime", "slurm_jobid"})
#: Light-curve files' suffix.
FITS_SUFFIXES = (".fits", ".fits.gz")


def _cards(header: fits.Header) -> list[str]:
    """The header's cards that should not change, as their 80-character images."""
    return [card.image for card in header.cards if card.keyword not in VOLATILE_KEYWORDS]


def _data_bytes(hdu: fits.hdu.base.ExtensionHDU | fits.PrimaryHDU) -> bytes | None:
    """The HDU's data as raw bytes (None for no data)."""
    data = hdu.data
    if data is None:
        return None
    return np.ascontiguousarray(data).tobytes()


def compare_fits(before: Path, after: Path) -> list[str]:
    """Differences between two FITS files (empty list: identical)."""
    problems: list[str] = []
    with fits.open(before) as a, fits.open(after) as b:
        if len(a) != len(b):
            return [f"{len(a)} vs {len(b)} extensions"]
        for i, (ha, hb) in enumerate(zip(a, b, strict=True)):
            if ha.name != hb.name:
                problems.append(f"HDU {i}: name {ha.name} vs {hb.name}")
            ca, cb = _cards(ha.header), _cards(hb.header)
            if ca != cb:
                diff = [x for x in ca if x not in cb] + [x for x in cb if x not in ca]
                problems.append(f"HDU {i} ({ha.name}): header differs: {diff[:4]}")
            if _data_bytes(ha) != _data_bytes(hb):
                problems.append(f"HDU {i} ({ha.name}): data differs")
    return problems


def compare_folders(before: Path, after: Path) -> dict[str, list[str]]:
    """Differences between two light-curve folders, per file (relative path)."""
    files_a = {p.relative_to(before) for p in before.rglob("*") if p.is_file()}
    files_b = {p.relative_to(after) for p in after.rglob("*") if p.is_file()}
    problems: dict[str, list[str]] = {}
    for name in sorted(files_a ^ files_b):
        problems[str(name)] = ["only in " + ("before" if name in files_a else "after")]
    for name in sorted(files_a & files_b):
        pa, pb = before / name, after / name
        if pa.name.endswith(FITS_SUFFIXES):
            found = compare_fits(pa, pb)
        elif pa.suffix == ".json":
            ja, jb = (json.loads(p.read_text()) for p in (pa, pb))
            keys = (set(ja) | set(jb)) - VOLATILE_SUMMARY
            found = [f"{k}: {ja.get(k)!r} vs {jb.get(k)!r}" for k in keys if ja.get(k) != jb.get(k)]
        else:
            found = [] if pa.read_bytes() == pb.read_bytes() else ["bytes differ"]
        if found:
            problems[str(name)] = found
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args()
    problems = compare_folders(args.before, args.after)
    n_files = sum(1 for p in args.before.rglob("*") if p.is_file())
    for name, found in problems.items():
        print(f"{name}: " + "; ".join(found))
    print(f"{n_files} files compared, {len(problems)} differ")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
