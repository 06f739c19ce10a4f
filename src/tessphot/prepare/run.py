"""The prepare stage: all work that needs whole FFIs, streamed into one HDF5 file per CCD.

One pass over the frames, in parallel worker processes: read the FFI, flag pixels, estimate
the background mesh, measure the reference stars' centroids. The main process receives the
frames in time order, smooths the background meshes in time over a sliding window, subtracts
the background, and writes blocks of frames aligned with the HDF5 chunks. Memory is bounded by
one block plus the window, whatever the number of frames. The output is written as
``<name>.hdf5.part`` and renamed when complete; a killed run resumes from the last written
block.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
import warnings
from collections import deque
from pathlib import Path

import h5py
import numpy as np
from astropy.wcs import FITSFixedWarning
from tqdm.auto import tqdm

from tessphot.catalog.make import catalog_path
from tessphot.catalog.sqlite_catalog import CatalogDB
from tessphot.constants import tmag_to_flux
from tessphot.geometry import shift_wcs
from tessphot.io import FFIError
from tessphot.io.tesscut import find_cutouts, parse_cutout_name
from tessphot.prepare import background as bg
from tessphot.prepare.cube import CHUNK_TIME, FORMAT_VERSION, create_layout, hdf5_name
from tessphot.prepare.flags import EXCLUDED_FRAME_QUALITY, PixelFlags, manual_exclude
from tessphot.prepare.frames import (
    FrameInfo,
    collect_frames,
    cutout_frames,
    load_frame,
    sectors_cameras_ccds,
)
from tessphot.prepare.motion import (
    MotionSettings,
    calibrate_centroids,
    fit_motion,
    measure_centroids,
    motion_from_wcs,
    select_reference_stars,
    wcs_from_string,
)
from tessphot.prepare.tpf_quality import transfer_tpf_quality
from tessphot.prf import ANALYTIC, load_prf
from tessphot.prf.download import resolve_prf_dir
from tessphot.timefix import readout_delay, stamp_error
from tessphot.version import PIPELINE_NAME, __version__

log = logging.getLogger(__name__)

#: Catalogued stars fainter than this are left out of the starlight model [Tmag].
STARLIGHT_TMAG_LIMIT = 19.0
#: Regions of at most this many pixels are processed in the main process [px].
INLINE_REGION_PIXELS = 64 * 64
#: SPOC quality bits that make a frame unsuitable for the average image and as reference.
BAD_QUALITY_BITS = 1 | 2 | 4 | 8 | 32 | 128 | 4096


def load_catalog(path: Path, tmag_limit: float = STARLIGHT_TMAG_LIMIT) -> np.ndarray | None:
    """Stars of a catalog file (positions at the sector epoch); None when there is none."""
    if not path.is_file():
        return None
    with CatalogDB(path) as db:
        return db.stars(tmag_max=tmag_limit)


# ------------------------------------------------------------------------------------------
# Worker side
_CONTEXT: dict = {}


def _init_worker(context: dict) -> None:
    _CONTEXT.clear()
    _CONTEXT.update(context)
    warnings.simplefilter("ignore", FITSFixedWarning)


def _process_frame(task: tuple[int, str, int | None, int | None, float, float]) -> dict:
    """Everything that needs the whole frame: runs in a worker process."""
    index, path, cube_index, cadenceno, tstart, time = task
    ctx = _CONTEXT
    settings: bg.BackgroundSettings = ctx["background_settings"]
    shape, origin = ctx["shape"], ctx["origin"]
    try:
        ffi = load_frame(path, cube_index)
        if ffi.origin != origin or ffi.data.shape != shape:
            raise FFIError(path, f"region {ffi.origin} {ffi.data.shape} differs from the others")
    except (FFIError, OSError) as err:
        return {"index": index, "error": str(err)}
    image = ffi.data  # float32 throughout: 7 digits are ample for e-/s
    uncert = ffi.uncertainty
    exclude, reasons = manual_exclude(
        image,
        ctx["camera"],
        ctx["ccd"],
        cadenceno,
        tstart,
        time,
        origin,
        simulated=bool(ffi.header.get("SIMDATA", False)),
    )
    flags = np.zeros(shape, dtype=np.uint8)
    flags[exclude] |= PixelFlags.ManualExclude
    result = {"index": index, "reasons": reasons, "header": _header_values(ffi)}
    if exclude.all():
        result.update(image=None, uncert=None, flags=flags)
        return result
    starlight = ctx["starlight"]
    est = bg.estimate_background(image, uncert, starlight, settings, exclude=exclude)
    flags[est.not_used] |= PixelFlags.NotUsedForBackground
    flags[est.anomalous] |= PixelFlags.BackgroundShenanigans
    centroids = measure_centroids(
        image - est.model, ctx["ref_rows"], ctx["ref_cols"], origin, ctx["centroid_half"]
    )
    image[exclude] = np.nan
    result.update(
        image=image,
        uncert=uncert,
        flags=flags,
        mesh=est.mesh.astype(np.float32),
        mesh_err=est.mesh_err.astype(np.float32),
        centroids=centroids,
        wcs=_science_wcs_string(ffi),
    )
    return result


def _header_values(ffi) -> dict:
    return {"quality": ffi.quality, "barycorr": ffi.barycorr or 0.0}


#: The last WCS written and its string: the frames of a TESScut cube share one WCS object.
_WCS_STRING: dict = {}


def _science_wcs_string(ffi) -> str:
    """The frame's WCS in science-area pixel coordinates."""
    key = (id(ffi.wcs), ffi.origin)
    if _WCS_STRING.get("key") == key and _WCS_STRING.get("wcs") is ffi.wcs:
        return _WCS_STRING["text"]
    try:
        text = shift_wcs(ffi.wcs, ffi.origin[0], ffi.origin[1]).to_header_string(relax=True)
    except Exception:  # a WCS that cannot be written is left out (the frame stays usable)
        return ""
    _WCS_STRING.update(key=key, wcs=ffi.wcs, text=text)
    return text


# ------------------------------------------------------------------------------------------
# Main process
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
    """Run the prepare stage for every (sector, camera, CCD) with FFIs in the input folder,
    and for every TESScut cutout (each its own small region, ``sectorNNN_cameraC_ccdD_<RA>_
    <Dec>_<W>x<H>.hdf5``).

    ``prf_dir`` is a folder of SPOC PRF models, ``"archive"`` (the SPOC models in the
    download cache ``prf_cache``, downloaded from ``prf_url`` when missing:
    :func:`tessphot.prf_download.resolve_prf_dir`) or None (the analytic PRF).

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
    """Prepare one sector, camera and CCD (its FFIs, or one TESScut ``cutout``); returns the
    path of the HDF5 file. ``prf_dir``, ``prf_cache``, ``prf_url``: see
    :func:`prepare_photometry`; the folder of the PRF used is recorded in the file's
    settings (``"prf"``; ``"analytic"`` for the analytic PRF)."""
    folder = Path(folder)
    tag = None
    if cutout is not None:
        name = parse_cutout_name(cutout)
        tag = f"tesscut_{name.tag}" if name is not None else None
    out = Path(output) if output else folder / hdf5_name(sector, camera, ccd, tag)
    part = out.with_name(out.name + ".part")
    if out.exists() and not overwrite:
        with h5py.File(out, "r") as h5:
            if h5.attrs.get("complete", False):
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
    cadence = (
        float(np.median(np.diff([f.tstart for f in frames])) * 86400)
        if n > 1
        else float(first.header.get("TIMEDEL", 1800 / 86400) * 86400)
    )
    cadence = float(min((20, 120, 200, 600, 1800), key=lambda c: abs(c - cadence)))
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

    # Stars: the starlight model for the background, the reference stars for the jitter.
    catalog = load_catalog(catalog_path(folder, sector, camera, ccd))
    reference_wcs = wcs_from_string(_science_wcs_string(first))
    starlight, ref_rows, ref_cols = None, np.empty(0), np.empty(0)
    if catalog is None:
        log.warning(
            "No catalog for sector %d camera %d CCD %d: sources are masked from the "
            "images alone, and the jitter comes from the per-frame WCS",
            sector,
            camera,
            ccd,
        )
    else:
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
        chosen = select_reference_stars(
            rows[near], cols[near], catalog["tmag"][near], shape, origin, mos
        )
        ref_rows, ref_cols = rows[near][chosen], cols[near][chosen]
        log.info(
            "Catalog: %d stars on the region, %d reference stars for the jitter",
            int(near.sum()),
            ref_rows.size,
        )

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
    geometry = bg.MeshGeometry(shape, bgs.box_size, bgs.binning)
    all_settings = {
        "background": bgs.as_dict(),
        "motion": mos.as_dict(),
        "smoothing_frames": window,
        "prf": prf_dir or ANALYTIC,
        "starlight_tmag_limit": STARLIGHT_TMAG_LIMIT,
    }

    start = 0
    if part.exists():
        try:
            with h5py.File(part, "r") as h5:
                same = (
                    h5.attrs.get("n_frames") == n
                    and tuple(h5.attrs["shape"]) == shape
                    and json.loads(h5.attrs["settings"]) == all_settings
                    and h5["centroids"].shape[1] == ref_rows.size
                )
                start = int(h5.attrs.get("frames_done", 0)) if same else 0
        except (OSError, KeyError):
            start = 0
        if start == 0:
            part.unlink()
        else:
            log.info("Resuming %s after %d of %d frames", part.name, start, n)
    if start == 0:
        with h5py.File(part, "w") as h5:
            create_layout(h5, n, shape, geometry.mesh_shape, ref_rows.size)
            mesh_attrs = h5["background_mesh"].attrs
            mesh_attrs["box_size"] = [b * geometry.binning for b in geometry.binned_box]
            mesh_attrs["centre_rows"], mesh_attrs["centre_cols"] = geometry.centres
            attrs = h5.attrs
            attrs.update(
                {
                    "format_version": FORMAT_VERSION,
                    "pipeline": PIPELINE_NAME,
                    "pipeline_version": __version__,
                    "sector": sector,
                    "camera": camera,
                    "ccd": ccd,
                    "cadence": cadence,
                    "data_rel": data_rel if data_rel is not None else -1,
                    "procver": procver or "",
                    "origin": origin,
                    "shape": shape,
                    "n_frames": n,
                    "settings": json.dumps(all_settings),
                    "complete": False,
                    "frames_done": 0,
                    "time_offset_corrected": bool(errors["mid"]),
                    "time_offset": errors["mid"] * 86400.0,
                    "readout_delay": delay,
                    "simulated": bool(first.header.get("SIMDATA", False)),
                    "quality_from_tpfs": n_tpfs,
                    "source": "tesscut" if cutout is not None else "ffi",
                    "source_file": Path(cutout).name if cutout is not None else "",
                }
            )
            for key in ("NUM_FRM", "NREADOUT", "CRMITEN", "CRBLKSZ", "CRSPOC"):
                attrs[key.lower()] = first.header.get(key, -1)
            attrs["exposure_time"] = (first.exposure or 0.0) * 86400.0
            attrs["gain"] = [first.header.get(f"GAIN{o}", np.nan) for o in "ABCD"]
            attrs["read_noise"] = [first.header.get(f"READNOI{o}", np.nan) for o in "ABCD"]
            attrs["unreadable_files"] = json.dumps([str(p) for p, _ in unreadable])
            h5["imagespaths"][:] = [f.path.name for f in frames]
            h5["time_start"][:] = [f.tstart - errors["start"] for f in frames]
            h5["time_stop"][:] = [f.tstop - errors["end"] for f in frames]
            h5["time"][:] = [f.time - errors["mid"] for f in frames]
            h5["timecorr"][:] = [f.barycorr for f in frames]
            h5["cadenceno"][:] = [
                f.cadenceno if f.cadenceno is not None else k + 1 for k, f in enumerate(frames)
            ]
            h5["quality"][:] = np.array([f.quality for f in frames]) | quality_from_tpfs

    context = {
        "background_settings": bgs,
        "shape": shape,
        "origin": origin,
        "camera": camera,
        "ccd": ccd,
        "starlight": starlight,
        "ref_rows": ref_rows,
        "ref_cols": ref_cols,
        "centroid_half": mos.centroid_half,
    }
    t_stream = time.perf_counter()
    _stream(part, frames, start, window, context, workers, progress)
    streamed = n - start
    if streamed:
        elapsed = time.perf_counter() - t_stream
        log.info(
            "Streamed %d frames in %.1f s (%.2f s per frame, %d worker(s)); set-up took %.1f s",
            streamed,
            elapsed,
            elapsed / streamed,
            workers or os.cpu_count() or 1,
            t_stream - t_setup,
        )
    _finish(part, frames, mos, ref_rows, ref_cols, prf_dir)
    os.replace(part, out)
    log.info("Wrote %s", out)
    return out


def _stream(
    part: Path,
    frames: list[FrameInfo],
    start: int,
    window: int,
    context: dict,
    workers: int | None,
    progress: bool,
) -> None:
    """Process frames ``start``.. in order, writing aligned blocks of CHUNK_TIME frames."""
    n = len(frames)
    if start >= n:
        return
    half = window // 2
    shape = context["shape"]
    bgs = context["background_settings"]
    settings = context["background_settings"]
    geometry = bg.MeshGeometry(shape, settings.box_size, settings.binning)
    with h5py.File(part, "r+") as h5:
        meshes = np.array(h5["background_mesh"][:], dtype=np.float64)
        mesh_errs = np.array(h5["background_mesh_err"][:], dtype=np.float64)
        valid = np.zeros(n, dtype=bool)
        valid[:start] = np.all(np.isfinite(meshes[:start]), axis=(1, 2)) & np.any(
            meshes[:start] != 0, axis=(1, 2)
        )
        quality = h5["quality"][:]
        times = h5["time"][:]
        sum_acc = h5["sum_accumulator"][:]
        sum_cnt = h5["sum_count"][:]
        pending: deque[dict] = deque()
        block: list[dict] = []
        tasks = [
            (k, str(f.path), f.index, f.cadenceno, f.tstart, f.time) for k, f in enumerate(frames)
        ][start:]
        n_workers = workers or max(1, (os.cpu_count() or 1))
        if shape[0] * shape[1] <= INLINE_REGION_PIXELS:
            n_workers = 1  # small regions (cutouts): worker processes cost more than they save
        if n_workers > 1:
            pool = multiprocessing.get_context("spawn").Pool(
                n_workers, initializer=_init_worker, initargs=(context,)
            )
            results = pool.imap(_process_frame, tasks, chunksize=1)
        else:
            pool = None
            _init_worker(context)
            results = map(_process_frame, tasks)
        bar = tqdm(
            total=n,
            initial=start,
            desc=f"prepare {part.name.split('.')[0]}",
            unit="frame",
            disable=not progress,
        )
        try:
            for result in results:
                k = result["index"]
                if result.get("error"):
                    log.error("Frame flagged and left empty: %s", result["error"])
                    quality[k] |= EXCLUDED_FRAME_QUALITY
                elif result["image"] is None:
                    log.warning(
                        "Frame %s excluded: %s", frames[k].path.name, "; ".join(result["reasons"])
                    )
                    quality[k] |= EXCLUDED_FRAME_QUALITY
                else:
                    meshes[k] = result["mesh"]
                    mesh_errs[k] = result["mesh_err"]
                    valid[k] = True
                    quality[k] |= 0
                pending.append(result)
                # Finish every frame whose whole smoothing window has arrived.
                # (the window is shifted inwards at the start: frame 0 needs frame 2 half).
                while pending and k >= min(max(pending[0]["index"] + half, 2 * half), n - 1):
                    done = pending.popleft()
                    block.append(
                        _finish_frame(done, meshes, mesh_errs, times, valid, half, geometry, bgs)
                    )
                    if len(block) == CHUNK_TIME or block[-1]["index"] == n - 1:
                        _write_block(h5, block, quality, sum_acc, sum_cnt, meshes, mesh_errs)
                        block = []
                bar.update(1)
        finally:
            bar.close()
            if pool is not None:
                pool.terminate()
                pool.join()


def _finish_frame(
    result, meshes, mesh_errs, times, valid, half, geometry, bgs: bg.BackgroundSettings
) -> dict:
    """Subtract the time-smoothed background from one frame."""
    k = result["index"]
    shape = geometry.shape
    out = {
        "index": k,
        "flags": result.get("flags"),
        "wcs": result.get("wcs", ""),
        "centroids": result.get("centroids"),
    }
    if result.get("image") is None:
        nan = np.full(shape, np.nan, dtype=np.float32)
        out.update(image=nan, err=nan, background=nan)
        if out["flags"] is None:
            out["flags"] = np.full(shape, PixelFlags.ManualExclude, dtype=np.uint8)
        return out
    mesh, mesh_err = bg.smooth_in_time(
        meshes, mesh_errs, times, valid, k, half, bgs.curvature_sigma
    )
    background = geometry.evaluate(mesh).astype(np.float32)
    # The uncertainty is smooth and only added in quadrature: the binned grid suffices.
    background_err = geometry.evaluate(mesh_err, binned=True).astype(np.float32)
    err = result["uncert"] ** 2
    err += geometry.expand(background_err**2)
    # float32 throughout: 7 significant digits are ample for fluxes in e-/s.
    out.update(image=result["image"] - background, err=np.sqrt(err), background=background)
    excluded = (out["flags"] & PixelFlags.ManualExclude) > 0
    for key in ("image", "err"):
        out[key][excluded] = np.nan
    return out


#: Block buffers of the main process, reused from block to block.
_BLOCK_BUFFERS: dict[str, np.ndarray] = {}


def _write_block(h5, block, quality, sum_acc, sum_cnt, meshes, mesh_errs) -> None:
    """Write finished frames (a chunk-aligned block) and the run's progress."""
    k0, k1 = block[0]["index"], block[-1]["index"] + 1
    for name, key in (
        ("images", "image"),
        ("images_err", "err"),
        ("backgrounds", "background"),
        ("pixel_flags", "flags"),
    ):
        # One reused buffer per cube (no new block-sized allocation for every block).
        buffer = _BLOCK_BUFFERS.get(name)
        if buffer is None or buffer.shape[1:] != block[0][key].shape:
            buffer = np.empty((CHUNK_TIME, *block[0][key].shape), dtype=h5[name].dtype)
            _BLOCK_BUFFERS[name] = buffer
        for j, b in enumerate(block):
            buffer[j] = b[key]
        h5[name][k0:k1] = buffer[: len(block)]
    h5["wcs"][k0:k1] = [b["wcs"] for b in block]
    h5["background_mesh"][k0:k1] = meshes[k0:k1]
    h5["background_mesh_err"][k0:k1] = mesh_errs[k0:k1]
    for b in block:
        if b["centroids"] is not None and h5["centroids"].shape[1]:
            h5["centroids"][b["index"]] = b["centroids"]
        if quality[b["index"]] & BAD_QUALITY_BITS:
            continue
        good = np.isfinite(b["image"])
        sum_acc += np.where(good, b["image"], 0.0)
        sum_cnt += good
    h5["quality"][:] = quality
    h5["sum_accumulator"][:] = sum_acc
    h5["sum_count"][:] = sum_cnt
    h5.attrs["frames_done"] = k1
    h5.flush()


def _finish(
    part: Path,
    frames: list[FrameInfo],
    mos: MotionSettings,
    ref_rows: np.ndarray,
    ref_cols: np.ndarray,
    prf_dir: str | None,
) -> None:
    """Average image, reference frame and the motion model; mark the file complete."""
    n_ref = ref_rows.size
    with h5py.File(part, "r+") as h5:
        if h5.attrs.get("complete", False):
            return
        n = len(frames)
        quality = h5["quality"][:]
        times = h5["time"][:]
        count = h5["sum_count"][:]
        with np.errstate(invalid="ignore", divide="ignore"):
            sumimage = np.where(count > 0, h5["sum_accumulator"][:] / count, np.nan)
        if "sumimage" in h5:
            del h5["sumimage"]
        h5.create_dataset("sumimage", data=sumimage)
        wcs_strings = h5["wcs"][:].astype(str)
        good = ((quality & BAD_QUALITY_BITS) == 0) & (np.char.str_len(wcs_strings) > 0)
        if not good.any():
            raise RuntimeError(f"{part}: no good frame to serve as astrometric reference")
        mid = 0.5 * (times[0] + times[-1])
        ref = int(np.flatnonzero(good)[np.argmin(np.abs(times[good] - mid))])
        h5.attrs["reference_frame"] = ref
        origin, shape = tuple(h5.attrs["origin"]), tuple(h5.attrs["shape"])
        centre = (origin[0] + (shape[0] - 1) / 2, origin[1] + (shape[1] - 1) / 2)
        motion = np.full((n, 6), np.nan)
        source, model, rms = "wcs", "affine", np.nan
        centroids = h5["centroids"][:] if n_ref else None
        if (
            centroids is not None
            and np.isfinite(centroids[ref]).all(axis=1).sum() >= mos.min_translation
        ):
            source = "stars"
            if mos.calibrate_centroids:
                h5_attrs = h5.attrs
                prf = load_prf(
                    prf_dir, int(h5_attrs["sector"]), int(h5_attrs["camera"]), int(h5_attrs["ccd"])
                )
                centroids = calibrate_centroids(
                    centroids, ref_rows, ref_cols, prf, mos.centroid_half
                )
            rmss = []
            for k in range(n):
                params, model_k, rms_k, _ = fit_motion(centroids[ref], centroids[k], centre, mos)
                motion[k] = params
                model = model_k
                rmss.append(rms_k)
            rms = float(np.nanmedian(rmss))
        else:
            ref_wcs = wcs_from_string(wcs_strings[ref])
            fitted: dict[str, np.ndarray] = {}  # frames with the same WCS (cutouts)
            for k in range(n):
                if wcs_strings[k] not in fitted:
                    frame_wcs = wcs_from_string(wcs_strings[k])
                    fitted[wcs_strings[k]] = (
                        motion_from_wcs(ref_wcs, frame_wcs, shape, origin, centre)
                        if frame_wcs is not None
                        else np.full(6, np.nan)
                    )
                motion[k] = fitted[wcs_strings[k]]
        ds = h5["motion"]
        ds[:] = motion
        ds.attrs.update(
            {
                "centre": centre,
                "model": model,
                "source": source,
                "reference_frame": ref,
                "n_stars": n_ref,
                "rms_residual": rms,
            }
        )
        h5.attrs["complete"] = True
        log.info(
            "Jitter from %s (%s model, %d stars, fit rms %.4f px); reference frame %d",
            source,
            model,
            n_ref,
            rms,
            ref,
        )
