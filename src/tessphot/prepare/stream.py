"""Streaming the frames of one CCD through the workers into the ``.part`` file.

The main process receives the frames in time order, smooths the background meshes in time
over a sliding window, subtracts the background, and hands each finished frame to a
:class:`~tessphot.prepare.blocks.BlockWriter`, which encodes it and writes blocks of frames
aligned with the HDF5 chunks. The workers are given at most :data:`FRAMES_AHEAD_PER_WORKER`
frames each beyond the one the main process waits for, so memory is bounded by one block,
the smoothing window and those frames, whatever the number of frames. The file records how
many frames are done, so a killed run resumes from the last written block.
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
from tessphot.prepare.blocks import BlockWriter, FinishedFrame
from tessphot.prepare.flags import EXCLUDED_FRAME_QUALITY, PixelFlags
from tessphot.prepare.frames import FrameInfo
from tessphot.prepare.smoothing import smooth_in_time, smoothing_window
from tessphot.prepare.worker import init_worker, process_frame

log = logging.getLogger(__name__)

#: Regions of at most this many pixels are processed in the main process [px].
INLINE_REGION_PIXELS = 64 * 64
#: Frames handed to each worker beyond the smoothing window the main process holds: enough
#: to keep the workers busy, few enough that results cannot pile up when the main process
#: is slower.
FRAMES_AHEAD_PER_WORKER = 1


def stream_frames(
    part: Path,
    frames: list[FrameInfo],
    start: int,
    window: int,
    context: dict,
    workers: int | None,
    progress: bool,
) -> np.ndarray:
    """Process frames ``start``.. in order, writing aligned blocks of frames.

    Parameters
    ----------
    part : pathlib.Path
        The ``.part`` file, with its layout and per-frame times written.
    frames : list of FrameInfo
        All frames of the CCD, in time order.
    start : int
        The first frame not yet written (the first of a block).
    window : int
        Length of the background's smoothing window [frames].
    context : dict
        What every frame shares (:func:`tessphot.prepare.worker.init_worker`) and the
        ``storage`` settings.
    workers : int or None
        Worker processes (None: one per CPU).
    progress : bool
        Show a progress bar.

    Returns
    -------
    numpy.ndarray
        The average image: the mean of the stored images of the frames of good quality
        (those written before ``start`` read back), NaN where none is finite.
    """
    n = len(frames)
    half = window // 2
    shape = context["shape"]
    bgs = context["background_settings"]
    geometry = bg.MeshGeometry(shape, bgs.box_size, bgs.binning)
    with h5py.File(part, "r+") as h5:
        meshes = np.array(h5["background_frame_mesh"][:], dtype=np.float64)
        mesh_errs = np.array(h5["background_frame_mesh_err"][:], dtype=np.float64)
        valid = np.zeros(n, dtype=bool)
        valid[:start] = np.all(np.isfinite(meshes[:start]), axis=(1, 2))
        quality = h5["quality"][:]
        times = h5["time"][:]
        writer = BlockWriter(h5, context["storage"], quality)
        writer.resume(start)
        if start >= n:
            return writer.average()
        pending: deque[dict] = deque()
        pool, results = _results(frames, start, context, workers, window)
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
                    writer.add(
                        finish_frame(done, meshes, mesh_errs, times, valid, half, geometry, bgs)
                    )
                bar.update(1)
        finally:
            bar.close()
            if pool is not None:
                pool.terminate()
                pool.join()
        average = writer.average()
    _report_missing(part, frames, meshes, quality)
    return average


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


def _results(frames: list[FrameInfo], start: int, context: dict, workers: int | None, window: int):
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
        # The main process holds a window of frames before it finishes the first: the
        # workers run that far ahead, and a few frames each beyond.
        ahead = window + n_workers * FRAMES_AHEAD_PER_WORKER
        return pool, _bounded(pool, tasks, ahead)
    init_worker(context)
    return None, map(process_frame, tasks)


def _bounded(pool, tasks: list, ahead: int):
    """The results of ``tasks`` in order, with at most ``ahead`` of them submitted at once."""
    submitted: deque = deque()
    queue = iter(tasks)
    for task in queue:
        submitted.append(pool.apply_async(process_frame, (task,)))
        if len(submitted) >= ahead:
            break
    while submitted:
        result = submitted.popleft().get()
        task = next(queue, None)
        if task is not None:
            submitted.append(pool.apply_async(process_frame, (task,)))
        yield result


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
) -> FinishedFrame:
    """Subtract the time-smoothed background from one frame.

    The smoothed mesh is rounded to the 32-bit floats it is stored as before it is
    evaluated, so that the reader evaluates the very background that was subtracted.
    """
    k = result["index"]
    shape = geometry.shape
    flags = result.get("flags")
    frame = {"index": k, "frame_mesh": meshes[k], "frame_mesh_err": mesh_errs[k]}
    frame.update(wcs=result.get("wcs", ""), centroids=result.get("centroids"))
    if result.get("image") is None:
        nan = np.full(shape, np.nan, dtype=np.float32)
        if flags is None:
            flags = np.full(shape, PixelFlags.ManualExclude, dtype=np.uint8)
        mesh_nan = np.full(geometry.mesh_shape, np.nan, dtype=np.float32)
        return FinishedFrame(
            image=nan, err=nan, flags=flags, mesh=mesh_nan, mesh_err=mesh_nan, **frame
        )
    mesh, mesh_err = smooth_in_time(meshes, mesh_errs, times, valid, k, half, bgs.curvature_sigma)
    mesh = mesh.astype(np.float32)
    mesh_err = mesh_err.astype(np.float32)
    background = geometry.evaluate(mesh.astype(np.float64)).astype(np.float32)
    # The uncertainty is smooth and only added in quadrature: the binned grid suffices.
    background_err = geometry.evaluate(mesh_err.astype(np.float64), binned=True)
    err = result["uncert"] ** 2
    err += geometry.expand(background_err.astype(np.float32) ** 2)
    # float32 throughout: 7 significant digits are ample for fluxes in e-/s.
    image = result["image"] - background
    err = np.sqrt(err)
    excluded = (flags & PixelFlags.ManualExclude) > 0
    image[excluded] = np.nan
    err[excluded] = np.nan
    return FinishedFrame(image=image, err=err, flags=flags, mesh=mesh, mesh_err=mesh_err, **frame)
