"""Blocks of finished frames, encoded as they arrive and written one chunk of time at a time.

The writer of the prepare stage's stream (:mod:`tessphot.prepare.stream`) hands every
finished frame (background subtracted) to a :class:`BlockWriter`, which encodes it at once
into preallocated buffers of one chunk's frames (:mod:`tessphot.prepare.codec`: 7 bytes per
pixel) and writes them when the block is full. The writer's memory is one block, whatever
the number of frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

from tessphot.config.prepare import StorageSettings
from tessphot.prepare import codec
from tessphot.prepare.flags import BAD_QUALITY_BITS
from tessphot.prepare.layout import CUBE_TYPES


@dataclass
class FinishedFrame:
    """One frame with its background subtracted, ready to be stored."""

    index: int
    #: Background-subtracted image and its uncertainty [e-/s] (NaN: no data).
    image: np.ndarray
    err: np.ndarray
    flags: np.ndarray
    #: The time-smoothed mesh that was subtracted and its uncertainty [e-/s].
    mesh: np.ndarray
    mesh_err: np.ndarray
    #: The frame's own mesh estimate and its uncertainty (NaN: none) [e-/s].
    frame_mesh: np.ndarray
    frame_mesh_err: np.ndarray
    wcs: str = ""
    centroids: np.ndarray | None = None


class BlockWriter:
    """Encode finished frames into one block's buffers; write each block when full.

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
        self.block_frames = int(h5["images"].attrs["block_frames"])
        self.quantised = not storage.lossless
        types = CUBE_TYPES[storage.lossless]
        shape = (self.block_frames, ny, nx)
        self._values = np.empty(shape, dtype=types["images"])
        self._errors = np.empty(shape, dtype=types["images_err"])
        self._flags = np.empty(shape, dtype=types["pixel_flags"])
        self._frames: list[FinishedFrame] = []
        if self.quantised:
            self._dither_time = h5["dither_time"][:]
            self._plane = codec.dither_plane(h5["dither_rows"][:], h5["dither_cols"][:])
        self.sum_acc = np.zeros((ny, nx), dtype=np.float64)
        self.sum_cnt = np.zeros((ny, nx), dtype=np.int32)

    def add(self, frame: FinishedFrame) -> None:
        """Encode a frame into the block (frames come in order); write a full block."""
        j = len(self._frames)
        if j and frame.index != self._frames[-1].index + 1:
            raise ValueError(f"frame {frame.index} after {self._frames[-1].index}")
        if self.quantised:
            step = self.storage.quantisation_step
            raised = codec.raise_errors(frame.image, frame.err, step)
            errors = codec.round_errors(raised, self.storage.error_mantissa_bits)
            u = codec.dither(self._dither_time[frame.index : frame.index + 1], self._plane)[0]
            steps = codec.steps(errors, step)
            self._values[j] = codec.quantise(frame.image, steps, u)
            self._errors[j] = errors
            stored = codec.decode(self._values[j], steps, u)
        else:
            self._values[j] = frame.image
            self._errors[j] = frame.err
            stored = self._values[j]
        self._flags[j] = frame.flags
        self._accumulate(stored, frame.index)
        # The images are in the buffers: the frame keeps its header data only.
        frame.image = frame.err = frame.flags = np.empty(0)
        self._frames.append(frame)
        if len(self._frames) == self.block_frames or frame.index == self.quality.size - 1:
            self.flush()

    def _accumulate(self, image: np.ndarray, index: int) -> None:
        """Add a stored frame to the average image's sum (not frames of bad quality)."""
        if self.quality[index] & BAD_QUALITY_BITS:
            return
        good = np.isfinite(image)
        self.sum_acc += np.where(good, image, 0.0)
        self.sum_cnt += good

    def flush(self) -> None:
        """Write the frames of the block and the run's progress."""
        if not self._frames:
            return
        h5, m = self.h5, len(self._frames)
        k0, k1 = self._frames[0].index, self._frames[-1].index + 1
        values = self._values[:m]
        if self.quantised:
            values = codec.to_differences(values, self.block_frames, in_place=True)
        h5["images"][k0:k1] = values
        h5["images_err"][k0:k1] = self._errors[:m]
        h5["pixel_flags"][k0:k1] = self._flags[:m]
        h5["wcs"][k0:k1] = [f.wcs for f in self._frames]
        h5["background_mesh"][k0:k1] = np.array([f.mesh for f in self._frames])
        h5["background_mesh_err"][k0:k1] = np.array([f.mesh_err for f in self._frames])
        h5["background_frame_mesh"][k0:k1] = np.array([f.frame_mesh for f in self._frames])
        h5["background_frame_mesh_err"][k0:k1] = np.array([f.frame_mesh_err for f in self._frames])
        for f in self._frames:
            if f.centroids is not None and h5["centroids"].shape[1]:
                h5["centroids"][f.index] = f.centroids
        h5["quality"][:] = self.quality
        h5.attrs["frames_done"] = k1
        h5.flush()
        self._frames = []

    def average(self) -> np.ndarray:
        """The average image of the frames added (and resumed): NaN where none is finite."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.sum_cnt > 0, self.sum_acc / self.sum_cnt, np.nan)

    def resume(self, start: int) -> None:
        """The average image's sum over the frames before ``start``, from the stored images.

        The sums are not stored: the images written are the record.
        """
        for k0 in range(0, start, self.block_frames):
            k1 = min(k0 + self.block_frames, start)
            for k, image in enumerate(stored_images(self.h5, k0, k1), start=k0):
                self._accumulate(image, k)


def stored_images(h5: h5py.File, k0: int, k1: int) -> np.ndarray:
    """The images of frames ``k0:k1`` (``k0`` the first of a block) as stored, decoded."""
    images = h5["images"]
    if images.dtype.kind == "f":
        return images[k0:k1]
    step = float(images.attrs["quantisation_step"])
    codes = codec.from_differences(images[k0:k1], int(images.attrs["block_frames"]))
    u = codec.dither(h5["dither_time"][k0:k1], _plane(h5))
    return codec.decode(codes, codec.steps(h5["images_err"][k0:k1], step), u)


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
    errors = h5["images_err"][()]
    raised = codec.raise_errors(images, errors.astype(np.float32), step)
    if np.any(raised > errors):
        errors = codec.round_errors(raised, 10)
        h5["images_err"][...] = errors
    u = codec.dither(h5["dither_time"][:], _plane(h5))
    codes = codec.quantise(images, codec.steps(errors, step), u)
    dataset[...] = codec.to_differences(codes, int(dataset.attrs["block_frames"]))
