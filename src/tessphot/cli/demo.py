"""``tessphot demo``: simulate a small sector and run every stage on it."""

from __future__ import annotations

import argparse

from tessphot import env
from tessphot.cli.common import (
    PRF_DIR_HELP,
    PRF_ENV,
    add_common,
    load_cli_settings,
    resolve_prf_option,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``demo`` on the subcommands of the ``tessphot`` parser."""
    p = sub.add_parser(
        "demo",
        help="simulate a small sector and run every stage on it",
        description=(
            "Simulate a small sector (a 200x200 px crop of sector 1 camera 1 CCD 4 with "
            "TIC 182092046 at its centre) and run every pipeline stage that exists on it, "
            "end to end, printing what was done and where the results are. The demo works "
            "only in a new or empty folder, which it marks as its own (demo.json lists every "
            "file it made); it refuses any other folder, and data files it did not make in "
            "its own. Run again, it reuses what it made; with -o, or other [demo] settings, "
            "it removes the files it made (and nothing else) and makes them again."
        ),
    )
    add_common(p)
    p.add_argument(
        "folder",
        nargs="?",
        help="the demo's folder: new, empty or made by the demo (default: $TESSPHOT_DEMO or "
        "~/.cache/tessphot/demo)",
    )
    p.add_argument("--prf-dir", help=PRF_DIR_HELP)
    p.add_argument(
        "-o",
        "--overwrite",
        action="store_true",
        help="remove what the demo made in its folder, simulate and run everything again",
    )
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """Run ``tessphot demo``."""
    # The demo imports every stage: imported when the command runs (fast start-up).
    from tessphot.demo import run_demo

    settings = load_cli_settings(args)
    demo = settings["demo"]
    prf_dir = resolve_prf_option(
        args.prf_dir or env.value(PRF_ENV),
        settings,
        demo["sector"],
        demo["camera"],
        demo["ccd"],
        progress=not args.quiet,
    )
    return run_demo(
        args.folder,
        prf_dir=prf_dir,
        overwrite=args.overwrite,
        settings=settings,
        progress=not args.quiet,
    )
