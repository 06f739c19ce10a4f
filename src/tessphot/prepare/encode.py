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
    ring, block = ctx["ring"], ctx["block"]
    j = task.position
    if task.state is FrameState.READ:
        geometry = ctx["geometry"]
        flags = ring["flags"][task.slot]
        background = geometry.evaluate_single(task.mesh.astype(np.float64))
        # The uncertainty is smooth and only added in quadrature: the binned grid suffices.
        background_err = geometry.evaluate(task.mesh_err.astype(np.float64), binned=True)
        uncert = ring["uncert"][task.slot]
        err = codec.to_single(uncert) if uncert.dtype == np.float16 else np.array(uncert)
        np.square(err, out=err)
        err += geometry.expand(background_err.astype(np.float32) ** 2)
        np.sqrt(err, out=err)
        # float32 throughout: 7 significant digits are ample for fluxes in e-/s.
        image = np.subtract(ring["image"][task.slot], background, out=background)
        excluded = (flags & PixelFlags.ManualExclude) > 0
        image[excluded] = np.nan
        err[excluded] = np.nan
        block["flags"][j] = flags
    else:
        image = np.full(ctx["shape"], np.nan, dtype=np.float32)
        err = image
        if task.state is FrameState.EXCLUDED:
            block["flags"][j] = ring["flags"][task.slot]
        else:
            block["flags"][j] = PixelFlags.ManualExclude
    _encode(block, j, task.index, image, err, ctx)
    return task.index


def _encode(block, j: int, index: int, image: np.ndarray, err: np.ndarray, ctx: dict) -> None:
    """Store a frame in the block: quantised codes and rounded errors, or 32-bit floats."""
    storage = ctx["storage"]
    if storage.lossless:
        block["values"][j] = image
        block["errors"][j] = err
        return
    step = storage.quantisation_step
    raised = codec.raise_errors(image, err, step)
    errors = codec.round_errors(raised, storage.error_mantissa_bits)
    u = codec.dither(ctx["dither_time"][index : index + 1], ctx["dither_plane"])[0]
    block["values"][j] = codec.quantise(image, codec.steps(errors, step), u)
    block["errors"][j] = errors.view(np.uint16)


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
