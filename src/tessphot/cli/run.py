"""``tessphot run`` and ``tessphot run-mpi``: the photometry of the tasks of todo.sqlite."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessphot import env
from tessphot.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    add_common,
    add_task_selection,
    command_name,
    load_cli_settings,
    task_constraints,
)
from tessphot.paths import input_folder, output_folder

if TYPE_CHECKING:
    from tessphot.demo.folder import DemoFolder

log = logging.getLogger("tessphot")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``run`` and ``run-mpi`` on the subcommands of the ``tessphot`` parser."""
    p = sub.add_parser(
        "run",
        help="photometry of the tasks of todo.sqlite (aperture, linpsf, psf or halo): light "
        "curves and diagnostics",
        description=(
            "Photometry of the tasks of INPUT/todo.sqlite (FFI, TESScut and TPF targets) with "
            "the task's method: aperture (default), linpsf (linear PSF fit), psf (PSF fit "
            "with positions) or halo (saturated stars); -m forces one. Light curves in the "
            "TASOC format under the output folder (c{cadence}/{TIC[:5]}/tess{TIC}-s{sector}-"
            "...-tasoc_lc.fits.gz; read them with tessphot.read_lightcurve), diagnostics and "
            "statuses in todo.sqlite, summary.json in the output folder. Give --all, "
            "--starid, --priority or --random. Tasks already done are not redone unless -o. "
            "The run ends with the status counts, the reason of each failure and the output "
            "folder. Exit code 0 when every task run ended OK, WARNING or SKIPPED, 1 when a "
            "task failed or none matched, 2 for a usage error. Without an input folder and "
            "$TESSPHOT_INPUT the demo data are used (simulated and prepared first if needed)."
        ),
    )
    _run_options(p)
    p.add_argument(
        "-j",
        "--workers",
        type=int,
        metavar="N",
        help="run the tasks in N worker processes (default: one after the other in this process)",
    )
    p.set_defaults(func=cmd_run, parser=p, all_by_default=False)

    p = sub.add_parser(
        "run-mpi",
        help="'tessphot run' as an MPI job: mpiexec -n N tessphot run-mpi ...",
        description=(
            "The photometry of 'tessphot run' over MPI (mpi4py; pip install 'tessphot[mpi]'): "
            "start it with mpiexec -n N (N >= 2). Rank 0 owns todo.sqlite, hands out the "
            "tasks and saves every result as it arrives; ranks 1 to N-1 do the photometry. "
            "Same options as 'tessphot run'. A rank that dies ends the job; rerun it to do "
            "the rest (results saved are kept and not redone)."
        ),
    )
    _run_options(p)
    p.set_defaults(func=cmd_run_mpi, parser=p, all_by_default=False)


def _run_options(p: argparse.ArgumentParser) -> None:
    """Add the options of ``tessphot run`` and ``tessphot run-mpi``."""
    add_common(p)
    p.add_argument(
        "input_folder", nargs="?", help="input folder (default $TESSPHOT_INPUT, else the demo data)"
    )
    p.add_argument("-o", "--overwrite", action="store_true", help="redo finished tasks")
    p.add_argument("-p", "--plot", action="store_true", help="write diagnostic plots")
    p.add_argument(
        "-m",
        "--method",
        choices=("aperture", "psf", "linpsf", "halo"),
        help="force a photometry method for every task (default: the task's, else aperture "
        "with an automatic switch for bright stars spilling off the data)",
    )
    p.add_argument("--all", action="store_true", help="run all matching tasks")
    p.add_argument("-r", "--random", action="store_true", help="run a random task")
    add_task_selection(p)
    p.add_argument(
        "--version", type=int, default=1, help="processing version of the output (default 1)"
    )
    p.add_argument(
        "--output", help="light-curve folder (default $TESSPHOT_OUTPUT or <input>/lightcurves)"
    )


def cmd_run(args: argparse.Namespace) -> int:
    """Run ``tessphot run`` (uses the demo data when no input folder is known)."""
    if args.workers is not None and args.workers < 1:
        args.parser.error(f"-j/--workers must be at least 1: {args.workers}")
    return _run(args, workers=args.workers)


def cmd_run_mpi(args: argparse.Namespace) -> int:
    """Run ``tessphot run-mpi``: rank 0 is the master, the other ranks are workers."""
    # mpi4py is an optional dependency, loaded only by this command.
    from tessphot.runner.mpi import MASTER_RANK, MPIPool, mpi_worker, world

    comm = world()
    if comm.Get_rank() != MASTER_RANK:
        mpi_worker(comm, debug=args.debug)
        return EXIT_OK
    pool = MPIPool(comm)
    try:
        return _run(args, pool=pool)
    finally:
        pool.close()


def _input_folder(args: argparse.Namespace, settings: dict) -> tuple[Path, DemoFolder | None]:
    """The input folder of a run: the one given, ``$TESSPHOT_INPUT``, else the demo data.

    Returns
    -------
    tuple
        The folder, and the demo's folder (whose manifest records the run's files) when the
        demo data are used, else None.
    """
    if args.input_folder is None and not env.value(env.INPUT):
        from tessphot.demo.run import ensure_demo_ready

        demo = ensure_demo_ready(settings=settings, progress=not args.quiet)
        log.info(
            "No input folder given and TESSPHOT_INPUT not set: using the demo data in %s",
            demo.path,
        )
        return demo.path, demo
    return input_folder(args.input_folder), None


def _run(args: argparse.Namespace, **parallel: Any) -> int:
    """Do the photometry of ``tessphot run``/``run-mpi``.

    ``parallel``: ``workers`` or ``pool`` for :func:`tessphot.runner.run_photometry`.
    """
    # The photometry loads numpy, scipy, astropy and h5py: imported when the command runs,
    # so that the start-up of every other command (and of --help) stays fast.
    from tessphot.runner import NoTaskError, format_summary, run_photometry

    if not (args.all or args.starid or args.priority or args.random):
        if not args.all_by_default:
            args.parser.error("give one of --all, --starid, --priority or --random")
        args.all = True
    settings = load_cli_settings(args)
    folder, demo = _input_folder(args, settings)
    try:
        with demo.recording() if demo is not None else contextlib.nullcontext():
            report = run_photometry(
                folder,
                output_folder(folder, args.output),
                constraints=task_constraints(args),
                run_all=args.all,
                random=args.random,
                method=args.method,
                overwrite=args.overwrite,
                plot=args.plot,
                version=args.version,
                settings=settings["photometry"],
                timing=settings["timing"],
                progress=not args.quiet,
                **parallel,
            )
    except NoTaskError as err:
        print(f"{command_name(args)}: {err}", file=sys.stderr)
        return EXIT_ERROR
    print(format_summary(report))
    if args.all:
        with demo.recording() if demo is not None else contextlib.nullcontext():
            _precision_report(folder, report.output or output_folder(folder, args.output))
    return EXIT_ERROR if report.failed else EXIT_OK


def _precision_report(folder: Path, output: Path) -> None:
    """Write the precision report of a whole run (a failure is one WARNING, not the run's)."""
    from tessphot.report import write_report_or_warn

    page = write_report_or_warn(folder, output)
    if page is not None:
        print(f"Precision report: {page}")
