"""The pixel source of a task: its data source (``ffi``, ``tpf``, ``tpf:<TIC>``) opened.

Among several prepared files of a CCD (the CCD's own and TESScut cutouts), the one where
the star is farthest from the edge is chosen.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from tessphot.config.timing import TimingSettings
from tessphot.prepare.cube import hdf5_name, prepared_files
from tessphot.sources.base import PixelSource
from tessphot.sources.cache import cached_source
from tessphot.sources.errors import SourceError
from tessphot.sources.ffi import FFISource
from tessphot.sources.tpf import tpf_source
from tessphot.sources.tpf_background import TPFBackground

#: Data sources of the tasks: ``ffi``, ``tpf`` or ``tpf:<primary TIC>``.
DATASOURCE_PATTERN = re.compile(r"ffi|tpf(?::(?P<primary>\d+))?")
#: Data source of FFI targets.
FFI_DATASOURCE = "ffi"


def ffi_source(
    input_folder: str | os.PathLike,
    sector: int,
    camera: int,
    ccd: int,
    contaminant_tmag_max: float,
    timing: TimingSettings | None = None,
    path: str | os.PathLike | None = None,
) -> FFISource:
    """The (cached) :class:`FFISource` of a prepared-data file (default: the CCD's).

    A file that changed on disk since it was cached is read again.
    """
    folder = Path(input_folder).resolve()
    path = Path(path).resolve() if path is not None else folder / hdf5_name(sector, camera, ccd)
    key = ("ffi", str(path), float(contaminant_tmag_max), timing)
    return cached_source(
        key,
        path,
        lambda: FFISource(
            input_folder, sector, camera, ccd, contaminant_tmag_max, timing=timing, path=path
        ),
    )


def best_ffi_source(
    input_folder: str | os.PathLike,
    starid: int,
    sector: int,
    camera: int,
    ccd: int,
    contaminant_tmag_max: float,
    timing: TimingSettings | None = None,
) -> FFISource:
    """The prepared FFI data of a star.

    The CCD's file, or, among several files of the CCD (TESScut cutouts), the one where the
    star is farthest from the edge.
    """
    paths = prepared_files(input_folder, sector, camera, ccd)
    args = (input_folder, sector, camera, ccd, contaminant_tmag_max, timing)
    if len(paths) <= 1:
        return ffi_source(*args, paths[0] if paths else None)
    best, best_distance = None, -math.inf
    for path in paths:
        data = ffi_source(*args, path)
        index = data.star(starid)
        if index is None:
            continue
        (r0, c0), (ny, nx) = data.origin, data.shape
        row, col = data.stars.row[index] - r0, data.stars.col[index] - c0
        distance = min(row + 0.5, ny - 0.5 - row, col + 0.5, nx - 0.5 - col)
        if distance > best_distance:
            best, best_distance = data, distance
    if best is None:
        return ffi_source(*args, paths[0])
    return best


def primary_of(starid: int, datasource: str) -> int | None:
    """The primary target of a secondary TPF target (None otherwise).

    Raises
    ------
    SourceError
        For an invalid data source.
    """
    match = DATASOURCE_PATTERN.fullmatch(str(datasource))
    if match is None:
        raise SourceError(
            f"TIC {starid}: invalid data source {datasource!r} (ffi, tpf or tpf:<TIC>)"
        )
    return int(match["primary"]) if match["primary"] else None


def task_source(
    input_folder: str | os.PathLike,
    starid: int,
    sector: int,
    camera: int,
    ccd: int,
    *,
    cadence: int | None,
    datasource: str,
    contaminant_tmag_max: float,
    timing: TimingSettings,
    tpf_background: TPFBackground | None = None,
) -> PixelSource:
    """The (cached) pixel source of a task.

    Raises
    ------
    SourceError
        For an invalid data source, missing or unusable data, or a cadence other than the
        data's.
    """
    primary = primary_of(starid, datasource)
    if str(datasource) == FFI_DATASOURCE:
        data: PixelSource = best_ffi_source(
            input_folder, starid, sector, camera, ccd, contaminant_tmag_max, timing
        )
    else:
        data = tpf_source(
            input_folder,
            primary or starid,
            sector,
            camera,
            ccd,
            cadence,
            contaminant_tmag_max,
            timing=timing,
            background=tpf_background,
        )
    if cadence is not None and int(cadence) != int(round(data.cadence)):
        raise SourceError(
            f"TIC {starid}: task cadence {cadence} s, but {data.path.name} holds "
            f"{data.cadence:.0f}-s data"
        )
    return data
