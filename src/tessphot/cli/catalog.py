"""``tessphot catalog`` and ``tessphot catalog-load-db``: the catalog stage's commands.

``tessphot catalog SECTOR [INPUT]`` (also ``python run_make_catalog.py SECTOR [INPUT]``) takes
the original's flags (``--camera``, ``--ccd``, ``--buffer``, ``-o/--overwrite``) plus
``--source {file,postgres,mast}`` and the options of each source. ``tessphot catalog-load-db
FILE...`` creates the PostgreSQL TIC table with its q3c index. See docs/catalog.md.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from tessphot import env
from tessphot.catalog.errors import CatalogError
from tessphot.cli.common import (
    EXIT_OK,
    add_camera_ccd,
    add_common,
    load_cli_settings,
)
from tessphot.paths import input_folder

log = logging.getLogger(__name__)

#: Catalog sources.
SOURCES = ("file", "postgres", "mast")
#: Where the simulator puts its TIC-like catalogs, relative to the input folder.
SIMULATED_CATALOG_GLOB = ("truth/tic_sector{sector:03d}_camera*_ccd*.csv",)


def _faint_limit(text: str) -> float:
    """``--faint-limit`` value: a Tmag, or 'none'/'inf' for no limit (infinity)."""
    if text.strip().lower() == "none":
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a magnitude: {text!r}") from None
    if math.isnan(value):
        raise argparse.ArgumentTypeError("the faint limit cannot be NaN")
    return value


def _db_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("PostgreSQL TIC database")
    group.add_argument(
        "--db",
        metavar="DSN",
        help="libpq connection string or URI, e.g. 'host=db.example.org dbname=tic user=me' "
        "(default $TESSPHOT_DB; $TESSPHOT_DB_HOST/_PORT/_NAME/_USER/_PASSWORD and libpq's "
        "PG* variables and ~/.pgpass fill in the rest)",
    )
    group.add_argument(
        "--db-table", metavar="TABLE", help="TIC table, TABLE or SCHEMA.TABLE (default tic)"
    )


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``catalog`` and ``catalog-load-db`` on the ``tessphot`` subcommands."""
    _add_catalog(sub)
    _add_load_db(sub)


def _add_catalog(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "catalog",
        help="build TIC catalogs per CCD (catalog_sectorNNN_cameraC_ccdD.sqlite)",
        description=(
            "Write catalog_sectorNNN_cameraC_ccdD.sqlite into the input folder for each "
            "camera and CCD: the TIC stars on the CCD's footprint (real TESS geometry) grown "
            "by --buffer, moved by their proper motions to the sector's reference time. "
            "Sources: a TIC-like file (CSV/ECSV/FITS/Parquet; default: the simulator's "
            "truth/tic_*.csv in the input folder), a PostgreSQL TIC database with q3c, or MAST."
        ),
        epilog="Load a PostgreSQL TIC database with 'tessphot catalog-load-db'.",
    )
    add_common(p)
    p.add_argument("sector", type=int, help="TESS sector")
    p.add_argument("input_folder", nargs="?", help="input folder (default $TESSPHOT_INPUT)")
    add_camera_ccd(p)
    p.add_argument(
        "--buffer", type=float, metavar="DEG", help="footprint buffer [deg] (default 0.2)"
    )
    p.add_argument("-o", "--overwrite", action="store_true", help="overwrite existing catalogs")
    p.add_argument("--source", choices=SOURCES, help="where the TIC comes from (default file)")
    p.add_argument(
        "--faint-limit",
        type=_faint_limit,
        metavar="TMAG",
        help="leave out stars fainter than this (default 19; 'none' keeps all)",
    )
    p.add_argument("--ticver", help="TIC version written into the catalogs (default 8.2)")
    group = p.add_argument_group("file source")
    group.add_argument(
        "--catalog-file",
        action="append",
        metavar="FILE",
        help="TIC-like CSV, ECSV, FITS or Parquet file (repeatable; default: the simulated "
        "catalogs INPUT/truth/tic_sectorNNN_camera*_ccd*.csv)",
    )
    _db_options(p)
    group = p.add_argument_group("MAST source")
    group.add_argument(
        "--mast-cache",
        metavar="DIR",
        help="cache of MAST answers (default $TESSPHOT_MAST_CACHE or ~/.cache/tessphot/mast)",
    )
    group.add_argument(
        "--mast-tile-radius", type=float, metavar="DEG", help="radius of one query (0.5)"
    )
    p.set_defaults(func=cmd_catalog)


def _add_load_db(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "catalog-load-db",
        help="load TIC-like files into a PostgreSQL table with a q3c index",
        description=(
            'Create the TIC table (starid, ra, decl, pm_ra, pm_decl, "Tmag", "Teff", '
            "disposition) in a PostgreSQL database with the q3c extension, load TIC-like "
            "files into it, and index it (primary key, q3c, CLUSTER, ANALYZE), all in one "
            "transaction. 'tessphot catalog --source postgres' then queries it."
        ),
    )
    add_common(p)
    p.add_argument("files", nargs="+", metavar="FILE", help="CSV, ECSV, FITS or Parquet files")
    _db_options(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--append", action="store_true", help="add to an existing table")
    mode.add_argument("-o", "--overwrite", action="store_true", help="drop an existing table first")
    p.add_argument(
        "--no-cluster",
        dest="cluster",
        action="store_false",
        help="do not CLUSTER a new table on its q3c index (faster load, slower queries)",
    )
    p.set_defaults(func=cmd_load_db)


def _simulated_catalogs(folder: Path, sector: int) -> list[Path]:
    found: list[Path] = []
    for pattern in SIMULATED_CATALOG_GLOB:
        found.extend(sorted(folder.glob(pattern.format(sector=sector))))
    return found


def _ccd_of(path: Path) -> tuple[int, int]:
    """Camera and CCD from a ``..._cameraC_ccdD.csv`` name."""
    stem = path.name.split(".")[0]
    camera = int(stem.split("_camera")[1][0])
    ccd = int(stem.split("_ccd")[1][0])
    return camera, ccd


def _db_table(args: argparse.Namespace, settings: dict) -> str:
    """The TIC table: ``--db-table``, else ``$TESSPHOT_DB_TABLE``, else the setting."""
    return args.db_table or env.value(env.DB_TABLE) or settings["db_table"]


def _file_source(args: argparse.Namespace, settings: dict, folder: Path):
    """The file source of ``--catalog-file`` (default: the simulated catalogs)."""
    # The sources load astropy, psycopg or astroquery: imported only for the one asked for.
    from tessphot.catalog.sources.file import FileSource

    cameras, ccds = args.camera, args.ccd
    files = [Path(f) for f in args.catalog_file or []]
    if not files:
        files = _simulated_catalogs(folder, args.sector)
        if not files:
            raise CatalogError(
                f"no catalog file: give --catalog-file, or simulate into {folder} "
                f"(no truth/tic_sector{args.sector:03d}_camera*_ccd*.csv there)"
            )
        if cameras is None and ccds is None:
            which = sorted({_ccd_of(f) for f in files})
            log.info(
                "Using the simulated catalogs of %s",
                ", ".join(f"camera {c} CCD {d}" for c, d in which),
            )
            cameras = sorted({c for c, _ in which})
            ccds = sorted({d for _, d in which})
    return FileSource(files, keep_dispositions=settings["keep_dispositions"]), cameras, ccds


def _postgres_source(args: argparse.Namespace, settings: dict):
    from tessphot.catalog.sources.postgres import PostgresSource

    return PostgresSource(
        args.db,
        table=_db_table(args, settings),
        keep_dispositions=settings["keep_dispositions"],
        connect_timeout=settings["db_connect_timeout"],
    )


def _mast_source(args: argparse.Namespace, settings: dict):
    from tessphot.catalog.sources.mast import MastSource

    return MastSource(
        cache_dir=args.mast_cache,
        tile_radius_deg=(
            args.mast_tile_radius
            if args.mast_tile_radius is not None
            else settings["mast_tile_radius"]
        ),
        retries=settings["mast_retries"],
        backoff_s=settings["mast_backoff"],
        keep_dispositions=settings["keep_dispositions"],
    )


def build_source(args: argparse.Namespace, settings: dict, folder: Path):
    """The catalog source the options ask for, and the cameras/CCDs to build.

    Returns
    -------
    source : CatalogSource
    cameras, ccds : list of int or None
    """
    name = args.source or settings["source"]
    if name not in SOURCES:
        raise CatalogError(f"unknown catalog source {name!r} (use one of {', '.join(SOURCES)})")
    if name == "file":
        return _file_source(args, settings, folder)
    if name == "postgres":
        return _postgres_source(args, settings), args.camera, args.ccd
    return _mast_source(args, settings), args.camera, args.ccd


def cmd_catalog(args: argparse.Namespace) -> int:
    """Run ``tessphot catalog``."""
    from tessphot.catalog.make import check_sector, make_catalogs

    settings = load_cli_settings(args)["catalog"]
    folder = input_folder(args.input_folder)
    faint = args.faint_limit if args.faint_limit is not None else settings["faint_limit"]
    faint = None if math.isinf(faint) else float(faint)
    check_sector(args.sector)
    source, cameras, ccds = build_source(args, settings, folder)
    with source:
        written = make_catalogs(
            args.sector,
            folder,
            source,
            cameras,
            ccds,
            overwrite=args.overwrite,
            buffer_deg=args.buffer if args.buffer is not None else settings["buffer"],
            faint_limit=faint,
            ticver=args.ticver or settings["ticver"],
            keep_dispositions=settings["keep_dispositions"],
            # A file rarely covers all 16 CCDs: write only those it has stars for,
            # unless cameras or CCDs were asked for explicitly.
            skip_empty=source.name == "file" and args.camera is None and args.ccd is None,
        )
    print(f"{len(written)} catalog(s) written to {folder}")
    return EXIT_OK


def cmd_load_db(args: argparse.Namespace) -> int:
    """Run ``tessphot catalog-load-db``."""
    from tessphot.catalog.sources.postgres_load import load_db

    settings = load_cli_settings(args)["catalog"]
    table = _db_table(args, settings)
    n = load_db(
        args.files,
        args.db,
        table,
        append=args.append,
        replace=args.overwrite,
        cluster=args.cluster,
        connect_timeout=settings["db_connect_timeout"],
    )
    print(f"Loaded {n} rows into {table}")
    return EXIT_OK
