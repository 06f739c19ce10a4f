"""The prepare stage: all work that needs whole FFIs, streamed into one HDF5 file per CCD.

One pass over the frames, in parallel worker processes (:mod:`tessphot.prepare.worker`):
read the FFI, flag pixels, estimate the background mesh, measure the reference stars'
centroids. The main process smooths the background meshes in time and writes blocks of
frames aligned with the HDF5 chunks (:mod:`tessphot.prepare.stream`), then adds the average
image and the motion model (:mod:`tessphot.prepare.reference`). The output is written as
``<name>.hdf5.part`` and renamed when complete; a killed run resumes from the last written
block (:mod:`tessphot.prepare.output`). This module drives a run for each CCD.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from tessphot.catalog.make import catalog_path
from tessphot.catalog.sqlite_catalog import CatalogDB
from tessphot.config.prepare import MotionSettings
from tessphot.constants import tmag_to_flux
from tessphot.io.tesscut import find_cutouts, parse_cutout_name
from tessphot.paths import finish_file
from tessphot.prepare import background as bg
from tessphot.prepare import background_small as small
from tessphot.prepare.cube import FORMAT_VERSION, hdf5_name
from tessphot.prepare.frames import (
    FrameInfo,
    collect_frames,
    cutout_frames,
    load_frame,
    sectors_cameras_ccds,
)
from tessphot.prepare.motion import select_reference_stars, wcs_from_string
from tessphot.prepare.output import resume_point, start_part
from tessphot.prepare.reference import finish_part
from tessphot.prepare.stream import stream_frames
from tessphot.prepare.tpf_quality import transfer_tpf_quality
from tessphot.prepare.worker import science_wcs_string
from tessphot.prf import ANALYTIC, load_prf
from tessphot.prf.download import resolve_prf_dir
from tessphot.timefix import readout_delay, stamp_error
from tessphot.version import PIPELINE_NAME, __version__

log = logging.getLogger(__name__)

#: Catalogued stars fainter than this are left out of the starlight model [Tmag].
STARLIGHT_TMAG_LIMIT = 19.0
#: FFI cadences [s]; the measured cadence is rounded to the nearest.
CADENCES = (20, 120, 200, 600, 1800)


def load_catalog(path: Path, tmag_limit: float = STARLIGHT_TMAG_LIMIT) -> np.ndarray | None:
    """Stars of a catalog file (positions at the sector epoch); None when there is none."""
    if not path.is_file():
        return None
    with CatalogDB(path) as db:
        return db.stars(tmag_max=tmag_limit)


def prepare_photometry(
    input_folder: Path | str,
    sectors=None,
    cameras=None,
    ccds=None,
    settings: dict | None = None,
    workers: int | None = None,
    prf_dir: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    prf_cache: str | None = None,
    prf_url: str | None = None,
) -> list[Path]:
    """Run the prepare stage for every (sector, camera, CCD) with FFIs in the input folder.

    Every TESScut cutout is prepared too (each its own small region,
    ``sectorNNN_cameraC_ccdD_<RA>_<Dec>_<W>x<H>.hdf5``).

    ``prf_dir`` is a folder of SPOC PRF models, ``"archive"`` (the SPOC models in the
    download cache ``prf_cache``, downloaded from ``prf_url`` when missing:
    :func:`tessphot.prf.download.resolve_prf_dir`) or None (the analytic PRF).

    Returns
    -------
    list of Path
        The prepared-data files written (or already complete).
    """
    folder = Path(input_folder)

    def wanted(sector: int, camera: int, ccd: int) -> bool:
        return (
            (not sectors or sector in sectors)
            and (not cameras or camera in cameras)
            and (not ccds or ccd in ccds)
        )

    targets = [(t, None) for t in sectors_cameras_ccds(folder) if wanted(*t)]
    for path in find_cutouts(folder):
        name = parse_cutout_name(path.name)
        if name is not None and wanted(name.sector, name.camera, name.ccd):
            targets.append(((name.sector, name.camera, name.ccd), path))
    if not targets:
        raise FileNotFoundError(f"no FFIs or TESScut cutouts matching the selection below {folder}")
    return [
        prepare_ccd(
            folder,
            sector,
            camera,
            ccd,
            settings=settings,
            workers=workers,
            prf_dir=prf_dir,
            overwrite=overwrite,
            progress=progress,
            cutout=cutout,
            prf_cache=prf_cache,
            prf_url=prf_url,
        )
        for (sector, camera, ccd), cutout in targets
    ]


def _settings(settings: dict | None):
    settings = settings or {}
    try:
        background = bg.BackgroundSettings(**(settings.get("background") or {}))
        motion = MotionSettings(**(settings.get("motion") or {}))
    except TypeError as err:
        raise ValueError(f"unknown prepare setting: {err}") from None
    return background, motion


@dataclass(frozen=True)
class _Stars:
    """The catalogued stars of a region: the starlight model and the reference stars."""

    starlight: np.ndarray | None
    ref_rows: np.ndarray
    ref_cols: np.ndarray
    #: The stars of the background fit (None: the mesh estimate).
    model: small.StarModel | None = None


def prepare_ccd(
    folder: Path,
    sector: int,
    camera: int,
    ccd: int,
    settings: dict | None = None,
    workers: int | None = None,
    prf_dir: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    output: Path | None = None,
    cutout: Path | None = None,
    prf_cache: str | None = None,
    prf_url: str | None = None,
) -> Path:
    """Prepare one sector, camera and CCD (its FFIs, or one TESScut ``cutout``).

    ``prf_dir``, ``prf_cache``, ``prf_url``: see :func:`prepare_photometry`; the folder of
    the PRF used is recorded in the file's settings (``"prf"``; ``"analytic"`` for the
    analytic PRF).

    Returns
    -------
    pathlib.Path
        The HDF5 file.
    """
    folder = Path(folder)
    out = Path(output) if output else folder / hdf5_name(sector, camera, ccd, _tag(cutout))
    part = out.with_name(out.name + ".part")
    if not overwrite and _complete(out):
        log.info("Already done: %s", out)
        return out
    if overwrite:
        out.unlink(missing_ok=True)
        part.unlink(missing_ok=True)
    t_setup = time.perf_counter()
    bgs, mos = _settings(settings)
    prf_dir = resolve_prf_dir(
        prf_dir, sector, camera, ccd, cache_dir=prf_cache, url=prf_url, progress=progress
    )
    if cutout is None:
        frames, unreadable = collect_frames(folder, sector, camera, ccd)
    else:
        frames, unreadable = cutout_frames(Path(cutout)), []
    n = len(frames)
    first = load_frame(frames[0].path, frames[0].index)
    shape, origin = first.data.shape, first.origin
    cadence = _cadence(frames, first)
    window = bgs.smoothing_window(cadence)
    log.info(
        "Sector %d camera %d CCD %d: %d frames of %dx%d px at %s, %.0f-s cadence, background "
        "smoothed over %d frames",
        sector,
        camera,
        ccd,
        n,
        shape[0],
        shape[1],
        origin,
        cadence,
        window,
    )
    stars = _stars(folder, sector, camera, ccd, first, prf_dir, mos, bgs)
    method = _background_method(frames[0].path, first, stars, bgs)
    stamps = _time_stamps(folder, sector, camera, ccd, frames, first)
    all_settings = {
        "background": bgs.as_dict(),
        "background_method": method,
        "motion": mos.as_dict(),
        "smoothing_frames": window,
        "prf": prf_dir or ANALYTIC,
        "starlight_tmag_limit": STARLIGHT_TMAG_LIMIT,
    }
    start = resume_point(part, n, shape, all_settings, stars.ref_rows.size)
    if start == 0:
        attrs = _attributes(
            (sector, camera, ccd),
            frames,
            first,
            cutout,
            stamps,
            cadence=cadence,
            settings=all_settings,
        )
        start_part(
            part,
            attrs,
            first=first,
            frames=frames,
            errors=stamps.errors,
            quality=stamps.quality,
            geometry=bg.MeshGeometry(shape, bgs.box_size, bgs.binning),
            n_ref=stars.ref_rows.size,
            unreadable=unreadable,
        )
    context = {
        "background_settings": bgs,
        "shape": shape,
        "origin": origin,
        "camera": camera,
        "ccd": ccd,
        "starlight": stars.starlight,
        "star_model": stars.model,
        "ref_rows": stars.ref_rows,
        "ref_cols": stars.ref_cols,
        "centroid_half": mos.centroid_half,
    }
    t_stream = time.perf_counter()
    stream_frames(part, frames, start, window, context, workers, progress)
    if n - start:
        _log_speed(n - start, t_setup, t_stream, workers)
    finish_part(part, mos, stars.ref_rows, stars.ref_cols, prf_dir)
    finish_file(part, out)
    log.info("Wrote %s", out)
    return out


def _background_method(path: Path, first, stars: _Stars, bgs: bg.BackgroundSettings) -> str:
    """The background method of the region, logged; checks the region is large enough.

    Raises
    ------
    BackgroundError
        When the fit is chosen and the first frame has too few usable pixels even for a
        sky alone.
    """
    if stars.model is None:
        if bgs.method == small.FIT:
            log.warning("%s: no catalog, so no stars to fit: the mesh background", path.name)
        return small.MESH
    usable = small.usable_pixels(first.data, bgs)
    if usable < bgs.fit_pixels_per_parameter:
        shape = first.data.shape
        raise small.BackgroundError(
            path,
            f"{shape[0]}x{shape[1]} px with {usable} usable (unsaturated) pixel(s): too small "
            f"to estimate the sky background (at least {bgs.fit_pixels_per_parameter:g} "
            "needed, [prepare.background] fit_pixels_per_parameter)",
        )
    log.info(
        "Background: sky fitted per frame with the PRFs of %d star(s) (%dx%d px region, %d "
        "usable pixels)",
        stars.model.n_free,
        *first.data.shape,
        usable,
    )
    return small.FIT


def _tag(cutout: Path | None) -> str | None:
    """The file-name tag of a TESScut cutout's prepared file (None for FFIs)."""
    if cutout is None:
        return None
    name = parse_cutout_name(cutout)
    return f"tesscut_{name.tag}" if name is not None else None


def _complete(out: Path) -> bool:
    """Whether the prepared file exists and is complete."""
    if not out.exists():
        return False
    with h5py.File(out, "r") as h5:
        return bool(h5.attrs.get("complete", False))


def _cadence(frames: list[FrameInfo], first) -> float:
    """The frames' cadence [s], rounded to the nearest of :data:`CADENCES`."""
    cadence = (
        float(np.median(np.diff([f.tstart for f in frames])) * 86400)
        if len(frames) > 1
        else float(first.header.get("TIMEDEL", 1800 / 86400) * 86400)
    )
    return float(min(CADENCES, key=lambda c: abs(c - cadence)))


def _stars(
    folder: Path,
    sector: int,
    camera: int,
    ccd: int,
    first,
    prf_dir,
    mos: MotionSettings,
    bgs: bg.BackgroundSettings,
) -> _Stars:
    """The stars of the region.

    The starlight model (or the fit's stars) for the background, the reference stars for
    the jitter.
    """
    shape, origin = first.data.shape, first.origin
    catalog = load_catalog(catalog_path(folder, sector, camera, ccd))
    reference_wcs = wcs_from_string(science_wcs_string(first))
    if catalog is None:
        log.warning(
            "No catalog for sector %d camera %d CCD %d: sources are masked from the "
            "images alone, and the jitter comes from the per-frame WCS",
            sector,
            camera,
            ccd,
        )
        return _Stars(None, np.empty(0), np.empty(0))
    cols, rows = reference_wcs.all_world2pix(catalog["ra"], catalog["decl"], 0, quiet=True)
    prf = load_prf(prf_dir, sector, camera, ccd)
    near = (
        (rows > origin[0] - 10)
        & (rows < origin[0] + shape[0] + 10)
        & (cols > origin[1] - 10)
        & (cols < origin[1] + shape[1] + 10)
    )
    flux = tmag_to_flux(catalog["tmag"][near])
    starlight = prf.render(rows[near], cols[near], flux, shape, origin).astype(np.float32)
    model = None
    if small.choose_method(bgs, first.data, first.uncertainty, starlight) == small.FIT:
        model = small.star_model(
            prf, rows[near], cols[near], flux, shape, origin, bgs.fit_max_stars
        )
    chosen = select_reference_stars(
        rows[near], cols[near], catalog["tmag"][near], shape, origin, mos
    )
    ref_rows, ref_cols = rows[near][chosen], cols[near][chosen]
    log.info(
        "Catalog: %d stars on the region, %d reference stars for the jitter",
        int(near.sum()),
        ref_rows.size,
    )
    return _Stars(starlight, ref_rows, ref_cols, model)


@dataclass(frozen=True)
class _TimeStamps:
    """Corrections of the frames' time stamps and the quality flags transferred from TPFs."""

    errors: dict[str, float]
    readout_delay: float
    quality: np.ndarray
    n_tpfs: int


def _time_stamps(
    folder: Path, sector: int, camera: int, ccd: int, frames: list[FrameInfo], first
) -> _TimeStamps:
    """The time-stamp errors at the exposures' start, middle and end [d], and TPF quality."""
    data_rel = frames[0].data_rel
    procver = frames[0].procver
    delay = readout_delay(first.header, camera, ccd)
    errors = {
        pos: stamp_error(data_rel, procver, camera, ccd, pos, readout=delay) / 86400.0
        if data_rel
        else 0.0
        for pos in ("start", "mid", "end")
    }
    quality_from_tpfs, n_tpfs = transfer_tpf_quality(
        folder,
        sector,
        camera,
        ccd,
        np.array([f.tstart - errors["start"] - f.barycorr for f in frames]),
        np.array([f.tstop - errors["end"] - f.barycorr for f in frames]),
    )
    return _TimeStamps(errors, delay, quality_from_tpfs, n_tpfs)


def _attributes(
    ccd_id: tuple[int, int, int],
    frames: list[FrameInfo],
    first,
    cutout: Path | None,
    stamps: _TimeStamps,
    *,
    cadence: float,
    settings: dict,
) -> dict:
    """The attributes of a new prepared file."""
    sector, camera, ccd = ccd_id
    data_rel = frames[0].data_rel
    procver = frames[0].procver
    return {
        "format_version": FORMAT_VERSION,
        "pipeline": PIPELINE_NAME,
        "pipeline_version": __version__,
        "sector": sector,
        "camera": camera,
        "ccd": ccd,
        "cadence": cadence,
        "data_rel": data_rel if data_rel is not None else -1,
        "procver": procver or "",
        "origin": first.origin,
        "shape": first.data.shape,
        "n_frames": len(frames),
        "settings": json.dumps(settings),
        "complete": False,
        "frames_done": 0,
        "time_offset_corrected": bool(stamps.errors["mid"]),
        "time_offset": stamps.errors["mid"] * 86400.0,
        "readout_delay": stamps.readout_delay,
        "simulated": bool(first.header.get("SIMDATA", False)),
        "quality_from_tpfs": stamps.n_tpfs,
        "source": "tesscut" if cutout is not None else "ffi",
        "source_file": Path(cutout).name if cutout is not None else "",
        "background_method": settings["background_method"],
    }


def _log_speed(streamed: int, t_setup: float, t_stream: float, workers: int | None) -> None:
    elapsed = time.perf_counter() - t_stream
    log.info(
        "Streamed %d frames in %.1f s (%.2f s per frame, %d worker(s)); set-up took %.1f s",
        streamed,
        elapsed,
        elapsed / streamed,
        workers or os.cpu_count() or 1,
        t_stream - t_setup,
    )
