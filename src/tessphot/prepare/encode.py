"""The prepare stage's second and third steps in the workers: finish, encode and compress.

After a worker has read a frame into the ring of frames (:func:`~tessphot.prepare.worker.
process_frame`), and the main process has smoothed its background mesh in time, a worker
subtracts that background and encodes the frame into its place in the block of frames
(:func:`finish_frame`, :mod:`tessphot.prepare.codec`). Once a block is full, the workers
compress it one strip of rows at a time (:func:`compress_strip`): each strip's frames as
stored (for the average image), then its chunks compressed with the file's own filter, which
the main process writes as they are (:class:`~tessphot.prepare.blocks.BlockWriter`). The
main process thus does no per-pixel work.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from enum import Enum

import h5py
import hdf5plugin  # noqa: F401  (registers the compression filters in worker processes)
import numpy as np

from tessphot.prepare import codec
from tessphot.prepare.background import EVALUATION_ROWS
from tessphot.prepare.flags import PixelFlags
from tessphot.prepare.worker import worker_context

#: The stored cubes and their arrays in the block buffers.
BLOCK_CUBES = {"images": "values", "images_err": "errors", "pixel_flags": "flags"}
_FILES = itertools.count()


class FrameState(Enum):
    """What the reading step made of a frame."""

    #: Read, its background estimated.
    READ = "read"
    #: Read, but every pixel excluded (NaN images, the flags kept).
    EXCLUDED = "excluded"
    #: Unreadable (NaN images, every pixel flagged).
    FAILED = "failed"


@dataclass(frozen=True)
class FinishTask:
    """Frame ``index``, in ring slot ``slot``, to become frame ``position`` of the block."""

    index: int
    slot: int
    position: int
    state: FrameState
    #: The time-smoothed mesh and its uncertainty (float32, as stored) [e-/s].
    mesh: np.ndarray
    mesh_err: np.ndarray


def finish_frame(task: FinishTask) -> int:
    """Subtract the smoothed background from a frame of the ring; encode it into the block.

    The background is evaluated from the mesh as stored (32-bit floats), so that the reader
    evaluates the very background that was subtracted. Returns the frame's index.
    """
    ctx = worker_context()
    block = ctx["block"]
    j = task.position
    frame = _FrameParts(task, ctx)
    block["flags"][j] = frame.flags
    # In bands of rows: a worker's temporaries are a band's, not a whole frame's. The
    # codes of a frame are computed in 64 bits throughout when any band needs it.
    bands = [
        slice(r0, min(r0 + FINISH_ROWS, ctx["shape"][0]))
        for r0 in range(0, ctx["shape"][0], FINISH_ROWS)
    ]
    wide = [_encode(block, j, task.index, *frame.band(rows), ctx, rows) for rows in bands]
    if any(wide) and not all(wide):
        for rows, band_wide in zip(bands, wide, strict=True):
            if not band_wide:
                _encode(block, j, task.index, *frame.band(rows), ctx, rows, wide=True)
    return task.index


#: Rows of a frame finished and encoded at once (the background surface's bands).
FINISH_ROWS = EVALUATION_ROWS


class _FrameParts:
    """A frame of the ring with its smoothed background subtracted, band by band."""

    def __init__(self, task: FinishTask, ctx: dict):
        ring = ctx["ring"]
        self.state = task.state
        self.shape = ctx["shape"]
        if task.state is FrameState.READ:
            self.flags = ring["flags"][task.slot]
            self.image = ring["image"][task.slot]
            self.uncert = ring["uncert"][task.slot]
            self.geometry = ctx["geometry"]
            # The surface from the mesh as stored (32-bit floats), as the reader evaluates it.
            self.coefficients = self.geometry.surface.coefficients(task.mesh.astype(np.float64))
            # The uncertainty is smooth and only added in quadrature: the binned grid suffices.
            binned = self.geometry.evaluate(task.mesh_err.astype(np.float64), binned=True)
            self.binned_variance = binned.astype(np.float32) ** 2
        elif task.state is FrameState.EXCLUDED:
            self.flags = ring["flags"][task.slot]
        else:  # unreadable: every pixel flagged
            self.flags = PixelFlags.ManualExclude

    def band(self, rows: slice) -> tuple[np.ndarray, np.ndarray]:
        """The image and uncertainty of rows ``rows`` (float32; NaN where excluded)."""
        if self.state is not FrameState.READ:
            image = np.full((rows.stop - rows.start, self.shape[1]), np.nan, dtype=np.float32)
            return image, image
        geometry = self.geometry
        background = geometry.evaluate_rows(self.coefficients, rows)
        uncert = self.uncert[rows]
        err = codec.to_single(uncert) if uncert.dtype == np.float16 else np.array(uncert)
        np.square(err, out=err)
        err += geometry.expand(self.binned_variance, rows)
        np.sqrt(err, out=err)
        # float32 throughout: 7 significant digits are ample for fluxes in e-/s.
        image = np.subtract(self.image[rows], background, out=background)
        excluded = (self.flags[rows] & PixelFlags.ManualExclude) > 0
        image[excluded] = np.nan
        err[excluded] = np.nan
        return image, err


def _encode(
    block,
    j: int,
    index: int,
    image: np.ndarray,
    err: np.ndarray,
    ctx: dict,
    rows: slice,
    *,
    wide: bool | None = None,
) -> bool:
    """Store rows of a frame in the block: quantised codes and rounded errors, or floats.

    Returns whether the codes were computed in 64 bits (:func:`codec.quantise`'s ``wide``:
    None decides on these rows' values).
    """
    storage = ctx["storage"]
    if storage.lossless:
        block["values"][j, rows] = image
        block["errors"][j, rows] = err
        return False
    step = storage.quantisation_step
    raised = codec.raise_errors(image, err, step)
    errors = codec.round_errors(raised, storage.error_mantissa_bits)
    u = codec.dither(ctx["dither_time"][index : index + 1], ctx["dither_plane"][rows])[0]
    codes, wide = codec.quantise_reporting(image, codec.steps(errors, step), u, wide=wide)
    block["values"][j, rows] = codes
    block["errors"][j, rows] = errors.view(np.uint16)
    return wide


@dataclass(frozen=True)
class StripTask:
    """Rows ``rows`` of the first ``frames`` frames of the block (frame ``first`` on)."""

    first: int
    frames: int
    rows: tuple[int, int]
    #: Which of the frames count in the average image (good quality).
    good: np.ndarray


@dataclass
class CompressedChunks:
    """Compressed chunks of one cube, in one buffer (one allocation, not one per chunk)."""

    #: Offset of each chunk within the strip (frames, rows, columns).
    offsets: np.ndarray
    #: HDF5 filter mask of each chunk.
    masks: np.ndarray
    #: End of each chunk's bytes in ``data``.
    ends: np.ndarray
    data: bytes

    def __iter__(self):
        """``(offset, filter mask, bytes)`` of each chunk (views of the buffer)."""
        view = memoryview(self.data)
        start = 0
        # As Python numbers at once: ~3000 chunks per full frame go through here.
        for offset, mask, end in zip(
            self.offsets.tolist(), self.masks.tolist(), self.ends.tolist(), strict=True
        ):
            yield tuple(offset), mask, view[start:end]
            start = end


@dataclass
class CompressedStrip:
    """One strip of a block: its chunks compressed, and its sums for the average image."""

    rows: tuple[int, int]
    #: Sum and number of the finite stored values of the good frames, per pixel.
    sums: np.ndarray
    counts: np.ndarray
    #: The compressed chunks of each cube.
    chunks: dict[str, CompressedChunks]


def compress_strip(task: StripTask) -> CompressedStrip:
    """A strip of the full block: the stored values summed, then its chunks compressed.

    The codes and uncertainties are turned into differences from the previous frame in the
    block buffer itself (each strip is one task's alone).
    """
    ctx = worker_context()
    block = ctx["block"]
    r0, r1 = task.rows
    m = task.frames
    values = block["values"][:m, r0:r1]
    errors = block["errors"][:m, r0:r1]
    if ctx["storage"].lossless:
        stored = values
    else:
        u = codec.dither(
            ctx["dither_time"][task.first : task.first + m], ctx["dither_plane"][r0:r1]
        )
        stored = codec.decode(values, codec.steps(errors, ctx["storage"].quantisation_step), u)
    good = stored[np.asarray(task.good, dtype=bool)]
    finite = np.isfinite(good)
    # One block's sum (at most 32 frames) is exact enough in 32 bits; the main process
    # adds the blocks in 64.
    sums = np.where(finite, good, np.float32(0)).sum(axis=0, dtype=np.float32)
    counts = finite.sum(axis=0, dtype=np.uint8)
    if not ctx["storage"].lossless:
        codec.to_differences(values, m, in_place=True)
        codec.to_differences(errors, m, in_place=True)
    chunks = {
        cube: compressed_chunks(block[name][:m, r0:r1], ctx["chunks"], ctx["compression"])
        for cube, name in BLOCK_CUBES.items()
    }
    return CompressedStrip((r0, r1), sums, counts, chunks)


def compressed_chunks(
    data: np.ndarray, chunks: tuple[int, int, int], options: dict
) -> CompressedChunks:
    """The chunks of ``data`` (frames x rows x columns) compressed as HDF5 stores them.

    Written into an HDF5 file in memory with the same chunks and filter, and read back
    raw: the bytes are what HDF5 would write. ``data`` is padded to whole chunks (the
    padding lies beyond the real dataset's edges, where it is never read).
    """
    padded_shape = tuple(-(-n // c) * c for n, c in zip(data.shape, chunks, strict=True))
    padded = np.zeros(padded_shape, dtype=data.dtype)
    padded[: data.shape[0], : data.shape[1], : data.shape[2]] = data
    name = f"tessphot-strip-{os.getpid()}-{next(_FILES)}"
    offsets, masks, pieces = [], [], []
    with h5py.File(name, "w", driver="core", backing_store=False) as h5:
        dataset = h5.create_dataset("strip", data=padded, chunks=chunks, **options)
        for r in range(0, padded_shape[1], chunks[1]):
            for c in range(0, padded_shape[2], chunks[2]):
                mask, raw = dataset.id.read_direct_chunk((0, r, c))
                offsets.append((0, r, c))
                masks.append(mask)
                pieces.append(raw)
    return CompressedChunks(
        offsets=np.array(offsets, dtype=np.int64).reshape(-1, 3),
        masks=np.array(masks, dtype=np.int64),
        ends=np.cumsum([len(piece) for piece in pieces], dtype=np.int64),
        data=b"".join(pieces),
    )
