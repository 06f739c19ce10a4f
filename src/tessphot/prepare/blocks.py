"""Blocks of frames written one chunk of time at a time: the main process's side.

The workers encode the frames of a block into shared buffers and compress them strip by
strip (:mod:`tessphot.prepare.encode`); a :class:`BlockWriter` holds those buffers, the
per-frame records of the block (background meshes, WCS, centroids), and the average image's
sums, and writes each finished block: the compressed chunks as they are, strip by strip,
then the records and the run's progress. Its memory is one block, whatever the number of frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

from tessphot.config.prepare import StorageSettings
from tessphot.prepare import codec
from tessphot.prepare.encode import BLOCK_CUBES, CompressedChunks, CompressedStrip
from tessphot.prepare.flags import BAD_QUALITY_BITS
from tessphot.prepare.layout import CUBE_TYPES, compression

#: A strip of a block compressed by one task holds about this many pixels per frame: a few
#: tasks per worker and block, each large enough to cost little to hand out.
STRIP_PIXELS = 2**18


@dataclass
class FrameRecord:
    """What is stored of a frame besides its images."""

    index: int
    #: The time-smoothed mesh that was subtracted and its uncertainty [e-/s].
    mesh: np.ndarray
    mesh_err: np.ndarray
    #: The frame's own mesh estimate and its uncertainty (NaN: none) [e-/s].
    frame_mesh: np.ndarray
    frame_mesh_err: np.ndarray
    wcs: str = ""
    centroids: np.ndarray | None = None


class BlockWriter:
    """The block of frames being written: its buffers' layout, records and average sums.

    Parameters
    ----------
    h5 : h5py.File
        The part file, opened for writing, with its layout.
    storage : StorageSettings
        How the images are stored.
    quality : numpy.ndarray
        Quality flags of every frame (frames with bad quality are not in the average image).
    """

    def __init__(self, h5: h5py.File, storage: StorageSettings, quality: np.ndarray) -> None:
        self.h5 = h5
        self.storage = storage
        self.quality = quality
        n, ny, nx = h5["images"].shape
        self.shape = (ny, nx)
        self.block_frames = int(h5["images"].attrs["block_frames"])
        self.chunks = h5["images"].chunks
        self.records: list[FrameRecord] = []
        self.sum_acc = np.zeros((ny, nx), dtype=np.float64)
        self.sum_cnt = np.zeros((ny, nx), dtype=np.int32)

    def buffer_layout(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """Shapes and types of the block's buffers (:class:`SharedArrays` layout)."""
        types = CUBE_TYPES[self.storage.lossless]
        shape = (self.chunks[0], *self.shape)
        return {name: (shape, types[cube]) for cube, name in BLOCK_CUBES.items()}

    def context(self) -> dict:
        """What the workers need to encode and compress blocks of this file."""
        h5 = self.h5
        quantised = not self.storage.lossless
        return {
            "storage": self.storage,
            "chunks": self.chunks,
            "compression": compression(self.storage),
            "dither_time": h5["dither_time"][:] if quantised else None,
            "dither_rows": h5["dither_rows"][:] if quantised else None,
            "dither_cols": h5["dither_cols"][:] if quantised else None,
        }

    def strips(self) -> list[tuple[int, int]]:
        """The rows of each strip of a block (whole chunks of rows)."""
        ny, nx = self.shape
        rows = self.chunks[1] * max(1, STRIP_PIXELS // (self.chunks[1] * nx))
        return [(r, min(r + rows, ny)) for r in range(0, ny, rows)]

    def good(self, first: int, frames: int) -> np.ndarray:
        """Which of the frames ``first .. first + frames - 1`` count in the average image."""
        return (self.quality[first : first + frames] & BAD_QUALITY_BITS) == 0

    def add(self, record: FrameRecord) -> None:
        """The record of the next frame of the block (frames come in order)."""
        if self.records and record.index != self.records[-1].index + 1:
            raise ValueError(f"frame {record.index} after {self.records[-1].index}")
        self.records.append(record)

    def write_strip(self, strip: CompressedStrip) -> None:
        """Write one compressed strip of the block and add its sums to the average image's."""
        k0 = self.records[0].index
        r0, r1 = strip.rows
        for cube, chunks in strip.chunks.items():
            write_chunks(self.h5[cube], chunks, (k0, r0, 0))
        self.sum_acc[r0:r1] += strip.sums
        self.sum_cnt[r0:r1] += strip.counts

    def flush(self) -> None:
        """End the block (every strip written): its records, and the run's progress."""
        if not self.records:
            return
        h5, records = self.h5, self.records
        k0, k1 = records[0].index, records[-1].index + 1
        h5["wcs"][k0:k1] = [f.wcs for f in records]
        for name in ("mesh", "mesh_err", "frame_mesh", "frame_mesh_err"):
            h5[f"background_{name}"][k0:k1] = np.array([getattr(f, name) for f in records])
        for f in records:
            if f.centroids is not None and h5["centroids"].shape[1]:
                h5["centroids"][f.index] = f.centroids
        h5["quality"][:] = self.quality
        h5.attrs["frames_done"] = k1
        h5.flush()
        self.records = []

    def average(self) -> np.ndarray:
        """The average image of the frames written (and resumed): NaN where none is finite."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.sum_cnt > 0, self.sum_acc / self.sum_cnt, np.nan)

    def resume(self, start: int) -> None:
        """The average image's sums over the frames before ``start``, from the stored images.

        The sums are not stored: the images written are the record.
        """
        for k0 in range(0, start, self.block_frames):
            k1 = min(k0 + self.block_frames, start)
            good = self.good(k0, k1 - k0)
            images = stored_images(self.h5, k0, k1)[good]
            finite = np.isfinite(images)
            self.sum_acc += np.where(finite, images, 0.0).sum(axis=0)
            self.sum_cnt += finite.sum(axis=0, dtype=np.int32)


def write_chunks(dataset: h5py.Dataset, chunks: CompressedChunks, offset) -> None:
    """Write compressed chunks (offsets relative to ``offset``) into a dataset as they are."""
    t0, r0, c0 = offset
    for (t, r, c), mask, raw in chunks:
        dataset.id.write_direct_chunk((t0 + t, r0 + r, c0 + c), raw, filter_mask=mask)


def stored_images(h5: h5py.File, k0: int, k1: int) -> np.ndarray:
    """The images of frames ``k0:k1`` (``k0`` the first of a block) as stored, decoded."""
    images = h5["images"]
    if images.dtype.kind == "f":
        return images[k0:k1]
    step = float(images.attrs["quantisation_step"])
    block = int(images.attrs["block_frames"])
    codes = codec.from_differences(images[k0:k1], block)
    errors = codec.from_differences(h5["images_err"][k0:k1], block)
    u = codec.dither(h5["dither_time"][k0:k1], _plane(h5))
    return codec.decode(codes, codec.steps(errors, step), u)


def _plane(h5: h5py.File) -> np.ndarray:
    return codec.dither_plane(h5["dither_rows"][:], h5["dither_cols"][:])


def replace_images(h5: h5py.File, images: np.ndarray) -> None:
    """Store new images (all frames) in an open prepared file, encoded as its own are.

    With the file's stored uncertainties, dither and blocks (e.g. to inject a signal into
    prepared data); the average image is not recomputed.
    """
    dataset = h5["images"]
    if dataset.dtype.kind == "f":
        dataset[...] = images
        return
    step = float(dataset.attrs["quantisation_step"])
    block = int(dataset.attrs["block_frames"])
    errors = codec.from_differences(h5["images_err"][()], block).view(np.float16)
    raised = codec.raise_errors(images, codec.to_single(errors), step)
    if np.any(raised > codec.to_single(errors)):
        errors = codec.round_errors(raised, 10)
        h5["images_err"][...] = codec.to_differences(errors.view(np.uint16), block)
    u = codec.dither(h5["dither_time"][:], _plane(h5))
    codes = codec.quantise(images, codec.steps(errors, step), u)
    dataset[...] = codec.to_differences(codes, block)
