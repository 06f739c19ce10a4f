"""``tessphot catalog`` and ``tessphot catalog-load-db``: the catalog stage's commands.

``tessphot catalog SECTOR [INPUT]`` (also ``python run_make_catalog.py SECTOR [INPUT]``) takes
the original's flags (``--camera``, ``--ccd``, ``--buffer``, ``-o/--overwrite``) plus
``--source {file,postgres,mast,header}`` and the options of each source. With ``--for PATH``
(TPFs, TESScut cutouts, or folders of them) the catalogs cover just those files' pixels, and
SECTOR is optional (``tessphot catalog INPUT --for INPUT``). ``tessphot catalog-load-db
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
from tessphot.paths import INPUT_ENV, input_folder

log = logging.getLogger(__name__)

#: Catalog sources (``header``: the targets in the headers of TPFs, with ``--for`` only).
SOURCES = ("file", "postgres", "mast", "header")
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
    p.add_argument(
        "sector", nargs="?", help="TESS sector (optional with --for: the files' own sectors)"
    )
    p.add_argument(
        "input_folder",
        nargs="?",
        help="input folder (default $TESSPHOT_INPUT; with one --for PATH and neither, PATH's "
        "folder)",
    )
    p.add_argument(
        "--for",
        dest="data",
        action="append",
        metavar="PATH",
        help="build catalogs covering only these TPFs or TESScut cutouts (files, or folders "
        "searched for them; repeatable), one per CCD they are on, instead of whole CCDs; "
        "without a TIC file, database or MAST the TPFs' own headers give their targets "
        "(no neighbours)",
    )
    add_camera_ccd(p)
    p.add_argument(
        "--buffer", type=float, metavar="DEG", help="footprint buffer [deg] (default 0.2)"
    )
    p.add_argument("-o", "--overwrite", action="store_true", help="overwrite existing catalogs")
    p.add_argument(
        "--source",
        choices=SOURCES,
        help="where the TIC comes from (default file; header: the TPFs' targets, with --for)",
    )
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


def _sector_and_folder(args: argparse.Namespace) -> tuple[int | None, Path]:
    """The sector (None with ``--for`` and none given) and the input folder.

    With ``--for``, a first positional that is not a number is the input folder; without an
    input folder (argument or ``$TESSPHOT_INPUT``), the one ``--for`` folder (or the folder of
    the one ``--for`` file) is.

    Raises
    ------
    CatalogError
        For no sector without ``--for``, or a sector that is not a number.
    """
    sector, folder = args.sector, args.input_folder
    if sector is not None and not sector.strip().isdigit():
        if not args.data or folder is not None:
            raise CatalogError(f"sector must be a number, not {sector!r}")
        sector, folder = None, sector
    if sector is None and not args.data:
        raise CatalogError("give a SECTOR, or --for with the TPFs or cutouts to cover")
    if folder is None and not env.value(INPUT_ENV) and args.data and len(args.data) == 1:
        folder = args.data[0]  # 'catalog --for mydata': the catalogs go beside the data
    return (int(sector) if sector is not None else None), input_folder(folder)


def _build_options(args: argparse.Namespace, settings: dict) -> dict:
    """The keyword arguments shared by :func:`make_catalogs` and :func:`make_data_catalogs`."""
    faint = args.faint_limit if args.faint_limit is not None else settings["faint_limit"]
    return {
        "overwrite": args.overwrite,
        "buffer_deg": args.buffer if args.buffer is not None else settings["buffer"],
        "faint_limit": None if math.isinf(faint) else float(faint),
        "ticver": args.ticver or settings["ticver"],
        "keep_dispositions": settings["keep_dispositions"],
    }


def _data_source(args: argparse.Namespace, settings: dict, folder: Path, files: list):
    """The source for ``--for``: as asked, else a file, else the TPFs' headers."""
    from tessphot.catalog.data import TPF, header_stars
    from tessphot.catalog.sources.header import HeaderSource

    name = args.source or settings["source"]
    simulated = args.sector is not None and _simulated_catalogs(folder, args.sector)
    if name == "header" or (name == "file" and not args.catalog_file and not simulated):
        if name != "header":
            log.info("No catalog file given: the targets come from the TPFs' headers")
        return HeaderSource(header_stars(files), [f.path.name for f in files if f.kind == TPF])
    return build_source(args, settings, folder)[0]


def _cmd_data_catalog(args: argparse.Namespace, settings: dict, sector, folder: Path) -> list:
    """``tessphot catalog --for``: catalogs of just the files' footprints."""
    from tessphot.catalog.data import expand_paths, read_data_files
    from tessphot.catalog.make import make_data_catalogs

    paths = expand_paths(args.data, sector)
    files = read_data_files(paths, sector)
    if args.camera or args.ccd:
        files = [
            f
            for f in files
            if (not args.camera or f.camera in args.camera) and (not args.ccd or f.ccd in args.ccd)
        ]
    if not files:
        raise CatalogError(
            f"no usable TPF or TESScut cutout in {', '.join(map(str, args.data))}"
            + (f" for sector {sector}" if sector is not None else "")
        )
    with _data_source(args, settings, folder, files) as source:
        # Header catalogs know nothing of a cutout's stars: no empty catalog is written for it.
        return make_data_catalogs(
            files,
            folder,
            source,
            skip_empty=source.name == "header",
            **_build_options(args, settings),
        )


def cmd_catalog(args: argparse.Namespace) -> int:
    """Run ``tessphot catalog``."""
    from tessphot.catalog.make import check_sector, make_catalogs

    settings = load_cli_settings(args)["catalog"]
    sector, folder = _sector_and_folder(args)
    args.sector = sector
    if args.data:
        written = _cmd_data_catalog(args, settings, sector, folder)
        print(f"{len(written)} catalog(s) written to {folder}")
        return EXIT_OK
    if (args.source or settings["source"]) == "header":
        raise CatalogError("--source header needs --for with the target pixel files")
    check_sector(sector)
    source, cameras, ccds = build_source(args, settings, folder)
    with source:
        written = make_catalogs(
            sector,
            folder,
            source,
            cameras,
            ccds,
            # A file rarely covers all 16 CCDs: write only those it has stars for,
            # unless cameras or CCDs were asked for explicitly.
            skip_empty=source.name == "file" and args.camera is None and args.ccd is None,
            **_build_options(args, settings),
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
