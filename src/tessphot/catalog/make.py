"""The catalog stage: one TIC catalog per camera and CCD of a sector.

For every requested CCD, :func:`make_catalogs` takes the CCD's footprint from the real WCS,
asks a source (file, PostgreSQL or MAST) for the TIC stars near it, moves them by their proper
motion to the sector's reference time, keeps those inside the buffered footprint and not
fainter than the faint limit, and writes ``catalog_sector{NNN}_camera{C}_ccd{D}.sqlite``
into the input folder (atomically: a temporary file renamed when complete).

:func:`make_data_catalogs` builds the same files for just the data at hand: the footprints of
a list of TPFs and cutouts (each through its own WCS, grown by the buffer) instead of whole
CCDs, so a MAST source asks one small cone per file rather than hundreds of tiles per CCD.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from tessphot.catalog.data import DataFile
from tessphot.catalog.errors import CatalogError
from tessphot.catalog.footprint import Footprint, ccd_footprint, pixels_footprint
from tessphot.catalog.motion import julian_epoch, max_motion_deg, propagate
from tessphot.catalog.schema import DEFAULT_TICVER, CatalogSettings, catalog_filename
from tessphot.catalog.sources.base import DEFAULT_KEEP_DISPOSITIONS, CatalogSource, StarBatch
from tessphot.catalog.writer import CatalogWriter
from tessphot.sectors import SectorInfo, sector_info
from tessphot.version import __version__

log = logging.getLogger(__name__)

#: Default footprint buffer [deg] (the original's).
DEFAULT_BUFFER = 0.2
#: Default faint limit [Tmag]: fainter stars are left out. Well below the photometry limit
#: (Tmag 15), since fainter stars still contaminate apertures.
DEFAULT_FAINT_LIMIT = 19.0
#: Extra margin around the footprints when asking a source [deg] (~4 arcsec).
QUERY_SLACK_DEG = 1e-3
#: All cameras and CCDs.
ALL = (1, 2, 3, 4)
#: Separator of the footprints of several files in a catalog's ``settings.footprint``.
FOOTPRINT_SEPARATOR = ";"


def catalog_path(folder: str | os.PathLike, sector: int, camera: int, ccd: int) -> Path:
    """Where the catalog of a sector, camera and CCD lives in an input folder."""
    return Path(folder) / catalog_filename(sector, camera, ccd)


def check_sector(sector: int) -> SectorInfo:
    """The sector's metadata (:class:`tessphot.sectors.SectorInfo`).

    Raises
    ------
    CatalogError
        For a sector unknown to the pointing table.
    """
    try:
        return sector_info(sector)
    except ValueError as err:
        raise CatalogError(str(err)) from None


def _select(
    batch: StarBatch, footprint: Footprint, years: float, faint_limit: float | None
) -> tuple[StarBatch, np.ndarray, np.ndarray]:
    """Stars of a batch in the footprint at the sector epoch, with their moved positions."""
    if faint_limit is not None:
        batch = batch[batch.tmag <= faint_limit]
    ra, dec = propagate(batch.ra, batch.dec, batch.pm_ra, batch.pm_dec, years)
    inside = footprint.contains(ra, dec)
    return batch[inside], ra[inside], dec[inside]


def make_catalogs(
    sector: int,
    input_folder: str | os.PathLike,
    source: CatalogSource,
    cameras: Sequence[int] | None = None,
    ccds: Sequence[int] | None = None,
    *,
    overwrite: bool = False,
    buffer_deg: float = DEFAULT_BUFFER,
    faint_limit: float | None = DEFAULT_FAINT_LIMIT,
    ticver: str = DEFAULT_TICVER,
    keep_dispositions: Sequence[str] = DEFAULT_KEEP_DISPOSITIONS,
    skip_empty: bool = False,
) -> list[Path]:
    """Build the catalogs of a sector's CCDs.

    Parameters
    ----------
    sector : int
        TESS sector (any in the tesswcs pointing table).
    input_folder : path-like
        Folder to write the catalogs into (must exist).
    source : CatalogSource
        Where the TIC stars come from.
    cameras, ccds : sequence of int, optional
        Which cameras and CCDs (default all).
    overwrite : bool
        Rebuild catalogs that exist (else they are skipped: "Already done").
    buffer_deg : float
        Footprint buffer [deg].
    faint_limit : float or None
        Leave out stars fainter than this Tmag (None: keep all).
    ticver : str
        TIC version written into ``settings.ticver``.
    keep_dispositions : sequence of str
        TIC dispositions the source keeps besides NULL (recorded in the metadata).
    skip_empty : bool
        Write no catalog for a CCD without any star (e.g. a file covering a few CCDs, when
        all CCDs are asked for); otherwise an empty catalog is written, with a warning.

    Returns
    -------
    list of Path
        The catalogs written (skipped ones not included).

    Raises
    ------
    CatalogError
        For an unknown sector, a missing folder, a bad buffer or faint limit, or any source
        error; no partial catalog file is left behind.
    """
    info = check_sector(sector)
    folder = _checked_folder(input_folder, faint_limit, cameras, ccds)
    pending = _pending(folder, sector, cameras, ccds, overwrite=overwrite)
    if not pending:
        return []

    jobs = []
    for camera, ccd, path in pending:
        fp = ccd_footprint(sector, camera, ccd, buffer_deg)
        row = _settings_row(info, camera, ccd, [fp], ticver=ticver, buffer_deg=buffer_deg)
        jobs.append(_Job(path, (fp,), row))
    metadata = _metadata(source, faint_limit, keep_dispositions)
    return _build(info, jobs, source, metadata, faint_limit, skip_empty=skip_empty)


def make_data_catalogs(
    files: Sequence[DataFile],
    input_folder: str | os.PathLike,
    source: CatalogSource,
    *,
    overwrite: bool = False,
    buffer_deg: float = DEFAULT_BUFFER,
    faint_limit: float | None = DEFAULT_FAINT_LIMIT,
    ticver: str = DEFAULT_TICVER,
    keep_dispositions: Sequence[str] = DEFAULT_KEEP_DISPOSITIONS,
    skip_empty: bool = False,
) -> list[Path]:
    """Build the catalogs of the CCDs of some TPFs and cutouts, covering only their pixels.

    One catalog per sector, camera and CCD (the usual name, so prepare, todo and run find
    it), holding the stars on or within ``buffer_deg`` of the pixels of the files on that
    CCD. The ``settings.footprint`` row lists the query polygon of each file, separated by
    :data:`FOOTPRINT_SEPARATOR`.

    Parameters
    ----------
    files : sequence of DataFile
        The TPFs and cutouts (:func:`tessphot.catalog.data.read_data_files`).
    input_folder, source, overwrite, buffer_deg, faint_limit, ticver, keep_dispositions
        As for :func:`make_catalogs`.
    skip_empty : bool
        Write no catalog for a CCD without any star (else an empty one, with a warning).

    Returns
    -------
    list of Path
        The catalogs written (existing ones kept without ``overwrite`` are not included).

    Raises
    ------
    CatalogError
        For an unknown sector, a missing folder, a bad buffer or faint limit, or any source
        error; no partial catalog file is left behind.
    """
    folder = _checked_folder(input_folder, faint_limit, None, None)
    by_ccd: dict[tuple[int, int, int], list[DataFile]] = defaultdict(list)
    for data in files:
        by_ccd[data.ccd_key].append(data)
    metadata = _metadata(source, faint_limit, keep_dispositions)
    written: list[Path] = []
    for sector in sorted({key[0] for key in by_ccd}):
        info = check_sector(sector)
        jobs = []
        for (in_sector, camera, ccd), group in sorted(by_ccd.items()):
            if in_sector != sector:
                continue
            if not _pending(folder, sector, [camera], [ccd], overwrite=overwrite):
                continue
            fps = [pixels_footprint(sector, camera, ccd, d.wcs, d.shape, buffer_deg) for d in group]
            row = _settings_row(info, camera, ccd, fps, ticver=ticver, buffer_deg=buffer_deg)
            jobs.append(_Job(catalog_path(folder, sector, camera, ccd), tuple(fps), row))
            log.info(
                "Sector %d camera %d CCD %d: catalog of %d file(s)", sector, camera, ccd, len(fps)
            )
        written += _build(info, jobs, source, metadata, faint_limit, skip_empty=skip_empty)
    return written


def _build(
    info: SectorInfo,
    jobs: list[_Job],
    source: CatalogSource,
    metadata: dict[str, str],
    faint_limit: float | None,
    *,
    skip_empty: bool,
) -> list[Path]:
    """Write the catalogs of one sector's jobs; returns those written."""
    years = julian_epoch(info.reference_time) - 2000.0
    margin = max_motion_deg(years) + QUERY_SLACK_DEG
    groups = [jobs] if source.scan else [[job] for job in jobs]
    written = []
    for group in groups:
        if not group:
            continue
        started = time.perf_counter()
        written += _write_group(
            group, source, metadata, margin, years, faint_limit, skip_empty=skip_empty
        )
        log.debug("Built %d catalog(s) in %.1f s", len(group), time.perf_counter() - started)
    return written


@dataclass(frozen=True)
class _Job:
    """One catalog to write: its file, footprints (a CCD, or data files) and ``settings`` row."""

    path: Path
    footprints: tuple[Footprint, ...]
    settings: CatalogSettings


def _checked_folder(
    input_folder: str | os.PathLike,
    faint_limit: float | None,
    cameras: Sequence[int] | None,
    ccds: Sequence[int] | None,
) -> Path:
    """The input folder, once it and the other arguments are checked."""
    folder = Path(input_folder).expanduser()
    if not folder.is_dir():
        raise CatalogError(f"input folder does not exist: {folder}")
    if faint_limit is not None and not np.isfinite(faint_limit):
        raise CatalogError(f"faint limit must be a finite Tmag, not {faint_limit}")
    for name, values in (("camera", cameras), ("CCD", ccds)):
        if values is not None and any(v not in ALL for v in values):
            raise CatalogError(f"{name} must be 1-4, not {sorted(values)}")
    return folder


def _pending(
    folder: Path,
    sector: int,
    cameras: Sequence[int] | None,
    ccds: Sequence[int] | None,
    *,
    overwrite: bool,
) -> list[tuple[int, int, Path]]:
    """The (camera, CCD, path) of the catalogs to build; existing ones are "Already done"."""
    pending = []
    for camera in sorted(set(cameras or ALL)):
        for ccd in sorted(set(ccds or ALL)):
            path = catalog_path(folder, sector, camera, ccd)
            if path.exists() and not overwrite:
                log.info("Already done: %s", path.name)
                continue
            pending.append((camera, ccd, path))
    return pending


def _settings_row(
    info: SectorInfo,
    camera: int,
    ccd: int,
    fps: Sequence[Footprint],
    *,
    ticver: str,
    buffer_deg: float,
) -> CatalogSettings:
    """The ``settings`` row of a CCD's catalog (of the CCD, or of data files on it)."""
    return CatalogSettings(
        sector=int(info.sector),
        camera=camera,
        ccd=ccd,
        ticver=str(ticver),
        reference_time=float(info.reference_time),
        epoch=float(julian_epoch(info.reference_time)),
        coord_buffer=float(buffer_deg),
        camera_centre_ra=float(fps[0].camera_centre[0]),
        camera_centre_dec=float(fps[0].camera_centre[1]),
        footprint=FOOTPRINT_SEPARATOR.join(fp.footprint_string() for fp in fps),
    )


def _metadata(
    source: CatalogSource, faint_limit: float | None, keep_dispositions: Sequence[str]
) -> dict[str, str]:
    """The ``tessphot_metadata`` entries of the catalogs built from a source."""
    return {
        "source": source.name,
        "source_detail": source.describe(),
        "faint_limit": "none" if faint_limit is None else repr(float(faint_limit)),
        "keep_dispositions": ",".join(keep_dispositions),
        "proper_motion": "straight-line space motion from J2000.0 to reference_time",
        "tessphot_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _write_group(
    group: list[_Job],
    source: CatalogSource,
    metadata: dict[str, str],
    margin: float,
    years: float,
    faint_limit: float | None,
    *,
    skip_empty: bool,
) -> list[Path]:
    """Write the catalogs of CCDs the source streams together; returns those written."""
    with contextlib.ExitStack() as stack:
        writers = [
            stack.enter_context(CatalogWriter(job.path, job.settings, metadata)) for job in group
        ]
        footprints = [fp for job in group for fp in job.footprints]
        owner = [k for k, job in enumerate(group) for _ in job.footprints]
        seen: list[set[int]] = [set() for _ in group]
        for local, batch in source.stream(footprints, margin, faint_limit):
            stars, ra, dec = _select(batch, footprints[local], years, faint_limit)
            if len(group[owner[local]].footprints) > 1:
                # Files on one CCD may overlap: a star they share is written once.
                new = _not_seen(stars.starid, seen[owner[local]])
                stars, ra, dec = stars[new], ra[new], dec[new]
            writers[owner[local]].add(
                stars.starid,
                ra,
                dec,
                stars.ra,
                stars.dec,
                stars.pm_ra,
                stars.pm_dec,
                stars.tmag,
                stars.teff,
            )
        finished = (_finish(writer, skip_empty=skip_empty) for writer in writers)
        return [path for path in finished if path is not None]


def _not_seen(starid: np.ndarray, seen: set[int]) -> np.ndarray:
    """Which of the IDs are not in ``seen`` yet (and add them to it)."""
    new = np.fromiter((int(i) not in seen for i in starid), dtype=bool, count=starid.size)
    seen.update(int(i) for i in starid[new])
    return new


def _finish(writer: CatalogWriter, *, skip_empty: bool) -> Path | None:
    """Finish a catalog (None: left out, being empty with ``skip_empty``)."""
    if writer.n_rows == 0 and skip_empty:
        log.info("No stars for %s: not written", writer.path.name)
        writer.abort()
        return None
    if writer.n_rows == 0:
        log.warning("%s: no stars in the footprint", writer.path.name)
    path = writer.finish()
    log.info("Wrote %s: %d stars", path.name, writer.n_rows)
    return path
