"""``tessphot simulate``: a sector of simulated calibrated FFIs with its truth."""

from __future__ import annotations

import argparse
import os

from tessphot import env
from tessphot.cli.common import (
    EXIT_OK,
    PRF_ENV,
    add_common,
    load_cli_settings,
    resolve_prf_option,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``simulate`` on the subcommands of the ``tessphot`` parser."""
    p = sub.add_parser(
        "simulate",
        help="simulate a sector of calibrated FFIs with its truth",
        description=(
            "Write a sector of simulated SPOC calibrated FFIs "
            "(tess*-sSSSS-C-D-0120-s_ffic.fits.gz) "
            "into OUTDIR/ffi, the truth (true fluxes, positions, background, jitter) into "
            "OUTDIR/truth/truth_*.hdf5 and a TIC-like catalogue into OUTDIR/truth/tic_*.csv. "
            "Geometry is the real WCS of the sector/camera/CCD; the PRF is the real SPOC model "
            "when --prf-dir is given."
        ),
    )
    add_common(p)
    p.add_argument("outdir", help="folder to write into (created if needed)")
    p.add_argument("--sector", type=int, help="TESS sector (default 1)")
    p.add_argument("--camera", type=int, choices=(1, 2, 3, 4), help="camera (default 1)")
    p.add_argument("--ccd", type=int, choices=(1, 2, 3, 4), help="CCD (default 4)")
    p.add_argument("--cadences", type=int, help="number of cadences (default: whole sector)")
    p.add_argument(
        "--stars", type=int, help="stars with Tmag 6-17 on the region (default: 0.06 per pixel)"
    )
    p.add_argument("--bright", type=int, help="extra saturating stars of Tmag 2-6 (default 2)")
    p.add_argument(
        "--size", type=int, help="write N x N crops of the science area instead of full frames"
    )
    p.add_argument(
        "--origin",
        type=int,
        nargs=2,
        metavar=("ROW", "COL"),
        help="science-area row and column of the crop's first pixel (default centred)",
    )
    p.add_argument("--seed", type=int, help="random seed (default 42); same seed, same files")
    p.add_argument(
        "--prf-dir",
        help=f"folder of SPOC PRF models, or 'archive' for the ones downloaded from MAST into "
        f"the cache (or set ${PRF_ENV}); default: analytic TESS-like PRF",
    )
    p.add_argument("--variable-fraction", type=float, help="fraction of variable stars (0.3)")
    p.add_argument(
        "--jitter",
        choices=("random", "sector1"),
        help="pointing jitter: random walk with jumps at momentum dumps, or the real "
        "sector-1 attitude (needs --sector1-dir)",
    )
    p.add_argument(
        "--quality",
        choices=("synthetic", "sector1"),
        help="quality flags: synthetic momentum dumps, or the real sector-1 flags",
    )
    p.add_argument(
        "--sector1-dir", help="folder with the real sector-1 quality and TessVectors files"
    )
    p.add_argument(
        "--data-rel",
        type=int,
        help="DATA_REL to write (default 30); releases <= 26 get SPOC's time-stamp offset",
    )
    p.add_argument(
        "--no-gzip",
        dest="compress",
        action="store_false",
        default=None,
        help="write plain .fits instead of .fits.gz",
    )
    p.add_argument(
        "--systematics",
        action="store_true",
        default=None,
        help="add common-mode systematics to the raw flux, their truth kept (amplitudes: "
        "[simulate] systematics_* settings)",
    )
    p.add_argument(
        "--prf-differences",
        action="store_true",
        default=None,
        help="render the stars with a PRF that differs from the model (width and shape over "
        "the CCD, focus over each orbit, a halo around bright stars), the truth kept "
        "(amounts: [simulate.prf] settings)",
    )
    p.add_argument(
        "--demo-star", action="store_true", help="put TIC 182092046 at the centre of the region"
    )
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run ``tessphot simulate``."""
    # The simulator loads numpy, astropy and h5py: imported when the command runs, so that
    # the start-up of every other command (and of --help) stays fast.
    from tessphot.config.simulate import SimulationConfig
    from tessphot.evaluation.simulate.sector import simulate_sector

    settings = load_cli_settings(args)
    values = dict(settings["simulate"])
    for key in values:
        given = getattr(args, key, None)
        if given is not None:
            values[key] = given
    if args.prf_differences:
        values["prf"] = {**values["prf"], "enabled": True}
    if values.get("prf_dir") is None and env.value(PRF_ENV):
        values["prf_dir"] = env.value(PRF_ENV)
    values["prf_dir"] = resolve_prf_option(
        values.get("prf_dir"),
        settings,
        values["sector"],
        values["camera"],
        values["ccd"],
        progress=not args.quiet,
    )
    config = SimulationConfig(
        **values,
        origin=tuple(args.origin) if args.origin else None,
        demo_star=args.demo_star,
    )
    result = simulate_sector(config, args.outdir, progress=not args.quiet)
    print(f"Wrote {len(result['ffis'])} FFIs to {os.path.dirname(result['ffis'][0])}")
    print(f"Truth:   {result['truth']}")
    print(f"Catalog: {result['catalog']} ({result['n_stars']} stars)")
    return EXIT_OK
