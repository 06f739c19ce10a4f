"""The ``tessphot`` command line: one subcommand per stage.

Run ``tessphot --help`` or ``tessphot COMMAND --help`` for the options.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from tessphot.io.errors import TessphotError
from tessphot.logs import setup_logging
from tessphot.settings import SettingsError, load_settings
from tessphot.version import __version__

log = logging.getLogger("tessphot")

#: Exit codes.
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
#: Environment variable naming a folder of SPOC PRF models.
PRF_ENV = "TESSPHOT_PRF_DIR"
#: The archive, cache and URL variables of :mod:`tessphot.prf_download` (not imported here:
#: it loads astropy and scipy, which ``--help`` does not need).
PRF_URL = "https://archive.stsci.edu/missions/tess/models/prf_fitsfiles/"
PRF_CACHE_ENV, PRF_URL_ENV = "TESSPHOT_PRF_CACHE", "TESSPHOT_PRF_URL"
#: Help of the --prf-dir options.
PRF_DIR_HELP = (
    f"folder of SPOC PRF models, or 'archive' for the ones downloaded from MAST into the "
    f"cache ('tessphot prf-download'; [photometry] prf_cache) (or set ${PRF_ENV})"
)
#: Cadences [s] the pipeline knows.
CADENCES = (20, 120, 200, 600, 1800)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", "--debug", action="store_true", help="print debug messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    parser.add_argument(
        "--settings",
        metavar="FILE",
        help="TOML settings file overriding the defaults (or set $TESSPHOT_SETTINGS)",
    )


def _camera_ccd(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--camera",
        type=int,
        choices=(1, 2, 3, 4),
        action="append",
        help="camera to process (repeatable; default all)",
    )
    parser.add_argument(
        "--ccd",
        type=int,
        choices=(1, 2, 3, 4),
        action="append",
        help="CCD to process (repeatable; default all)",
    )


def _add_simulate(sub) -> None:
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
    _common(p)
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
        "--demo-star", action="store_true", help="put TIC 182092046 at the centre of the region"
    )
    p.set_defaults(func=cmd_simulate)


def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="simulate a small sector and run every stage on it",
        description=(
            "Simulate a small sector (a 200x200 px crop of sector 1 camera 1 CCD 4 with "
            "TIC 182092046 at its centre) and run every pipeline stage that exists on it, "
            "end to end, printing what was done and where the results are."
        ),
    )
    _common(p)
    p.add_argument(
        "folder", nargs="?", help="demo folder (default: $TESSPHOT_DEMO or ~/.cache/tessphot/demo)"
    )
    p.add_argument("--prf-dir", help=PRF_DIR_HELP)
    p.add_argument("-o", "--overwrite", action="store_true", help="simulate the data again")
    p.set_defaults(func=cmd_demo)


def _add_stages(sub) -> None:
    """The pipeline's stages: catalog, prepare, todo and run."""
    from tessphot.catalog.cli import add_catalog_parser

    add_catalog_parser(sub, common=_common, camera_ccd=_camera_ccd)

    p = sub.add_parser(
        "prepare",
        help="background, pixel flags, jitter, average image and the HDF5 cube per CCD",
        description=(
            "Read every FFI of each sector/camera/CCD below the input folder (any sub-folder, "
            "gzipped or not, full or cropped) and write sectorNNN_cameraC_ccdD.hdf5 into the "
            "input folder: background-subtracted images, uncertainties, backgrounds, pixel "
            "flags, the average image, times, quality, per-frame WCS and the jitter model "
            "(docs/hdf5-format.md). Uses catalog_sectorNNN_cameraC_ccdD.sqlite when present. "
            "A killed run resumes where it stopped."
        ),
    )
    _common(p)
    p.add_argument("input_folder", nargs="?", help="input folder (default $TESSPHOT_INPUT)")
    p.add_argument("--sector", type=int, action="append", help="sector (repeatable)")
    _camera_ccd(p)
    p.add_argument("-j", "--jobs", type=int, help="worker processes (default: all cores)")
    p.add_argument("--prf-dir", help=PRF_DIR_HELP)
    p.add_argument("-o", "--overwrite", action="store_true", help="redo finished files")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser(
        "todo",
        help="build todo.sqlite, the list of photometry tasks",
        description=(
            "Write todo.sqlite into the input folder: one task per catalog star brighter than "
            "the faint limit (setting [todo] faint_limit, default Tmag 15) on the pixels of "
            "each prepared-data file sectorNNN_cameraC_ccdD.hdf5, brightest first, with its "
            "camera, CCD, cadence, co-trending area and method (NULL: automatic; forced by "
            "todolist-methods.dat; todolist-exclude.dat leaves targets out). An existing file "
            "is kept unless -o."
        ),
    )
    _common(p)
    p.add_argument("input_folder", nargs="?", help="input folder (default $TESSPHOT_INPUT)")
    p.add_argument("-o", "--overwrite", action="store_true", help="overwrite todo.sqlite")
    p.add_argument("--sector", type=int, action="append", help="sector (repeatable)")
    _camera_ccd(p)
    p.set_defaults(func=cmd_todo)

    p = sub.add_parser(
        "run",
        help="photometry of the tasks of todo.sqlite: light curves and diagnostics",
        description=(
            "Aperture photometry of the tasks of INPUT/todo.sqlite: light curves in the TASOC "
            "format under the output folder (c{cadence}/{TIC[:5]}/tess{TIC}-s{sector}-..."
            "-tasoc_lc.fits.gz), diagnostics and statuses in todo.sqlite. Give --all, "
            "--starid, --priority or --random. Tasks already done are not redone unless -o. "
            "Exit code 0 when every task run ended OK, WARNING or SKIPPED, 1 when a task "
            "failed or none matched. Without an input folder and $TESSPHOT_INPUT the demo "
            "data are used (simulated and prepared first if needed)."
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
    p.set_defaults(func=cmd_run, parser=p)

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
    p.set_defaults(func=cmd_run_mpi, parser=p)


def _run_options(p: argparse.ArgumentParser) -> None:
    """The options of ``tessphot run`` and ``tessphot run-mpi``."""
    _common(p)
    p.add_argument(
        "input_folder", nargs="?", help="input folder (default $TESSPHOT_INPUT, else the demo data)"
    )
    p.add_argument("-o", "--overwrite", action="store_true", help="redo finished tasks")
    p.add_argument("-p", "--plot", action="store_true", help="write diagnostic plots")
    p.add_argument(
        "-m",
        "--method",
        choices=("aperture", "psf", "linpsf", "halo"),
        help="force a photometry method",
    )
    p.add_argument("--all", action="store_true", help="run all matching tasks")
    p.add_argument("-r", "--random", action="store_true", help="run a random task")
    p.add_argument("--priority", type=int, action="append", help="task priority (repeatable)")
    p.add_argument("--starid", type=int, action="append", help="TIC ID (repeatable)")
    p.add_argument("--sector", type=int, action="append", help="sector (repeatable)")
    p.add_argument(
        "--cadence", type=int, choices=CADENCES, action="append", help="cadence [s] (repeatable)"
    )
    _camera_ccd(p)
    p.add_argument("--datasource", choices=("ffi", "tpf"), help="data source")
    p.add_argument("--tmag_min", type=float, help="brightest Tmag to process")
    p.add_argument("--tmag_max", type=float, help="faintest Tmag to process")
    p.add_argument(
        "--version", type=int, default=1, help="processing version of the output (default 1)"
    )
    p.add_argument(
        "--output", help="light-curve folder (default $TESSPHOT_OUTPUT or <input>/lightcurves)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tessphot`` command."""
    parser = argparse.ArgumentParser(
        prog="tessphot",
        description=(
            "tessphot turns TESS full-frame images and target pixel files into calibrated "
            "light curves of every star. Stages: catalog -> prepare -> todo -> run. "
            "Try 'tessphot demo' first."
        ),
    )
    parser.add_argument("--version", action="version", version=f"tessphot {__version__}")
    # The common options are accepted before the command too (tessphot -q simulate ...).
    parser.add_argument(
        "-d", "--debug", dest="global_debug", action="store_true", help="print debug messages"
    )
    parser.add_argument(
        "-q",
        "--quiet",
        dest="global_quiet",
        action="store_true",
        help="print only warnings and errors",
    )
    parser.add_argument(
        "--settings", dest="global_settings", metavar="FILE", help="TOML settings file"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_simulate(sub)
    _add_demo(sub)
    _add_stages(sub)
    _add_ephemeris(sub)
    _add_prf_download(sub)
    return parser


def _add_ephemeris(sub) -> None:
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
    _common(p)
    p.set_defaults(func=cmd_ephemeris)


def _add_prf_download(sub) -> None:
    p = sub.add_parser(
        "prf-download",
        help="download the SPOC PRF models of a sector's cameras and CCDs from MAST",
        description=(
            "Download the real SPOC PRF models (25 FITS files per CCD) valid for a sector "
            f"from the MAST archive ({PRF_URL}; sub-folders start_s0001/ for sectors 1-3 and "
            "start_s0004/ for sectors 4 on) into the cache, laid out as "
            "<cache>/Sectors1_2_3/camC_ccdD/ and <cache>/Sectors4+/camC_ccdD/. Files already "
            "in the cache are kept (an interrupted download resumes). Afterwards give the "
            "cache as --prf-dir, or --prf-dir archive (or [photometry] prf_dir = 'archive'), "
            "which also downloads what is missing on the fly. Do this ahead of a run on a "
            "machine without network."
        ),
    )
    _common(p)
    p.add_argument(
        "--sector",
        type=int,
        action="append",
        required=True,
        help="sector whose PRF models to download (repeatable)",
    )
    _camera_ccd(p)
    p.add_argument(
        "--cache",
        metavar="DIR",
        help=f"the cache folder (default [photometry] prf_cache, ${PRF_CACHE_ENV}, "
        "else ~/.cache/tessphot/prf)",
    )
    p.add_argument(
        "--url",
        help=f"the archive's folder of PRF models, e.g. a mirror (default [photometry] prf_url, "
        f"${PRF_URL_ENV}, else {PRF_URL})",
    )
    p.set_defaults(func=cmd_prf_download)


# ----------------------------------------------------------------------------------------
def _resolve_prf_dir(
    prf_dir: str | None, settings: dict, sector: int, camera: int, ccd: int, progress: bool
) -> str | None:
    """A ``--prf-dir`` value with ``archive`` replaced by the download cache of the
    ``[photometry] prf_cache``/``prf_url`` settings (downloading the models if missing)."""
    from tessphot.prf_download import PRFArchive, resolve_prf_dir

    archive = PRFArchive.from_settings(settings["photometry"])
    return resolve_prf_dir(
        prf_dir,
        sector,
        camera,
        ccd,
        cache_dir=archive.cache_dir,
        url=archive.url,
        progress=progress,
    )


def cmd_prf_download(args: argparse.Namespace) -> int:
    """Run ``tessphot prf-download``."""
    from tessphot.prf import prf_epoch
    from tessphot.prf_download import PRFArchive, download_prf

    configured = PRFArchive.from_settings(load_settings(args.settings)["photometry"])
    archive = PRFArchive(
        url=args.url or configured.url, cache_dir=args.cache or configured.cache_dir
    )
    cache = archive.cache()
    epochs = sorted({prf_epoch(s): s for s in args.sector}.items(), key=lambda e: e[1])
    for epoch, sector in epochs:
        for camera in sorted(set(args.camera or (1, 2, 3, 4))):
            for ccd in sorted(set(args.ccd or (1, 2, 3, 4))):
                folder = download_prf(
                    sector, camera, ccd, cache, url=archive.base_url(), progress=not args.quiet
                )
                n = sum(1 for _ in folder.glob("*prf*.fits"))
                print(f"{epoch} camera {camera} CCD {ccd}: {n} files in {folder}")
    if cache == configured.cache():
        also = "or --prf-dir archive"
    else:
        also = f"or --prf-dir archive with ${PRF_CACHE_ENV}={cache}"
    print(f"SPOC PRF models in {cache}: use --prf-dir {cache} ({also})")
    return EXIT_OK


def cmd_ephemeris(args: argparse.Namespace) -> int:
    """Run ``tessphot ephemeris``."""
    from tessphot.sectors import sector_info
    from tessphot.timing import TimingSettings, download_horizons
    from tessphot.timing.ephemeris import describe_sources

    timing = TimingSettings.from_mapping(load_settings(args.settings)["timing"])
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


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run ``tessphot simulate``."""
    from tessphot.simulate.config import SimulationConfig
    from tessphot.simulate.sector import simulate_sector

    settings = load_settings(args.settings)
    values = dict(settings["simulate"])
    for key in values:
        given = getattr(args, key, None)
        if given is not None:
            values[key] = given
    if values.get("prf_dir") is None and os.environ.get(PRF_ENV):
        values["prf_dir"] = os.environ[PRF_ENV]
    values["prf_dir"] = _resolve_prf_dir(
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


def cmd_demo(args: argparse.Namespace) -> int:
    """Run ``tessphot demo``."""
    from tessphot.demo import run_demo

    settings = load_settings(args.settings)
    demo = settings["demo"]
    prf_dir = _resolve_prf_dir(
        args.prf_dir or os.environ.get(PRF_ENV),
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


def cmd_prepare(args: argparse.Namespace) -> int:
    """Run ``tessphot prepare``."""
    from tessphot.paths import input_folder
    from tessphot.prepare.run import prepare_photometry
    from tessphot.prf_download import PRFArchive

    all_settings = load_settings(args.settings)
    settings = all_settings["prepare"]
    archive = PRFArchive.from_settings(all_settings["photometry"])
    files = prepare_photometry(
        input_folder(args.input_folder),
        sectors=args.sector,
        cameras=args.camera,
        ccds=args.ccd,
        settings=settings,
        workers=args.jobs or settings.get("workers"),
        prf_dir=args.prf_dir or os.environ.get(PRF_ENV),
        overwrite=args.overwrite,
        progress=not args.quiet,
        prf_cache=archive.cache_dir,
        prf_url=archive.url,
    )
    for path in files:
        print(f"Prepared: {path}")
    return EXIT_OK


def cmd_todo(args: argparse.Namespace) -> int:
    """Run ``tessphot todo``."""
    from tessphot.paths import input_folder
    from tessphot.todo import make_todo

    settings = load_settings(args.settings)["todo"]
    path = make_todo(
        input_folder(args.input_folder),
        sectors=args.sector,
        cameras=args.camera,
        ccds=args.ccd,
        overwrite=args.overwrite,
        settings=settings,
    )
    print(f"Todo list: {path}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run ``tessphot run`` (uses the demo data when no input folder is known)."""
    if args.workers is not None and args.workers < 1:
        args.parser.error(f"-j/--workers must be at least 1: {args.workers}")
    return _run(args, workers=args.workers)


def cmd_run_mpi(args: argparse.Namespace) -> int:
    """Run ``tessphot run-mpi``: rank 0 is the master, the other ranks are workers."""
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


def _run(args: argparse.Namespace, **parallel: Any) -> int:
    """The photometry of ``tessphot run``/``run-mpi``; ``parallel``: ``workers`` or
    ``pool`` for :func:`tessphot.runner.loop.run_photometry`."""
    from tessphot.paths import input_folder, output_folder
    from tessphot.runner import NoTaskError, format_summary, run_photometry

    if not (args.all or args.starid or args.priority or args.random):
        args.parser.error("give one of --all, --starid, --priority or --random")
    settings = load_settings(args.settings)
    if args.input_folder is None and not os.environ.get("TESSPHOT_INPUT"):
        from tessphot.demo import ensure_demo_ready

        folder = ensure_demo_ready(settings=settings, progress=not args.quiet)
        log.info(
            "No input folder given and TESSPHOT_INPUT not set: using the demo data in %s", folder
        )
    else:
        folder = input_folder(args.input_folder)
    constraints = {
        "priority": args.priority,
        "starid": args.starid,
        "sector": args.sector,
        "camera": args.camera,
        "ccd": args.ccd,
        "cadence": args.cadence,
        "datasource": args.datasource,
        "tmag_min": args.tmag_min,
        "tmag_max": args.tmag_max,
    }
    try:
        report = run_photometry(
            folder,
            output_folder(folder, args.output),
            constraints=constraints,
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
        print(f"tessphot {args.command}: {err}", file=sys.stderr)
        return EXIT_ERROR
    print(format_summary(report))
    return EXIT_ERROR if report.failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tessphot`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.debug = args.debug or args.global_debug
    args.quiet = args.quiet or args.global_quiet
    args.settings = args.settings or args.global_settings
    setup_logging(debug=args.debug, quiet=args.quiet)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (SettingsError, TessphotError, ValueError, OSError, RuntimeError) as err:
        log.debug("Traceback:", exc_info=True)
        print(f"tessphot {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"tessphot {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
