"""``tessphot report``: the precision report of a run and the per-star data validation."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tessphot.cli.common import EXIT_OK, add_common
from tessphot.paths import input_folder, output_folder

log = logging.getLogger("tessphot")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``report`` on the subcommands of the ``tessphot`` parser."""
    p = sub.add_parser(
        "report",
        help="precision report of a run (HTML page with figures, JSON) and data validation",
        description=(
            "Read INPUT/todo.sqlite (statuses and diagnostics of a run) and write a "
            "self-contained precision report into <output>/report: report.html with its PNG "
            "figures (viewable offline) and report.json with the numbers. Per sector, camera, "
            "CCD and cadence: rms on one hour and point-to-point scatter against Tmag with "
            "the noise model, mask size and contamination against Tmag, statuses, method "
            "switches and their reasons, a map of the CCD coloured by noise over the model, "
            "and the computing time per star. Also validates every light curve: bit flags "
            "(invalid flux, contamination outside 0-1, mask too small or large for the "
            "magnitude, noise far below or above the model) stored in the table "
            "datavalidation_raw of todo.sqlite and as DATAVAL in each light curve's header "
            "(--no-validation: the report only). 'tessphot run --all' writes it too."
        ),
    )
    add_common(p)
    p.add_argument(
        "input_folder", nargs="?", help="input folder with todo.sqlite (default $TESSPHOT_INPUT)"
    )
    p.add_argument(
        "--output", help="light-curve folder (default $TESSPHOT_OUTPUT or <input>/lightcurves)"
    )
    p.add_argument("--report-folder", help="where to write the report (default <output>/report)")
    p.add_argument(
        "--no-validation",
        dest="validate",
        action="store_false",
        help="do not write the validation flags into todo.sqlite and the light curves",
    )
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    """Run ``tessphot report``."""
    # The report loads numpy, astropy and matplotlib: imported when the command runs.
    from tessphot.report import write_report

    folder = input_folder(args.input_folder)
    report = write_report(
        folder,
        output_folder(folder, args.output),
        report_folder=Path(args.report_folder) if args.report_folder else None,
        validate=args.validate,
    )
    if report.headers_updated:
        log.info("DATAVAL updated in %d light curves", report.headers_updated)
    print(f"Precision report: {report.html}")
    return EXIT_OK
