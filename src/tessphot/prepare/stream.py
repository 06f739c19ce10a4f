"""Streaming the frames of one CCD through the workers into the ``.part`` file.

The main process receives the frames in time order, smooths the background meshes in time
over a sliding window, subtracts the background, and writes blocks of frames aligned with
the HDF5 chunks (:data:`~tessphot.prepare.cube.CHUNK_TIME` frames). Memory is bounded by one
block plus the window, whatever the number of frames. The file records how many frames are
done, so a killed run resumes from the last written block.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from pathlib import Path

import h5py
import numpy as np

from tessphot.logs import progress_bar
from tessphot.prepare import background as bg
from tessphot.prepare.cube import CHUNK_TIME
from tessphot.prepare.flags import BAD_QUALITY_BITS, EXCLUDED_FRAME_QUALITY, PixelFlags
from tessphot.prepare.frames import FrameInfo
from tessphot.prepare.smoothing import smooth_in_time, smoothing_window
from tessphot.prepare.worker import init_worker, process_frame

log = logging.getLogger(__name__)

#: Regions of at most this many pixels are processed in the main process [px].
INLINE_REGION_PIXELS = 64 * 64


def stream_frames(
    part: Path,
    frames: list[FrameInfo],
    start: int,
    window: int,
    context: dict,
    workers: int | None,
    progress: bool,
) -> None:
    """Process frames ``start``.. in order, writing aligned blocks of CHUNK_TIME frames.

    Parameters
    ----------
    part : pathlib.Path
        The ``.part`` file, with its layout and per-frame times written.
    frames : list of FrameInfo
        All frames of the CCD, in time order.
    start : int
        The first frame not yet written.
    window : int
        Length of the background's smoothing window [frames].
    context : dict
        What every frame shares (:func:`tessphot.prepare.worker.init_worker`).
    workers : int or None
        Worker processes (None: one per CPU).
    progress : bool
        Show a progress bar.
    """
    n = len(frames)
    if start >= n:
        return
    half = window // 2
    shape = context["shape"]
    bgs = context["background_settings"]
    geometry = bg.MeshGeometry(shape, bgs.box_size, bgs.binning)
    with h5py.File(part, "r+") as h5:
        meshes = np.array(h5["background_mesh"][:], dtype=np.float64)
        mesh_errs = np.array(h5["background_mesh_err"][:], dtype=np.float64)
        valid = np.zeros(n, dtype=bool)
        valid[:start] = np.all(np.isfinite(meshes[:start]), axis=(1, 2)) & np.any(
            meshes[:start] != 0, axis=(1, 2)
        )
        quality = h5["quality"][:]
        times = h5["time"][:]
        sum_acc, sum_cnt = _sums_of_written_frames(h5, start, quality)
        pending: deque[dict] = deque()
        block: list[dict] = []
        pool, results = _results(frames, start, context, workers)
        bar = progress_bar(
            total=n,
            initial=start,
            desc=f"prepare {part.name.split('.')[0]}",
            unit="frame",
            enabled=progress,
        )
        try:
            for result in results:
                k = result["index"]
                _receive(result, frames, quality, meshes, mesh_errs, valid)
                pending.append(result)
                # Finish every frame whose whole smoothing window has arrived (the window
                # is shifted inwards at the start and after gaps: such a frame needs 2 half).
                while pending and k >= smoothing_window(times, pending[0]["index"], half)[1] - 1:
                    done = pending.popleft()
                    block.append(
                        finish_frame(done, meshes, mesh_errs, times, valid, half, geometry, bgs)
                    )
                    if len(block) == CHUNK_TIME or block[-1]["index"] == n - 1:
                        write_block(h5, block, quality, sum_acc, sum_cnt, meshes, mesh_errs)
                        block = []
                bar.update(1)
        finally:
            bar.close()
            if pool is not None:
                pool.terminate()
                pool.join()
    _report_missing(part, frames, meshes, quality)


def _report_missing(part: Path, frames, meshes: np.ndarray, quality: np.ndarray) -> None:
    """One warning for the frames without a background estimate of their own."""
    imaged = (quality & EXCLUDED_FRAME_QUALITY) == 0
    missing = imaged & ~np.all(np.isfinite(meshes), axis=(1, 2))
    if missing.any():
        log.warning(
            "%s: %d of %d frames had too few sky pixels for a background estimate (e.g. "
            "%s): theirs comes from the neighbouring frames, NaN where none had one",
            part.name.split(".")[0],
            int(missing.sum()),
            len(frames),
            frames[int(np.argmax(missing))].path.name,
        )


def _sums_of_written_frames(h5, start: int, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The average image's sum and count over the frames before ``start``, from the images.

    Not read from the stored accumulators: a run killed while writing a block may have
    stored them with that block added though its progress record says otherwise.
    """
    shape = h5["sum_accumulator"].shape
    sum_acc = np.zeros(shape, dtype=np.float64)
    sum_cnt = np.zeros(shape, dtype=np.int32)
    for k0 in range(0, start, CHUNK_TIME):
        images = h5["images"][k0 : min(k0 + CHUNK_TIME, start)]
        for k, image in enumerate(images, start=k0):
            _accumulate(sum_acc, sum_cnt, image, quality[k])
    return sum_acc, sum_cnt


def _accumulate(sum_acc: np.ndarray, sum_cnt: np.ndarray, image: np.ndarray, quality) -> None:
    """Add a frame to the average image's sum and count (frames of bad quality are not)."""
    if quality & BAD_QUALITY_BITS:
        return
    good = np.isfinite(image)
    sum_acc += np.where(good, image, 0.0)
    sum_cnt += good


def _results(frames: list[FrameInfo], start: int, context: dict, workers: int | None):
    """The worker pool (None when the frames are processed here) and its results in order."""
    tasks = [
        (k, str(f.path), f.index, f.cadenceno, f.tstart, f.time) for k, f in enumerate(frames)
    ][start:]
    shape = context["shape"]
    n_workers = workers or max(1, (os.cpu_count() or 1))
    if shape[0] * shape[1] <= INLINE_REGION_PIXELS:
        n_workers = 1  # small regions (cutouts): worker processes cost more than they save
    if n_workers > 1:
        pool = multiprocessing.get_context("spawn").Pool(
            n_workers, initializer=init_worker, initargs=(context,)
        )
        return pool, pool.imap(process_frame, tasks, chunksize=1)
    init_worker(context)
    return None, map(process_frame, tasks)


def _receive(result: dict, frames, quality, meshes, mesh_errs, valid) -> None:
    """Book one frame's result: its mesh, or the quality flag of an unusable frame."""
    k = result["index"]
    if result.get("error"):
        log.error("Frame flagged and left empty: %s", result["error"])
        quality[k] |= EXCLUDED_FRAME_QUALITY
    elif result["image"] is None:
        log.warning("Frame %s excluded: %s", frames[k].path.name, "; ".join(result["reasons"]))
        quality[k] |= EXCLUDED_FRAME_QUALITY
    else:
        meshes[k] = result["mesh"]
        mesh_errs[k] = result["mesh_err"]
        # A frame without an estimate (too few sky pixels) takes its neighbours'.
        valid[k] = bool(np.all(np.isfinite(result["mesh"])))
        quality[k] |= 0


def finish_frame(
    result, meshes, mesh_errs, times, valid, half, geometry, bgs: bg.BackgroundSettings
) -> dict:
    """Subtract the time-smoothed background from one frame.

    Returns
    -------
    dict
        ``index``, ``flags``, ``wcs``, ``centroids``, and the ``image``, its ``err`` and
        the ``background`` (NaN for a frame without image).
    """
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
    mesh, mesh_err = smooth_in_time(meshes, mesh_errs, times, valid, k, half, bgs.curvature_sigma)
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


def write_block(h5, block, quality, sum_acc, sum_cnt, meshes, mesh_errs) -> None:
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
        _accumulate(sum_acc, sum_cnt, b["image"], quality[b["index"]])
    h5["quality"][:] = quality
    h5["sum_accumulator"][:] = sum_acc
    h5["sum_count"][:] = sum_cnt
    h5.attrs["frames_done"] = k1
    h5.flush()
