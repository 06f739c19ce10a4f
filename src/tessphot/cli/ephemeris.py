"""``tessphot ephemeris``: list, download or update TESS ephemeris tables."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tessphot.cli.common import EXIT_OK, add_common, load_cli_settings

if TYPE_CHECKING:
    from tessphot.timing.ephemeris import CoverageReport


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ephemeris`` on the subcommands of the ``tessphot`` parser."""
    p = sub.add_parser(
        "ephemeris",
        help="list, download or update TESS ephemeris tables for the per-star barycentric times",
        description=(
            "Per-star barycentric times need TESS's position. tessphot ships the JPL Horizons "
            "tables of the mission up to its release; tables in the cache and in the folders "
            "of the settings are newer and win. Without arguments: list the tables and SPICE "
            "kernels found ([timing] settings, $TESSPHOT_EPHEMERIS, $TESSPHOT_SPICE_KERNELS, "
            "the cache, the shipped tables). With sectors: download the tables covering them "
            "from JPL Horizons into the cache. With --update: download what comes after the "
            "tables found, up to now (do either before a run on a machine without network)."
        ),
    )
    p.add_argument("sectors", type=int, nargs="*", help="sectors to download (default: list)")
    p.add_argument(
        "--update",
        action="store_true",
        help="download TESS's positions from the end of the tables found up to now",
    )
    add_common(p)
    p.set_defaults(func=cmd_ephemeris)


def cmd_ephemeris(args: argparse.Namespace) -> int:
    """Run ``tessphot ephemeris``."""
    # The timing package loads astropy and numpy: imported when the command runs (fast
    # start-up of the other commands).
    from tessphot.sectors import sector_info
    from tessphot.timing import TimingSettings, download_horizons
    from tessphot.timing.ephemeris import describe_sources, update_tables

    timing = TimingSettings.from_mapping(load_cli_settings(args)["timing"])
    for sector in args.sectors:
        info = sector_info(sector)
        path = download_horizons(info.start_jd, info.end_jd, timing.cache())
        print(f"sector {sector}: {path}")
    if args.update:
        path = update_tables(timing)
        print(f"downloaded {path}" if path else "the tables found already reach today")
    if not args.sectors and not args.update:
        _list_sources(describe_sources(timing))
    return EXIT_OK


def _list_sources(report: CoverageReport) -> None:
    """Print the tables and SPICE kernels found."""
    for path, start, stop in report.tables:
        print(f"{path}: JD {start:.2f}-{stop:.2f}")
    if report.shipped:
        path, start, stop = report.shipped
        print(f"{path} (shipped with tessphot): JD {start:.2f}-{stop:.2f}")
    if report.spice:
        print(report.spice)
    if not report.tables and not report.spice and not report.shipped:
        print("no ephemeris tables or SPICE kernels found")
