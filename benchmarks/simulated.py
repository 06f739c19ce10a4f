"""The simulated sector a benchmark runs on: its command-line options, made once and kept
between runs.

Only :func:`ensure_simulated` imports tessphot: the options alone can be given to a process
that times another checkout's code (``bench_photometry.py --against``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def add_sector_arguments(
    parser: argparse.ArgumentParser,
    name: str,
    *,
    size: int,
    cadences: int,
    stars: int | None,
    bright: int,
    seed: int,
) -> None:
    """Options of the simulated sector (``--folder`` defaults to ``<tmp>/<name>``)."""
    parser.add_argument(
        "--folder",
        default=os.path.join(tempfile.gettempdir(), name),
        help="where the simulated data are kept between runs",
    )
    parser.add_argument("--size", type=int, default=size, help="crop size [px]")
    parser.add_argument("--cadences", type=int, default=cadences, help="cadences")
    parser.add_argument(
        "--stars", type=int, default=stars, help="stars of Tmag 6-17 (default 0.06 per px)"
    )
    parser.add_argument("--bright", type=int, default=bright, help="saturated Tmag 2-6 stars")
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--prf-dir", default=os.environ.get("TESSPHOT_PRF_DIR"))


def ensure_simulated(args: argparse.Namespace, **overrides: Any) -> Path:
    """Simulate the sector of the options into ``--folder`` unless it already holds FFIs;
    returns the folder.

    ``overrides`` are further :class:`SimulationConfig` fields (e.g. ``origin``,
    ``extra_stars``); a folder that holds FFIs is kept as it is, whatever they say.
    """
    from tessphot.config.simulate import SimulationConfig
    from tessphot.evaluation.simulate.sector import simulate_sector
    from tessphot.io import find_ffis

    folder = Path(args.folder)
    if folder.is_dir() and find_ffis(folder):
        return folder
    config = SimulationConfig(
        **{
            "size": args.size,
            "cadences": args.cadences,
            "stars": args.stars,
            "bright": args.bright,
            "seed": args.seed,
            "prf_dir": args.prf_dir,
            **overrides,
        }
    )
    began = time.perf_counter()
    simulate_sector(config, folder, progress=True)
    print(
        f"simulated {config.cadences} cadences of {config.size}x{config.size} px in "
        f"{time.perf_counter() - began:.0f} s ({'SPOC' if config.prf_dir else 'analytic'} PRF)"
    )
    return folder
