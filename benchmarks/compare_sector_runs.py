"""Compare two runs of ``bench_sector.py`` on the same simulated sector, star by star.

``python benchmarks/compare_sector_runs.py A.json B.json [--min-stars 1]``

For two runs of the same sector that differ in one thing (e.g. the default storage and the
lossless one, ``[prepare.storage] lossless = true``; or the code before and after a change),
prints per Tmag bin, constant and variable, isolated and crowded: each run's median
``ratio_hour`` (issue 14's yardstick), their difference in percent, and the median and
16-84 % range of the per-star ratio B / A over the stars scored in both. A bin's median
moves when one star trades places with its neighbour in the ranking (a robust rms of ~600
hourly bins jitters by about a percent when independent noise of 2 % of sigma is added),
so the paired ratio is the closer measure of what changed in each star; closer still is the
paired ratio of ``std_hour``, the standard deviation of the same bins (smooth: about 0.1 %
for that noise). Also prints how many stars changed their aperture.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

#: Tmag bins [mag].
BINS = tuple(range(6, 16))


def _stars(path: Path) -> dict[int, dict]:
    """The scored stars of one run (their ``ratio_hour`` finite), by TIC ID."""
    stars = json.loads(Path(path).read_text())["stars"]
    return {
        int(s["starid"]): s
        for s in stars
        if s.get("ratio_hour") is not None and math.isfinite(s["ratio_hour"])
    }


def _std(star: dict) -> float:
    """The star's ``std_hour`` (NaN when its run was scored without it)."""
    value = star.get("std_hour")
    return math.nan if value is None else float(value)


def _paired_pct(name: str, ratios: np.ndarray) -> dict[str, float]:
    """Median and 16-84 % of paired ratios as changes in percent (NaN without any)."""
    if not ratios.size:
        return {f"{name}_{k}_pct": math.nan for k in ("median", "16", "84")}
    median, low, high = np.percentile(ratios, [50, 16, 84])
    return {
        f"{name}_median_pct": 100 * (median - 1),
        f"{name}_16_pct": 100 * (low - 1),
        f"{name}_84_pct": 100 * (high - 1),
    }


def compare(a: dict[int, dict], b: dict[int, dict], min_stars: int = 1) -> list[dict]:
    """The per-bin comparison rows (see the module's description)."""
    both = sorted(set(a) & set(b))
    rows = []
    for lo in BINS:
        for variable in (False, True):
            for crowded in (False, True):
                ids = [
                    s
                    for s in both
                    if lo <= a[s]["tmag"] < lo + 1
                    and (a[s]["kind"] != "constant") == variable
                    and bool(a[s]["crowded"]) == crowded
                ]
                if len(ids) < min_stars:
                    continue
                ra = np.array([a[s]["ratio_hour"] for s in ids])
                rb = np.array([b[s]["ratio_hour"] for s in ids])
                paired = rb / ra
                smooth = np.array([_std(b[s]) / _std(a[s]) for s in ids])
                smooth = smooth[np.isfinite(smooth)]  # runs scored before std_hour: none
                rows.append(
                    {
                        "tmag": f"{lo}-{lo + 1}",
                        "kind": "variable" if variable else "constant",
                        "where": "crowded" if crowded else "isolated",
                        "n": len(ids),
                        "median_a": float(np.median(ra)),
                        "median_b": float(np.median(rb)),
                        "median_change_pct": 100 * (np.median(rb) / np.median(ra) - 1),
                        "paired_median_pct": 100 * (np.median(paired) - 1),
                        "paired_16_pct": 100 * (np.percentile(paired, 16) - 1),
                        "paired_84_pct": 100 * (np.percentile(paired, 84) - 1),
                        **_paired_pct("std_paired", smooth),
                        "apertures_changed": sum(
                            a[s]["mask_size"] != b[s]["mask_size"] for s in ids
                        ),
                    }
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("a", help="bench_sector.json of the first run")
    parser.add_argument("b", help="bench_sector.json of the second run")
    parser.add_argument("--min-stars", type=int, default=1, help="smallest bin shown")
    args = parser.parse_args()
    a, b = _stars(Path(args.a)), _stars(Path(args.b))
    rows = compare(a, b, args.min_stars)
    print(f"{len(set(a) & set(b))} stars scored in both ({len(a)} and {len(b)} in each)")
    print(
        "| Tmag | kind | where | n | median A | median B | change | paired median "
        "(16-84 %) | paired std_hour (16-84 %) | apertures changed |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['tmag']} | {r['kind']} | {r['where']} | {r['n']} | {r['median_a']:.4f} | "
            f"{r['median_b']:.4f} | {r['median_change_pct']:+.2f} % | "
            f"{r['paired_median_pct']:+.3f} % ({r['paired_16_pct']:+.2f} to "
            f"{r['paired_84_pct']:+.2f}) | {r['std_paired_median_pct']:+.3f} % "
            f"({r['std_paired_16_pct']:+.2f} to {r['std_paired_84_pct']:+.2f}) | "
            f"{r['apertures_changed']} |"
        )


if __name__ == "__main__":
    main()
