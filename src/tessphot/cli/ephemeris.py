"""``tessphot ephemeris``: list or download TESS ephemeris tables."""

from __future__ import annotations

import argparse

from tessphot.cli.common import EXIT_OK, add_common, load_cli_settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ephemeris`` on the subcommands of the ``tessphot`` parser."""
    p = sub.add_parser(
        "ephemeris",
        help="list or download TESS ephemeris tables for the per-star barycentric times",
        description=(
            "Per-star barycentric times need TESS's position. Without arguments: list the "
            "tables and SPICE kernels found ([timing] settings, $TESSPHOT_EPHEMERIS, "
            "$TESSPHOT_SPICE_KERNELS, the cache). With sectors: download the tables covering "
            "them from JPL Horizons into the cache (do this before a run on a machine "
            "without network)."
        ),
    )
    p.add_argument("sectors", type=int, nargs="*", help="sectors to download (default: list)")
    add_common(p)
    p.set_defaults(func=cmd_ephemeris)


def cmd_ephemeris(args: argparse.Namespace) -> int:
    """Run ``tessphot ephemeris``."""
    # The timing package loads astropy and numpy: imported when the command runs (fast
    # start-up of the other commands).
    from tessphot.sectors import sector_info
    from tessphot.timing import TimingSettings, download_horizons
    from tessphot.timing.ephemeris import describe_sources

    timing = TimingSettings.from_mapping(load_cli_settings(args)["timing"])
    for sector in args.sectors:
        info = sector_info(sector)
        path = download_horizons(info.start_jd, info.end_jd, timing.cache())
        print(f"sector {sector}: {path}")
    if not args.sectors:
        report = describe_sources(timing)
        for path, start, stop in report.tables:
            print(f"{path}: JD {start:.2f}-{stop:.2f}")
        if report.spice:
            print(report.spice)
        if not report.tables and not report.spice:
            print("no ephemeris tables or SPICE kernels found")
    return EXIT_OK
