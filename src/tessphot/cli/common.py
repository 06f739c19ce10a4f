"""What every ``tessphot`` command shares: exit codes, common options, settings, PRF folder.

The settings are loaded here only (:func:`load_cli_settings`), so that the commands switch
to another way of loading them in one place.
"""

from __future__ import annotations

import argparse
from typing import Any

from tessphot import env
from tessphot.config import SettingsError, load_settings
from tessphot.prf.cache import PRFArchive

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "PRF_DIR_HELP",
    "PRF_ENV",
    "SettingsError",
    "add_camera_ccd",
    "add_common",
    "command_name",
    "load_cli_settings",
    "resolve_prf_option",
]

#: Exit codes.
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
#: Exit code after Ctrl-C.
EXIT_INTERRUPTED = 130
#: Environment variable naming a folder of SPOC PRF models.
PRF_ENV = env.PRF_DIR
#: Help of the --prf-dir options.
PRF_DIR_HELP = (
    f"folder of SPOC PRF models, or 'archive' for the ones downloaded from MAST into the "
    f"cache ('tessphot prf-download'; [photometry] prf_cache) (or set ${PRF_ENV})"
)


def add_common(parser: argparse.ArgumentParser) -> None:
    """Add the options every command has: ``-d/--debug``, ``-q/--quiet``, ``--settings``."""
    parser.add_argument("-d", "--debug", action="store_true", help="print debug messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    parser.add_argument(
        "--settings",
        metavar="FILE",
        help="TOML settings file overriding the defaults (or set $TESSPHOT_SETTINGS)",
    )


#: Cadences [s] the pipeline knows.
CADENCES = (20, 120, 200, 600, 1800)


def add_task_selection(parser: argparse.ArgumentParser) -> None:
    """Add the task filters: priority, TIC, sector, cadence, camera, CCD, data source, Tmag."""
    parser.add_argument("--priority", type=int, action="append", help="task priority (repeatable)")
    parser.add_argument("--starid", type=int, action="append", help="TIC ID (repeatable)")
    parser.add_argument("--sector", type=int, action="append", help="sector (repeatable)")
    parser.add_argument(
        "--cadence", type=int, choices=CADENCES, action="append", help="cadence [s] (repeatable)"
    )
    add_camera_ccd(parser)
    parser.add_argument(
        "--datasource",
        choices=("ffi", "tpf"),
        help="data source: ffi (FFIs and TESScut cutouts) or tpf (target pixel files)",
    )
    parser.add_argument("--tmag_min", type=float, help="brightest Tmag to process")
    parser.add_argument("--tmag_max", type=float, help="faintest Tmag to process")


def task_constraints(args: argparse.Namespace) -> dict:
    """The task selection of the options of :func:`add_task_selection` (None: any)."""
    names = ("priority", "starid", "sector", "camera", "ccd", "cadence", "datasource")
    return {name: getattr(args, name) for name in (*names, "tmag_min", "tmag_max")}


def add_camera_ccd(parser: argparse.ArgumentParser) -> None:
    """Add the repeatable ``--camera`` and ``--ccd`` filters."""
    for option, name in (("--camera", "camera"), ("--ccd", "CCD")):
        parser.add_argument(
            option,
            type=int,
            choices=(1, 2, 3, 4),
            action="append",
            help=f"{name} to process (repeatable; default all)",
        )


def command_name(args: argparse.Namespace) -> str:
    """The command's name in messages: ``tessphot run``, or the original script's name."""
    return getattr(args, "script", None) or f"tessphot {args.command}"


def load_cli_settings(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The settings of a command: the defaults merged with ``--settings`` (or the default file).

    Raises
    ------
    SettingsError
        When the settings file cannot be used.
    """
    return load_settings(args.settings)


def resolve_prf_option(
    prf_dir: str | None,
    settings: dict,
    sector: int,
    camera: int,
    ccd: int,
    *,
    progress: bool,
) -> str | None:
    """A ``--prf-dir`` value with ``archive`` replaced by the download cache.

    The cache is the one of the ``[photometry] prf_cache``/``prf_url`` settings; the models
    are downloaded first when missing.
    """
    # The download loads astropy and tqdm: imported when needed (fast start-up).
    from tessphot.prf.download import resolve_prf_dir

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
