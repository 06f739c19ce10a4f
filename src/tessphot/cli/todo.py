"""``tessphot todo``: build todo.sqlite, the list of photometry tasks."""

from __future__ import annotations

import argparse

from tessphot.cli.common import EXIT_OK, add_camera_ccd, add_common, load_cli_settings
from tessphot.paths import input_folder


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``todo`` on the subcommands of the ``tessphot`` parser."""
    p = sub.add_parser(
        "todo",
        help="build todo.sqlite, the list of photometry tasks (FFI, TPF and TESScut targets)",
        description=(
            "Write todo.sqlite into the input folder: one task per catalog star brighter than "
            "the faint limit (setting [todo] faint_limit, default Tmag 15) on the pixels of "
            "each prepared-data file (sectorNNN_cameraC_ccdD.hdf5 of FFIs, and "
            "..._tesscut_RA_DEC_WxH.hdf5 of TESScut cutouts), plus the target of each target "
            "pixel file (TPF) anywhere below the input folder and the catalog stars on its "
            "pixels (TPFs need no prepare step). Tasks are ordered brightest first, with "
            "camera, CCD, cadence, data source (ffi or tpf), co-trending area and method "
            "(NULL: automatic; forced by todolist-methods.dat; todolist-exclude.dat leaves "
            "targets out). To an existing todo.sqlite the targets of new files are added; its "
            "tasks and results stay as they are (-o rebuilds it)."
        ),
    )
    add_common(p)
    p.add_argument(
        "input_folder",
        nargs="?",
        help="input folder with the catalogs, prepared files and TPFs (default $TESSPHOT_INPUT)",
    )
    p.add_argument(
        "-o",
        "--overwrite",
        action="store_true",
        help="rebuild todo.sqlite from scratch (every result is forgotten)",
    )
    p.add_argument("--sector", type=int, action="append", help="sector (repeatable)")
    add_camera_ccd(p)
    p.set_defaults(func=cmd_todo)


def cmd_todo(args: argparse.Namespace) -> int:
    """Run ``tessphot todo``."""
    # The todo stage loads numpy and h5py: imported when the command runs (fast start-up).
    from tessphot.todo import make_todo

    settings = load_cli_settings(args)["todo"]
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
