"""The prepare stage: all work that needs whole FFIs, streamed into one HDF5 file per CCD.

One pass over the frames, in parallel worker processes: read the FFI, flag pixels,
estimate the background mesh, measure the reference stars' centroids
(:mod:`tessphot.prepare.worker`); subtract the time-smoothed background, encode and
compress (:mod:`tessphot.prepare.encode`). The main process smooths the background meshes
in time and writes blocks of frames aligned with the HDF5 chunks
(:mod:`tessphot.prepare.stream`), then adds the average image and the motion model
(:mod:`tessphot.prepare.reference`). The output is written as
``<name>.hdf5.part`` and renamed when complete; a killed run resumes from the last written
block (:mod:`tessphot.prepare.output`). This module drives a run for each CCD.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tessphot.config.prepare import EffectivePRFSettings, MotionSettings, StorageSettings
from tessphot.io.errors import FileProblem, TessphotError
from tessphot.io.recognise import InputFile, Inventory, Kind, require, scan
from tessphot.io.tesscut import TESScutError
from tessphot.paths import finish_file
from tessphot.prepare import background as bg
from tessphot.prepare.cube import FORMAT_VERSION, hdf5_name, is_complete
from tessphot.prepare.frames import (
    FrameInfo,
    FrameSetError,
    collect_frames,
    cutout_frames,
    load_frame,
)
from tessphot.prepare.output import resume_point, start_part
from tessphot.prepare.reference import finish_part
from tessphot.prepare.stars import STARLIGHT_TMAG_LIMIT, background_method, region_stars
from tessphot.prepare.stream import stream_frames
from tessphot.prepare.tpf_quality import transfer_tpf_quality
from tessphot.prf import ANALYTIC
from tessphot.prf.download import resolve_prf_dir
from tessphot.timefix import readout_delay, stamp_error
from tessphot.version import PIPELINE_NAME, __version__

log = logging.getLogger(__name__)

#: FFI cadences [s]; the measured cadence is rounded to the nearest.
CADENCES = (20, 120, 200, 600, 1800)


class NothingPrepared(TessphotError):
    """No prepared-data file could be made from the inputs found (each failure was logged)."""


#: Errors that leave one region (a CCD's FFIs or one cutout) out of a prepare run: bad input
#: files, frames that do not belong together, data that defeat an estimate.
REGION_ERRORS = (FileProblem, FrameSetError, ValueError)


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
    ``sectorNNN_cameraC_ccdD_<RA>_<Dec>_<W>x<H>.hdf5``). Inputs are recognised by their
    headers, whatever their names (:mod:`tessphot.io.recognise`).

    A region that fails (a damaged cutout, FFIs that do not belong together, data no
    estimate holds on) is logged in one line and left out; the others go on. The stage ends
    with one line: the regions prepared, and the files and regions left out.

    ``prf_dir`` is a folder of SPOC PRF models, ``"archive"`` (the SPOC models in the
    download cache ``prf_cache``, downloaded from ``prf_url`` when missing:
    :func:`tessphot.prf.download.resolve_prf_dir`) or None (the analytic PRF).

    Returns
    -------
    list of Path
        The prepared-data files written (or already complete).

    Raises
    ------
    FileNotFoundError
        When the folder holds no FFIs or cutouts matching the selection.
    NothingPrepared
        When there were some, but every region failed.
    """
    folder = Path(input_folder)
    inventory = scan(folder)
    targets = _targets(inventory, sectors, cameras, ccds)
    if not targets:
        left = f" (left out: {inventory.left_out_counts()})" if inventory.left_out else ""
        raise FileNotFoundError(
            f"no FFIs or TESScut cutouts matching the selection below {folder}{left}"
        )
    options = {
        "settings": settings,
        "workers": workers,
        "prf_dir": prf_dir,
        "overwrite": overwrite,
        "progress": progress,
        "prf_cache": prf_cache,
        "prf_url": prf_url,
    }
    prepared: list[Path] = []
    outcome = _Outcome()
    for ccd_id, candidates in targets:
        out = _prepare_one(folder, ccd_id, candidates, options, outcome)
        if out is not None:
            prepared.append(out)
    _log_summary(inventory, prepared, outcome)
    if not prepared:
        raise NothingPrepared(
            f"nothing prepared below {folder}: {len(outcome.failed)} region(s) failed "
            "(see the lines above)"
        )
    return prepared


@dataclass
class _Outcome:
    """What went wrong in a prepare run: regions that failed, duplicate cutouts left out."""

    failed: list[str] = field(default_factory=list)
    duplicates: int = 0


def _prepare_one(
    folder: Path, ccd_id: tuple, candidates: list[Path | None], options: dict, outcome: _Outcome
) -> Path | None:
    """Prepare a region from the first of its candidate files that works (None: none did).

    A CCD's FFIs have one candidate (None); a cutout downloaded twice has several.
    """
    for k, cutout in enumerate(candidates):
        try:
            out = prepare_ccd(folder, *ccd_id, cutout=cutout, **options)
        except REGION_ERRORS as err:
            what = cutout.name if cutout is not None else "FFIs of sector {} camera {} CCD {}"
            what = what.format(*ccd_id)
            log.error("Prepare of %s failed, left out: %s", what, _one_line(err))
            outcome.failed.append(what)
            continue
        for other in candidates[k + 1 :]:
            log.info("%s: left out: the same cutout as %s", other, cutout.name)
            outcome.duplicates += 1
        return out
    return None


def _targets(
    inventory: Inventory, sectors, cameras, ccds
) -> list[tuple[tuple[int, int, int], list[Path | None]]]:
    """The regions to prepare: each (sector, camera, CCD) with FFIs, and each cutout.

    Copies of one cutout (the same sector, CCD, position and size, as a browser saves a
    second download) are one region, prepared from the first copy that works.
    """

    def wanted(found: InputFile) -> bool:
        return (
            (not sectors or found.sector in sectors)
            and (not cameras or found.camera in cameras)
            and (not ccds or found.ccd in ccds)
        )

    ffis = sorted({(f.sector, f.camera, f.ccd) for f in inventory.of_kind(Kind.FFI) if wanted(f)})
    targets: list[tuple[tuple[int, int, int], list[Path | None]]] = [(t, [None]) for t in ffis]
    regions: dict[tuple, list[Path | None]] = {}
    for found in inventory.of_kind(Kind.CUTOUT):
        if wanted(found):
            region = (found.sector, found.camera, found.ccd, found.tag)
            if region not in regions:
                regions[region] = []
                targets.append((region[:3], regions[region]))
            regions[region].append(found.path)
    return targets


def _log_summary(inventory: Inventory, prepared: list[Path], outcome: _Outcome) -> None:
    """The stage's last line: regions prepared, regions failed, input files left out."""
    text = f"Prepare: {len(prepared)} region(s) prepared"
    if outcome.failed:
        text += f", {len(outcome.failed)} failed ({', '.join(outcome.failed)})"
    left = len(inventory.left_out) + outcome.duplicates
    if left:
        counts = [inventory.left_out_counts()] if inventory.left_out else []
        if outcome.duplicates:
            counts.append(f"{outcome.duplicates} duplicate cutout(s)")
        text += f"; {left} file(s) left out: {', '.join(counts)}"
    log.log(logging.WARNING if outcome.failed or left else logging.INFO, "%s", text)


def _one_line(err: BaseException) -> str:
    """An error's message on one line."""
    return " ".join(str(err).split()) or type(err).__name__


def _settings(settings: dict | None):
    settings = settings or {}
    try:
        background = bg.BackgroundSettings(**(settings.get("background") or {}))
        motion = MotionSettings(**(settings.get("motion") or {}))
        storage = StorageSettings(**(settings.get("storage") or {}))
        effective = EffectivePRFSettings(**(settings.get("effective_prf") or {}))
    except TypeError as err:
        raise ValueError(f"unknown prepare setting: {err}") from None
    return background, motion, storage, effective


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
    if not overwrite and is_complete(out):
        log.info("Already done: %s", out)
        return out
    if overwrite:
        out.unlink(missing_ok=True)
        part.unlink(missing_ok=True)
    t_setup = time.perf_counter()
    bgs, mos, storage, effective = _settings(settings)
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
    stars = region_stars(folder, sector, camera, ccd, first, prf_dir, mos, bgs)
    method = background_method(frames[0].path, first, stars, bgs)
    stamps = _time_stamps(folder, sector, camera, ccd, frames, first)
    all_settings = {
        "background": bgs.as_dict(),
        "background_method": method,
        "motion": mos.as_dict(),
        "storage": storage.as_dict(),
        "effective_prf": effective.as_dict(),
        "smoothing_frames": window,
        "prf": prf_dir or ANALYTIC,
        "starlight_tmag_limit": STARLIGHT_TMAG_LIMIT,
    }
    attrs = _attributes(
        (sector, camera, ccd), frames, first, cutout, stamps, cadence=cadence, settings=all_settings
    )
    # From here on only the first frame's header is needed: its pixels are let go.
    first = replace(first, data=np.empty((0, 0), np.float32), uncertainty=np.empty((0, 0)))

    def begin() -> None:
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
            storage=storage,
        )

    start = resume_point(part, n, shape, all_settings, stars.ref_rows.size)
    if start == 0:
        begin()
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
        "storage": storage,
    }

    def write(first_frame: int) -> None:
        t_stream = time.perf_counter()
        average = stream_frames(part, frames, first_frame, window, context, workers, progress)
        if n - first_frame:
            _log_speed(n - first_frame, t_setup, t_stream, workers)
        finish_part(part, mos, stars, prf_dir, average, effective)

    _write_or_restart(part, start, write, begin)
    finish_file(part, out)
    log.info("Wrote %s", out)
    return out


def _write_or_restart(
    part: Path, start: int, write: Callable[[int], None], begin: Callable[[], None]
) -> None:
    """Write the frames from ``start`` and finish the part file.

    HDF5 files are not crash-safe: a run killed in the middle of a write can leave a part
    file that opens, and says how far it got, but fails when written to again. Such a
    resumed part file is started anew (``begin``, then every frame).
    """
    try:
        write(start)
    except (OSError, KeyError) as err:
        if start == 0:
            raise
        log.warning("%s: damaged by the interrupted run; starting it anew", part.name)
        log.debug("%s: %s", part.name, err)
        part.unlink(missing_ok=True)
        begin()
        write(0)


def _tag(cutout: Path | None) -> str | None:
    """The file-name tag of a TESScut cutout's prepared file (None for FFIs)."""
    if cutout is None:
        return None
    return f"tesscut_{require(cutout, Kind.CUTOUT, TESScutError).tag}"


def _cadence(frames: list[FrameInfo], first) -> float:
    """The frames' cadence [s], rounded to the nearest of :data:`CADENCES`."""
    cadence = (
        float(np.median(np.diff([f.tstart for f in frames])) * 86400)
        if len(frames) > 1
        else float(first.header.get("TIMEDEL", 1800 / 86400) * 86400)
    )
    return float(min(CADENCES, key=lambda c: abs(c - cadence)))


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
