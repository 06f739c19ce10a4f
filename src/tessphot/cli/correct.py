"""``tessphot correct``: corrected light curves (``FLUX_CORR``) after ``tessphot run``."""

from __future__ import annotations

import argparse
import logging

from tessphot.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    add_common,
    add_task_selection,
    load_cli_settings,
    task_constraints,
)
from tessphot.paths import input_folder

log = logging.getLogger("tessphot")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``correct`` and ``correct-mpi`` on the subcommands of the ``tessphot`` parser."""
    p = sub.add_parser(
        "correct",
        help="systematics corrections of the light curves of a run: FLUX_CORR [ppm]",
        description=(
            "Fill FLUX_CORR and FLUX_CORR_ERR (relative flux in ppm, 1e6 (flux / model - 1), "
            "in the target's own light) of the light curves of a photometry run "
            "(INPUT/todo.sqlite after 'tessphot run'). Per sector, camera, CCD, cadence and "
            "CBV area, cotrending basis vectors (CBVs) are built from the light curves "
            "themselves (quiet, correlated stars; momentum-dump spikes as their own vectors) "
            "and saved with a plot in <output>/cbv; each light curve is fitted with a prior "
            "made of its neighbours' coefficients, so that its own signals are kept. "
            "FLUX_RAW is left as it is; the corrector and its coefficients go into the "
            "header, outliers into QUALITY, the results into the table diagnostics_corr of "
            "todo.sqlite. Corrections already made are not redone unless -o; a killed run "
            "goes on where it stopped. Exit code 0 when every light curve was corrected, 1 "
            "when one failed."
        ),
    )
    _options(p)
    p.add_argument(
        "-j",
        "--workers",
        type=int,
        metavar="N",
        help="fit and write the light curves in N processes (default: in this one)",
    )
    p.set_defaults(func=cmd_correct, parser=p)

    p = sub.add_parser(
        "correct-mpi",
        help="'tessphot correct' as an MPI job: mpiexec -n N tessphot correct-mpi ...",
        description=(
            "The corrections of 'tessphot correct' over MPI (mpi4py; pip install "
            "'tessphot[mpi]'): start it with mpiexec -n N (N >= 2). Rank 0 reads the light "
            "curves, builds the CBVs and saves every result as it arrives; the other ranks fit "
            "and write the light curves. Same options as 'tessphot correct'."
        ),
    )
    _options(p)
    p.set_defaults(func=cmd_correct_mpi, parser=p)


def _options(p: argparse.ArgumentParser) -> None:
    """Add the options of ``tessphot correct`` and ``tessphot correct-mpi``."""
    add_common(p)
    p.add_argument(
        "input_folder", nargs="?", help="input folder with todo.sqlite (default $TESSPHOT_INPUT)"
    )
    p.add_argument(
        "--output", help="light-curve folder (default $TESSPHOT_OUTPUT or <input>/lightcurves)"
    )
    p.add_argument(
        "-o", "--overwrite", action="store_true", help="redo corrections and CBVs already made"
    )
    add_task_selection(p)
    p.add_argument("--cbv-area", type=int, action="append", help="CBV area, e.g. 114 (repeatable)")
    p.add_argument(
        "--cbv-file",
        metavar="FILE",
        help="use these CBVs (the sector's SPOC *_cbv.fits from MAST, or a tessphot CBV file) "
        "instead of making them from the run's light curves: for stars on their own "
        "(cutouts, TPFs)",
    )


def cmd_correct(args: argparse.Namespace) -> int:
    """Run ``tessphot correct``."""
    if args.workers is not None and args.workers < 1:
        args.parser.error(f"-j/--workers must be at least 1: {args.workers}")
    return _correct(args, workers=args.workers)


def cmd_correct_mpi(args: argparse.Namespace) -> int:
    """Run ``tessphot correct-mpi``: rank 0 leads, the other ranks fit and write."""
    # mpi4py is an optional dependency, loaded only by this command.
    from mpi4py import MPI
    from mpi4py.futures import MPICommExecutor

    with MPICommExecutor(MPI.COMM_WORLD, root=0) as executor:
        if executor is None:  # a worker rank: it has served the jobs
            return EXIT_OK
        return _correct(args, executor=executor)


def _correct(args: argparse.Namespace, **parallel) -> int:
    """Do the corrections of ``tessphot correct``/``correct-mpi``."""
    # The corrections load numpy, scipy and astropy: imported when the command runs.
    from tessphot.correct.stage import run_corrections

    settings = load_cli_settings(args)
    folder = input_folder(args.input_folder)
    report = run_corrections(
        folder,
        args.output,
        constraints={**task_constraints(args), "cbv_area": args.cbv_area},
        overwrite=args.overwrite,
        settings=(
            {**settings["correct"], "cbv_file": args.cbv_file}
            if args.cbv_file
            else settings["correct"]
        ),
        **parallel,
    )
    counts = ", ".join(f"{name} {n}" for name, n in sorted(report.counts.items())) or "none"
    log.info("Corrected in this run: %s", counts)
    for path in report.cbv_files:
        log.info("CBVs: %s", path)
    for line in report.errors:
        log.error("%s", line)
    totals = ", ".join(f"{name} {n}" for name, n in sorted(report.totals.items()))
    print(f"Corrections: {totals}")
    return EXIT_ERROR if report.errors else EXIT_OK
