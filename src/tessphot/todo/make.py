"""The todo stage: ``todo.sqlite``, the list of photometry tasks of an input folder.

For every prepared-data file ``sectorNNN_cameraC_ccdD[_<cutout>].hdf5`` in the input folder, every
star of the matching catalog that is brighter than the faint limit and falls on the pixels
covered by the file (at the reference frame's WCS) becomes one FFI task, with the file's
cadence, its co-trending area, and a method: forced by the methods override file, else
``halo`` for very bright FFI targets (the original's rule), else NULL (automatic). Targets
listed in the exclude file for the file's data release are left out. Priorities follow
brightness (bright first). Target pixel files anywhere below the folder add their primary
targets and the stars on their pixels (:mod:`tessphot.todo.tpf`). The file is written atomically
(:func:`tessphot.tasks.write_todolist`) in the original's schema (§4.4 of the notes); run again
on a folder with new files, it adds their targets to the existing list and leaves the tasks
already there, with their results, untouched.
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tessphot.catalog.data import DataFile, header_stars, read_data_file
from tessphot.catalog.make import catalog_path, make_data_catalogs
from tessphot.catalog.sources.header import HeaderSource
from tessphot.catalog.sqlite_catalog import CatalogDB
from tessphot.config import DEFAULTS
from tessphot.io.errors import FileProblem, TessphotError
from tessphot.io.recognise import InputFile, Inventory, Kind, recognise, scan
from tessphot.prepare.cube import PREPARED_NAME_PATTERN, PreparedCube
from tessphot.tasks.schema import TODO_FILENAME, add_to_todolist, write_todolist
from tessphot.todo.overrides import read_exclusions, read_methods
from tessphot.todo.targets import HALF_PIXEL, log_excluded, target_cbv_areas
from tessphot.todo.tpf import TPFTodoError, resolve_secondaries, tpf_targets

log = logging.getLogger(__name__)

#: Data source of FFI targets.
FFI = "ffi"


class TodoError(TessphotError):
    """The todo list cannot be built (the message says why)."""


def find_prepared(
    folder: str | os.PathLike,
    sectors: Sequence[int] | None = None,
    cameras: Sequence[int] | None = None,
    ccds: Sequence[int] | None = None,
) -> list[tuple[int, int, int, Path]]:
    """Prepared-data files in the top level of a folder: ``(sector, camera, ccd, path)``.

    Each is prepared from a CCD's FFIs or from a TESScut cutout.
    """
    found = []
    for path in sorted(Path(folder).iterdir()):
        match = PREPARED_NAME_PATTERN.match(path.name)
        if not match or not path.is_file():
            continue
        sector, camera, ccd = (int(match[k]) for k in ("sector", "camera", "ccd"))
        if sectors and sector not in sectors:
            continue
        if cameras and camera not in cameras:
            continue
        if ccds and ccd not in ccds:
            continue
        found.append((sector, camera, ccd, path))
    return found


def ffi_targets(
    hdf5_path: str | os.PathLike,
    catalog_file: str | os.PathLike,
    *,
    faint_limit: float,
    halo_tmag_limit: float | None,
    methods: Mapping[tuple[int, int, str], str],
    exclusions: set[tuple[int, int, str, int]],
) -> list[dict[str, Any]]:
    """The FFI tasks of one prepared-data file.

    Parameters
    ----------
    hdf5_path : path-like
        The ``sectorNNN_cameraC_ccdD.hdf5`` file.
    catalog_file : path-like
        The catalog of the same sector, camera and CCD.
    faint_limit : float
        Stars with ``tmag < faint_limit`` are targets.
    halo_tmag_limit : float or None
        FFI targets with ``tmag <= halo_tmag_limit`` get method ``halo`` (None: never).
    methods, exclusions
        The override tables (:mod:`tessphot.todo.overrides`).

    Returns
    -------
    list of dict
        Rows for :func:`tessphot.tasks.write_todolist`.
    """
    with PreparedCube(hdf5_path) as cube:
        sector, camera, ccd = cube.sector, cube.camera, cube.ccd
        cadence = int(round(cube.cadence))
        data_rel = cube.data_rel
        reference = cube.reference_frame
        wcs = cube.reference_wcs
        origin, shape = cube.origin, cube.shape
    if wcs is None:
        raise TodoError(f"{hdf5_path}: no WCS for the reference frame {reference}")
    with CatalogDB(catalog_file) as catalog:
        settings = catalog.settings
        stars = catalog.stars()
    if (settings.sector, settings.camera, settings.ccd) != (sector, camera, ccd):
        raise TodoError(
            f"{catalog_file}: catalog of sector {settings.sector} camera {settings.camera} CCD "
            f"{settings.ccd}, but {hdf5_path} holds sector {sector} camera {camera} CCD {ccd}"
        )
    stars = stars[stars["tmag"] < faint_limit]
    if stars.size == 0:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        col, row = wcs.all_world2pix(stars["ra"], stars["decl"], 0, quiet=True)
    on = (
        np.isfinite(row)
        & np.isfinite(col)
        & (row >= origin[0] - HALF_PIXEL)
        & (row < origin[0] + shape[0] - HALF_PIXEL)
        & (col >= origin[1] - HALF_PIXEL)
        & (col < origin[1] + shape[1] - HALF_PIXEL)
    )
    stars = stars[on]
    areas = target_cbv_areas(settings, camera, ccd, stars["ra"], stars["decl"])
    rows = []
    excluded = []
    for star, area in zip(stars, areas, strict=True):
        starid = int(star["starid"])
        tmag = float(star["tmag"])
        if (starid, sector, FFI, data_rel) in exclusions:
            excluded.append(starid)
            continue
        method = methods.get((starid, sector, FFI))
        if method is None and halo_tmag_limit is not None and tmag <= halo_tmag_limit:
            method = "halo"
        rows.append(
            {
                "starid": starid,
                "sector": sector,
                "camera": camera,
                "ccd": ccd,
                "cadence": cadence,
                "datasource": FFI,
                "method": method,
                "tmag": tmag,
                "cbv_area": int(area),
            }
        )
    log.info(
        "%s: %d targets brighter than Tmag %g on the data%s",
        Path(hdf5_path).name,
        len(rows),
        faint_limit,
        f" ({len(excluded)} excluded)" if excluded else "",
    )
    log_excluded(Path(hdf5_path).name, excluded)
    return rows


def _no_input(folder: Path, inventory: Inventory, selected: bool) -> str:
    """Why there is nothing to do, and what to do about it."""
    where = f"{folder}" + (" for the requested sector/camera/CCD" if selected else "")
    text = f"no prepared-data files (sectorNNN_cameraC_ccdD.hdf5) or target pixel files in {where}"
    frames = inventory.of_kind(Kind.FFI) + inventory.of_kind(Kind.CUTOUT)
    if frames:
        return f"{text}, but {len(frames)} FFI(s)/TESScut cutout(s): run 'tessphot prepare' first"
    if inventory.left_out:
        return (
            f"{text}, and no usable FFIs or TESScut cutouts: left out "
            f"{inventory.left_out_counts()} (see the lines above)"
        )
    return f"{text}, and no FFIs or TESScut cutouts to prepare"


def _log_left_out(inventory: Inventory) -> None:
    """The stage's last line about its inputs: the FITS files it left out, counted by reason."""
    if inventory.left_out:
        log.warning(
            "Todo: %d file(s) left out: %s", len(inventory.left_out), inventory.left_out_counts()
        )


def make_todo(
    input_folder: str | os.PathLike,
    sectors: Sequence[int] | None = None,
    cameras: Sequence[int] | None = None,
    ccds: Sequence[int] | None = None,
    *,
    overwrite: bool = False,
    settings: Mapping[str, Any] | None = None,
    output_file: str | os.PathLike | None = None,
    find_secondary_targets: bool = True,
) -> Path:
    """Build ``todo.sqlite`` for the prepared data and target pixel files of an input folder.

    FFI tasks come from the prepared-data files (:func:`ffi_targets`), TPF tasks from the
    target pixel files anywhere below the folder (:func:`tessphot.todo.tpf.tpf_targets`:
    primary targets and, with ``find_secondary_targets``, the catalog stars on their pixels).
    A file that gives no task (unreadable, no catalog) is logged and left out; the others go
    on. TPFs on a CCD without any catalog get one from their own headers
    (:func:`header_catalogs`, with a WARNING: their neighbours are unknown).

    Parameters
    ----------
    input_folder : path-like
        Folder with the ``sectorNNN_cameraC_ccdD*.hdf5`` files, TPFs and the catalogs.
    sectors, cameras, ccds : sequence of int, optional
        Only these (default all files found).
    overwrite : bool
        Replace an existing todo file (its results are lost). Without it the targets of new
        files are added to an existing file (:func:`tessphot.tasks.schema.add_to_todolist`):
        its tasks, their status and results stay as they are.
    settings : mapping, optional
        The ``[todo]`` settings (default :data:`tessphot.config.DEFAULTS`): ``faint_limit``,
        ``halo_tmag_limit``, ``methods_file``, ``exclude_file``.
    output_file : path-like, optional
        Where to write (default ``<input_folder>/todo.sqlite``).
    find_secondary_targets : bool
        Add the catalog stars on the pixels of TPFs as secondary targets.

    Returns
    -------
    pathlib.Path
        The todo file.

    Raises
    ------
    TodoError
        When there is neither a prepared-data file nor a TPF, or no file gives a task.
    """
    folder = Path(input_folder)
    values = {**DEFAULTS["todo"], **dict(settings or {})}
    unknown = set(values) - set(DEFAULTS["todo"])
    if unknown:
        raise ValueError(f"unknown todo setting(s) {sorted(unknown)}")
    output = Path(output_file) if output_file is not None else folder / TODO_FILENAME
    files = find_prepared(folder, sectors, cameras, ccds)
    inventory = scan(folder)
    tpfs = [f.path for f in inventory.of_kind(Kind.TPF) if not sectors or f.sector in sectors]
    if not files and not tpfs:
        raise TodoError(_no_input(folder, inventory, bool(sectors or cameras or ccds)))
    options = _TargetOptions.from_settings(values, cameras, ccds, find_secondary_targets)
    left_out: list[str] = []
    rows = _ffi_rows(folder, files, options, left_out)
    rows += _tpf_rows(folder, tpfs, options, left_out)
    if left_out and not rows:
        raise TodoError(
            left_out[0] if len(left_out) == 1 else "no file gives a task: " + "; ".join(left_out)
        )
    if left_out:
        log.warning("%d file(s) left out of the todo list: %s", len(left_out), "; ".join(left_out))
    # The same star may sit on two files of one CCD (cutouts that overlap): keep one.
    unique: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[k] for k in ("starid", "sector", "camera", "ccd", "datasource", "cadence"))
        unique.setdefault(key, row)
    metadata = {
        "todo_settings": json.dumps(values),
        "prepared_files": json.dumps([p.name for *_, p in files]),
        "target_pixel_files": json.dumps([str(p.relative_to(folder)) for p in tpfs]),
    }
    if output.exists() and not overwrite:
        added = add_to_todolist(output, unique.values(), metadata=metadata)
        log.info(
            "Added %d new task(s) to %s; the %d existing ones are kept as they are "
            "(-o/--overwrite rebuilds the list and forgets every result)",
            added,
            output,
            len(unique) - added,
        )
        _log_left_out(inventory)
        return output
    write_todolist(output, unique.values(), overwrite=True, metadata=metadata)
    log.info("Wrote %s: %d tasks", output, len(unique))
    _log_left_out(inventory)
    return output


@dataclass(frozen=True)
class _TargetOptions:
    """How targets are chosen: the ``[todo]`` settings, override tables and filters."""

    faint_limit: float
    halo_tmag_limit: float | None
    methods: Mapping[tuple[int, int, str], str]
    exclusions: set[tuple[int, int, str, int]]
    cameras: Sequence[int] | None
    ccds: Sequence[int] | None
    find_secondary_targets: bool

    @classmethod
    def from_settings(cls, values, cameras, ccds, find_secondary_targets) -> _TargetOptions:
        """The options from the ``[todo]`` settings (override files read)."""
        halo = values["halo_tmag_limit"]
        return cls(
            faint_limit=float(values["faint_limit"]),
            halo_tmag_limit=None if halo is None or not math.isfinite(float(halo)) else float(halo),
            methods=read_methods(values["methods_file"]),
            exclusions=read_exclusions(values["exclude_file"]),
            cameras=cameras,
            ccds=ccds,
            find_secondary_targets=find_secondary_targets,
        )


def _ffi_rows(
    folder: Path, files: list, options: _TargetOptions, left_out: list[str]
) -> list[dict[str, Any]]:
    """The FFI tasks of the prepared-data files; files without a catalog or damaged are left out."""
    rows: list[dict[str, Any]] = []
    for sector, camera, ccd, path in files:
        cat = catalog_path(folder, sector, camera, ccd)
        if not cat.is_file():
            message = f"{path.name}: catalog missing ({cat.name}): run 'tessphot catalog' first"
            log.error("Prepared file left out: %s", message)
            left_out.append(message)
            continue
        try:
            rows.extend(
                ffi_targets(
                    path,
                    cat,
                    faint_limit=options.faint_limit,
                    halo_tmag_limit=options.halo_tmag_limit,
                    methods=options.methods,
                    exclusions=options.exclusions,
                )
            )
        except FileProblem as err:
            log.error("Prepared file left out: %s", err)
            left_out.append(str(err))
    return rows


def _tpf_rows(
    folder: Path, tpfs: list[Path], options: _TargetOptions, left_out: list[str]
) -> list[dict[str, Any]]:
    """The tasks of the TPFs (primary and secondary targets); bad TPFs are left out."""
    header_catalogs(folder, tpfs)
    rows: list[dict[str, Any]] = []
    for path in tpfs:
        try:
            rows.extend(
                tpf_targets(
                    path,
                    folder,
                    faint_limit=options.faint_limit,
                    methods=options.methods,
                    exclusions=options.exclusions,
                    cameras=options.cameras,
                    ccds=options.ccds,
                    find_secondary_targets=options.find_secondary_targets,
                )
            )
        except TPFTodoError as err:
            log.error("Target pixel file left out: %s", err)
            left_out.append(str(err))
    rows = resolve_secondaries(rows)
    if tpfs:
        primaries = sum(r["datasource"] == "tpf" for r in rows)
        log.info(
            "%d target pixel files: %d primary and %d secondary targets",
            len(tpfs),
            primaries,
            len(rows) - primaries,
        )
    return rows


def header_catalogs(folder: Path, tpfs: Sequence[Path]) -> list[Path]:
    """Catalogs from the TPFs' own headers for the CCDs of TPFs that have no catalog at all.

    The last resort (:class:`tessphot.catalog.sources.header.HeaderSource`, which logs a
    WARNING that the targets' neighbours are unknown); CCDs with a catalog are left alone.
    Unreadable TPFs are skipped here (:func:`tessphot.todo.tpf.tpf_targets` reports them).

    Returns
    -------
    list of Path
        The catalogs written.
    """
    files = _readable([path for path in tpfs if _without_catalog(folder, path)])
    if not files:
        return []
    stars = header_stars(files)
    if len(stars) == 0:
        return []
    source = HeaderSource(stars, [f.path.name for f in files])
    return make_data_catalogs(files, folder, source, skip_empty=True)


def _without_catalog(folder: Path, path: Path) -> bool:
    """Whether a TPF's CCD has no catalog, from its recognised headers (False if unusable)."""
    found = recognise(path)
    if not isinstance(found, InputFile):
        return False
    return not catalog_path(folder, found.sector, found.camera, found.ccd).exists()


def _readable(paths: Sequence[Path]) -> list[DataFile]:
    """The TPFs that can be read (no log: the todo stage reports the others itself)."""
    out = []
    for path in paths:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out.append(read_data_file(path))
        except FileProblem:
            continue
    return out
