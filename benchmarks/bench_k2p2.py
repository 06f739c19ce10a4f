"""Speed of the K2P2 mask finder on small stamps (run by hand).

``python benchmarks/bench_k2p2.py [--repeat 200]``

Target (issue 5): a 15x15 stamp with two stars in under 10 ms (the best of the repeats, so
that a loaded machine does not decide). This used to be a timed unit test; speed targets
live here instead, where a busy CI machine cannot fail them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tessphot.photometry.k2p2 import k2p2_masks

#: Target: the best time for one 15x15 stamp [s].
TARGET_SECONDS = 0.01


def _star(shape, row, col, amplitude, sigma=1.0):
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return amplitude * np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * sigma**2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=200, help="timed calls")
    args = parser.parse_args()
    shape = (15, 15)
    sky = np.random.default_rng(1).normal(0.0, 1.0, shape)
    image = sky + _star(shape, 4, 4, 500) + _star(shape, 10, 11, 300)
    catalog = {"row": [4.0, 10.0], "column": [4.0, 11.0], "tmag": [10.0, 10.5]}
    k2p2_masks(image, catalog)  # warm-up (imports, caches)
    durations = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        k2p2_masks(image, catalog)
        durations.append(time.perf_counter() - start)
    best, median = min(durations), float(np.median(durations))
    verdict = "PASS" if best < TARGET_SECONDS else "FAIL"
    print(
        f"K2P2 on a 15x15 stamp: best {best * 1e3:.2f} ms, median {median * 1e3:.2f} ms "
        f"over {args.repeat} calls (target best < {TARGET_SECONDS * 1e3:.0f} ms: {verdict})"
    )


if __name__ == "__main__":
    main()
