"""``tessphot prepare``: background, pixel flags, jitter, average image and the HDF5 cube."""

from __future__ import annotations

import argparse

from tessphot import env
from tessphot.cli.common import (
    EXIT_OK,
    PRF_DIR_HELP,
    PRF_ENV,
    add_camera_ccd,
    add_common,
    load_cli_settings,
)
from tessphot.paths import input_folder
from tessphot.prf.cache import PRFArchive


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``prepare`` on the subcommands of the ``tessphot`` parser."""
    p = sub.add_parser(
        "prepare",
        help="background, pixel flags, jitter, average image and the HDF5 cube per CCD or "
        "TESScut cutout",
        description=(
            "Read every FFI of each sector/camera/CCD below the input folder (any sub-folder, "
            "gzipped or not, full or cropped) and write sectorNNN_cameraC_ccdD.hdf5 into the "
            "input folder: background-subtracted images, uncertainties, backgrounds, pixel "
            "flags, the average image, times, quality, per-frame WCS and the jitter model "
            "(docs/hdf5-format.md). Each TESScut cutout is prepared the same way, as a small "
            "region of its CCD, into sectorNNN_cameraC_ccdD_tesscut_RA_DEC_WxH.hdf5. Target "
            "pixel files (TPFs) need no prepare step (run 'tessphot todo'); their quality flags "
            "are added to the FFI cadences they overlap. Files are recognised by their headers, "
            "whatever their names; every FITS file not used gets one line saying why (a light "
            "curve, truncated, ...). A region that fails is reported in one line and the "
            "others go on. Uses catalog_sectorNNN_cameraC_ccdD.sqlite when present. A killed "
            "run resumes where it stopped. Exit code 0 when at least one region was prepared "
            "(the last line counts what was left out), 1 when nothing could be."
        ),
    )
    add_common(p)
    p.add_argument(
        "input_folder",
        nargs="?",
        help="input folder with the FFIs and TESScut cutouts (default $TESSPHOT_INPUT)",
    )
    p.add_argument("--sector", type=int, action="append", help="sector (repeatable)")
    add_camera_ccd(p)
    p.add_argument("-j", "--jobs", type=int, help="worker processes (default: all cores)")
    p.add_argument("--prf-dir", help=PRF_DIR_HELP)
    p.add_argument(
        "-o", "--overwrite", action="store_true", help="prepare again files already prepared"
    )
    p.set_defaults(func=cmd_prepare)


def cmd_prepare(args: argparse.Namespace) -> int:
    """Run ``tessphot prepare``."""
    # The prepare stage loads numpy, scipy and h5py: imported when the command runs, so
    # that the start-up of every other command (and of --help) stays fast.
    from tessphot.prepare.run import prepare_photometry

    all_settings = load_cli_settings(args)
    settings = all_settings["prepare"]
    archive = PRFArchive.from_settings(all_settings["photometry"])
    files = prepare_photometry(
        input_folder(args.input_folder),
        sectors=args.sector,
        cameras=args.camera,
        ccds=args.ccd,
        settings=settings,
        workers=args.jobs or settings.get("workers"),
        prf_dir=args.prf_dir or env.value(PRF_ENV),
        overwrite=args.overwrite,
        progress=not args.quiet,
        prf_cache=archive.cache_dir,
        prf_url=archive.url,
    )
    for path in files:
        print(f"Prepared: {path}")
    return EXIT_OK
