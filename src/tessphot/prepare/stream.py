"""Streaming the frames of one CCD through the workers into the ``.part`` file.

Each frame goes through three steps, all in the worker processes:

1. read (:func:`~tessphot.prepare.worker.process_frame`): the frame is read into a slot of
   a ring of frames in shared memory, and its background mesh and the reference stars'
   centroids go back to the main process;
2. finish (:func:`~tessphot.prepare.encode.finish_frame`): once the meshes of its smoothing
   window have arrived, the main process smooths its mesh in time, and a worker subtracts
   that background and encodes the frame into the block of frames (shared memory);
3. compress (:func:`~tessphot.prepare.encode.compress_strip`): once a block (one chunk's
   frames) is complete, the workers compress it strip by strip, and the main process writes
   the compressed chunks as they are (:class:`~tessphot.prepare.blocks.BlockWriter`).

The main process does no per-pixel work, and holds only the meshes of the frames a
smoothing window may still need. Memory is bounded by the ring (the smoothing
window, or half of it and a frame per worker) and one block, whatever the number of frames:
each compressed strip is written as soon as it arrives. The file
records how many frames are done, so a killed run resumes from the last written block.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
from collections import deque
from pathlib import Path

import h5py
import numpy as np
from threadpoolctl import threadpool_limits

from tessphot.logs import progress_bar
from tessphot.prepare import codec
from tessphot.prepare.blocks import BlockWriter, FrameRecord
from tessphot.prepare.encode import (
    FinishTask,
    FrameState,
    StripTask,
    compress_strip,
    finish_frame,
)
from tessphot.prepare.flags import EXCLUDED_FRAME_QUALITY
from tessphot.prepare.frames import FrameInfo
from tessphot.prepare.heap import release_free_memory, reuse_large_allocations
from tessphot.prepare.layout import PAGE_BUFFER_BYTES
from tessphot.prepare.shared_arrays import SharedArrays
from tessphot.prepare.smoothing import smooth_in_time, smoothing_window
from tessphot.prepare.worker import WORKER_THREADS, init_worker, process_frame, worker_context

log = logging.getLogger(__name__)

#: Regions of at most this many pixels are processed in the main process [px].
INLINE_REGION_PIXELS = 64 * 64
#: Frames read ahead per worker beyond those waiting for their smoothing window's meshes:
#: enough to keep the workers busy, few enough to keep the ring small.
FRAMES_AHEAD_PER_WORKER = 1
#: Longest wait for a worker's result before the main process looks again [s] (each
#: task's end wakes it at once).
POLL_SECONDS = 0.5
#: Frames whose stored meshes are read at once to find those without an estimate.
REPORT_FRAMES = 256


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
    with h5py.File(part, "r+", page_buf_size=PAGE_BUFFER_BYTES) as h5:
        writer = BlockWriter(h5, context["storage"], h5["quality"][:])
        writer.resume(start)
        if start < n:
            release_free_memory()  # what the set-up left, before the workers start
            stream = _Stream(h5, frames, start, window, writer)
            n_workers = _workers(context["shape"], workers)
            stream.run(context, n_workers, progress)
            _report_missing(h5, part, frames, writer.quality)
        return writer.average()


def ring_slots(window: int, n_workers: int) -> int:
    """Frames in the ring: those a frame waits for, and one ahead per worker.

    A frame is finished once the meshes of its smoothing window have arrived: the frame
    itself and ``window // 2`` later ones, or the whole window after it at the start of a
    series or after a gap. The ring never holds fewer than a window (no deadlock).
    """
    waiting = window // 2 + 1
    return max(window, waiting + max(n_workers, 1) * FRAMES_AHEAD_PER_WORKER)


def ring_layout(slots: int, shape: tuple[int, int], lossless: bool) -> dict:
    """The ring's arrays: images, uncertainties and flags of ``slots`` frames.

    The uncertainties are kept as half-precision floats (10 bits of mantissa) unless the
    storage is lossless: the file keeps them with 7 bits.
    """
    return {
        "image": ((slots, *shape), "f4"),
        "uncert": ((slots, *shape), "f4" if lossless else "f2"),
        "flags": ((slots, *shape), "u1"),
    }


def shared_constants(context: dict) -> SharedArrays:
    """The whole-region arrays every frame uses, held once for all the workers.

    The starlight model (when there is one) and the dither's plane (when the images are
    quantised), which each worker would otherwise hold a copy of.
    """
    arrays = {}
    if context.get("starlight") is not None:
        arrays["starlight"] = np.asarray(context["starlight"], dtype=np.float32)
    if context.get("dither_rows") is not None:
        arrays["dither_plane"] = codec.dither_plane(context["dither_rows"], context["dither_cols"])
    constants = SharedArrays({k: (v.shape, v.dtype) for k, v in arrays.items()}, shared=True)
    for name, values in arrays.items():
        constants[name][...] = values
    return constants


def _workers(shape: tuple[int, int], workers: int | None) -> int:
    """The number of worker processes (0: the frames are processed in the main process)."""
    if shape[0] * shape[1] <= INLINE_REGION_PIXELS:
        return 0  # small regions (cutouts): worker processes cost more than they save
    n_workers = workers or max(1, (os.cpu_count() or 1))
    return n_workers if n_workers > 1 else 0


class _InlinePool:
    """The pool's interface, each task run at once in this process."""

    def apply_async(self, function, args, callback=None, error_callback=None):
        return _Done(function(*args))

    def terminate(self) -> None:
        pass

    def join(self) -> None:
        pass


class _Done:
    def __init__(self, value) -> None:
        self.value = value

    def ready(self) -> bool:
        return True

    def wait(self, timeout: float | None = None) -> None:
        pass

    def get(self):
        return self.value


class _Stream:
    """The state of one run of the three steps over the frames ``start``.."""

    def __init__(self, h5: h5py.File, frames, start: int, window: int, writer: BlockWriter):
        self.frames = frames
        self.n = len(frames)
        self.half = window // 2
        self.window = window
        self.writer = writer
        self.quality = writer.quality
        self.times = h5["time"][:]
        # The frames' meshes that a smoothing window may still need, by frame: the 2 half
        # frames before the next frame to finish and those read since (the file holds every
        # frame's). As stored: 32-bit floats (the workers' estimates are rounded to them),
        # smoothed in 64 bits.
        self.meshes: dict[int, np.ndarray] = {}
        self.mesh_errs: dict[int, np.ndarray] = {}
        self.mesh_shape = tuple(h5["background_frame_mesh"].shape[1:])
        self.valid = np.zeros(self.n, dtype=bool)
        before = max(0, start - 2 * self.half)
        stored = np.asarray(h5["background_frame_mesh"][before:start], dtype=np.float32)
        stored_err = np.asarray(h5["background_frame_mesh_err"][before:start], dtype=np.float32)
        for j in range(before, start):
            self.meshes[j], self.mesh_errs[j] = stored[j - before], stored_err[j - before]
        self.valid[before:start] = np.all(np.isfinite(stored), axis=(1, 2))
        self.start = start
        self.read: dict[int, dict] = {}
        self.curvature = np.inf
        #: Set by every task that ends: the main process sleeps until one does.
        self._woken = threading.Event()

    def run(self, context: dict, n_workers: int, progress: bool) -> None:
        """Read, finish and compress every frame from ``start``; write every block."""
        shape = context["shape"]
        self.curvature = context["background_settings"].curvature_sigma
        slots = ring_slots(self.window, n_workers)
        shared = n_workers > 0
        ring = SharedArrays(ring_layout(slots, shape, context["storage"].lossless), shared=shared)
        block = SharedArrays(self.writer.buffer_layout(), shared=shared)
        ctx = {**context, **self.writer.context(), "ring": ring, "block": block}
        constants = shared_constants(ctx) if shared else None
        if constants is not None:
            ctx.update(constants=constants, starlight=None)
        if shared:
            pool = multiprocessing.get_context("spawn").Pool(
                n_workers, initializer=init_worker, initargs=(ctx,)
            )
        else:
            init_worker(ctx, limit_threads=False)
            pool = _InlinePool()
        bar = progress_bar(
            total=self.n,
            initial=self.start,
            desc=f"prepare {Path(self.writer.h5.filename).name.split('.')[0]}",
            unit="frame",
            enabled=progress,
        )
        # One core's work, as in each worker; without workers, the frames' arrays reused.
        reuse = contextlib.nullcontext() if shared else reuse_large_allocations()
        try:
            with threadpool_limits(WORKER_THREADS), reuse:
                self._loop(pool, slots, bar)
        finally:
            bar.close()
            pool.terminate()
            pool.join()
            if not shared:
                worker_context().clear()  # the run's context (starlight model, buffers)
            ring.release()
            block.release()
            if constants is not None:
                constants.release()

    def _loop(self, pool, slots: int, bar) -> None:
        n, block_frames = self.n, self.writer.block_frames
        free = deque(range(slots))
        slot_of: dict[int, int] = {}
        reading: deque = deque()  # (frame, result) in order
        finishing: deque = deque()  # (frame, result) in order
        compressing: list = []
        next_read = received = next_finish = finished = self.start
        block_start = self.start
        while block_start < n:
            # Cleared before looking: a task ending meanwhile wakes the wait at the end.
            self._woken.clear()
            progressed = False
            while free and next_read < n:
                slot_of[next_read] = free.popleft()
                task = self._task(next_read, slot_of[next_read])
                reading.append((next_read, self._submit(pool, process_frame, task)))
                next_read += 1
            while reading and reading[0][1].ready():
                k, job = reading.popleft()
                self._receive(job.get())
                received = k + 1
                bar.update(1)
                progressed = True
            block_end = min(block_start + block_frames, n)
            while (
                not compressing
                and next_finish < block_end
                and smoothing_window(self.times, next_finish, self.half)[1] <= received
            ):
                task = self._finish_task(next_finish, slot_of[next_finish], block_start)
                finishing.append((next_finish, self._submit(pool, finish_frame, task)))
                next_finish += 1
                progressed = True
            while finishing and finishing[0][1].ready():
                k, job = finishing.popleft()
                job.get()
                free.append(slot_of.pop(k))
                finished = k + 1
                progressed = True
            if finished == block_end and not compressing:
                m = block_end - block_start
                good = self.writer.good(block_start, m)
                compressing = [
                    self._submit(pool, compress_strip, StripTask(block_start, m, rows, good))
                    for rows in self.writer.strips()
                ]
                progressed = True
            while compressing and compressing[0].ready():
                # Written as it comes: one strip's compressed bytes at a time in memory.
                self.writer.write_strip(compressing.pop(0).get())
                progressed = True
                if not compressing:
                    self.writer.flush()
                    release_free_memory()  # the strips' compressed bytes
                    block_start = block_end
            if not progressed:
                self._woken.wait(POLL_SECONDS)

    def _submit(self, pool, function, task):
        """Hand a task to the pool; its end (or failure) wakes the main loop."""

        def wake(_):
            self._woken.set()

        return pool.apply_async(function, (task,), callback=wake, error_callback=wake)

    def _task(self, k: int, slot: int) -> tuple:
        f = self.frames[k]
        return (k, str(f.path), f.index, f.cadenceno, f.tstart, f.time, slot)

    def _receive(self, result: dict) -> None:
        """Book one frame's reading: its mesh, or the quality flag of an unusable frame."""
        k = result["index"]
        if result.get("error"):
            log.error("Frame flagged and left empty: %s", result["error"])
            self.quality[k] |= EXCLUDED_FRAME_QUALITY
            state = FrameState.FAILED
        elif result["excluded"]:
            log.warning(
                "Frame %s excluded: %s", self.frames[k].path.name, "; ".join(result["reasons"])
            )
            self.quality[k] |= EXCLUDED_FRAME_QUALITY
            state = FrameState.EXCLUDED
        else:
            self.meshes[k] = np.asarray(result["mesh"], dtype=np.float32)
            self.mesh_errs[k] = np.asarray(result["mesh_err"], dtype=np.float32)
            # A frame without an estimate (too few sky pixels) takes its neighbours'.
            self.valid[k] = bool(np.all(np.isfinite(result["mesh"])))
            state = FrameState.READ
        self.read[k] = {
            "state": state,
            "wcs": result.get("wcs", ""),
            "centroids": result.get("centroids"),
        }

    def _finish_task(self, k: int, slot: int, block_start: int) -> FinishTask:
        """Frame ``k``'s smoothed mesh (rounded to the float32 stored); its record booked."""
        read = self.read.pop(k)
        state = read["state"]
        nan = np.full(self.mesh_shape, np.nan, dtype=np.float32)
        if state is FrameState.READ:
            lo, hi = smoothing_window(self.times, k, self.half)
            held = range(lo, hi)
            mesh, mesh_err = smooth_in_time(
                np.stack([self.meshes.get(j, nan) for j in held]),
                np.stack([self.mesh_errs.get(j, nan) for j in held]),
                self.times,
                self.valid,
                k,
                self.half,
                self.curvature,
                first=lo,
            )
            mesh, mesh_err = mesh.astype(np.float32), mesh_err.astype(np.float32)
        else:
            mesh = mesh_err = nan
        self.writer.add(
            FrameRecord(
                index=k,
                mesh=mesh,
                mesh_err=mesh_err,
                frame_mesh=self.meshes.get(k, nan),
                frame_mesh_err=self.mesh_errs.get(k, nan),
                wcs=read["wcs"],
                centroids=read["centroids"],
            )
        )
        # Frames finish in order: the next one's window starts at k + 1 - 2 half or later.
        for j in [j for j in self.meshes if j <= k - 2 * self.half]:
            del self.meshes[j], self.mesh_errs[j]
        return FinishTask(k, slot, k - block_start, state, mesh, mesh_err)


def _report_missing(h5: h5py.File, part: Path, frames, quality: np.ndarray) -> None:
    """One warning for the frames without a background estimate of their own.

    Read back from the file, :data:`REPORT_FRAMES` frames at a time.
    """
    imaged = (quality & EXCLUDED_FRAME_QUALITY) == 0
    stored = h5["background_frame_mesh"]
    estimated = np.zeros(len(frames), dtype=bool)
    for k0 in range(0, len(frames), REPORT_FRAMES):
        meshes = stored[k0 : k0 + REPORT_FRAMES]
        estimated[k0 : k0 + REPORT_FRAMES] = np.all(np.isfinite(meshes), axis=(1, 2))
    missing = imaged & ~estimated
    if missing.any():
        log.warning(
            "%s: %d of %d frames had too few sky pixels for a background estimate (e.g. "
            "%s): theirs comes from the neighbouring frames, NaN where none had one",
            part.name.split(".")[0],
            int(missing.sum()),
            len(frames),
            frames[int(np.argmax(missing))].path.name,
        )
