"""The layout of the prepared-data file (format version 3): datasets, chunks, compression.

See docs/hdf5-format.md. The writer creates it (:func:`create_layout`); the reader is
:class:`tessphot.prepare.cube.PreparedCube`.
"""

from __future__ import annotations

import h5py
import hdf5plugin
import numpy as np

from tessphot.config.prepare import StorageSettings

FORMAT_VERSION = 3
#: Spatial chunk size of the cubes [px]: a 15x15 stamp touches 4 tiles of 16x16 on average.
CHUNK_PIXELS = 16
#: Most frames per chunk (time): fewer chunks per stamp read ...
MAX_CHUNK_TIME = 32
#: ... but the writer holds one block of a chunk's frames, encoded: at most this many bytes
#: (a full 2048x2048 frame takes 7 bytes per pixel: 16 frames) [bytes].
BLOCK_BYTES = 512 * 2**20
#: The file's space is allocated in pages of this size [bytes] ...
PAGE_BYTES = 2**20
#: ... and the writer buffers this many bytes of pages: a frame's ~3000 small chunks are
#: written to the file in a few large writes, not one each (4, 8 and 16 MiB measured
#: alike: 6-9 us a chunk, against 12 without) [bytes].
PAGE_BUFFER_BYTES = 4 * 2**20
#: Bytes per pixel of one encoded frame: code (or float), uncertainty, flags.
ENCODED_PIXEL_BYTES = {False: 4 + 2 + 1, True: 4 + 4 + 1}
#: Dataset types of the stored cubes, quantised and lossless.
CUBE_TYPES = {
    False: {"images": "i4", "images_err": "u2", "pixel_flags": "u1"},
    True: {"images": "f4", "images_err": "f4", "pixel_flags": "u1"},
}
#: Encodings of ``images`` and ``images_err`` (their attribute ``encoding``).
QUANTISED, FLOAT32 = "quantised-differences", "float32"
HALF_DIFFERENCES = "half-differences"
#: Seed of the dither sequences (fixed: a file rewritten gets the same dither).
DITHER_SEED = 20_181_725
_SHUFFLE = {"bit": hdf5plugin.Blosc.BITSHUFFLE, "byte": hdf5plugin.Blosc.SHUFFLE}


def chunk_time(shape: tuple[int, int], lossless: bool = False) -> int:
    """Frames per chunk of a region: a power of two, at most :data:`MAX_CHUNK_TIME`."""
    frame_bytes = ENCODED_PIXEL_BYTES[bool(lossless)] * int(shape[0]) * int(shape[1])
    frames = MAX_CHUNK_TIME
    while frames > 1 and frames * frame_bytes > BLOCK_BYTES:
        frames //= 2
    return frames


def compression(storage: StorageSettings) -> dict:
    """The h5py compression options of the cubes (Blosc from hdf5plugin)."""
    return dict(
        hdf5plugin.Blosc(
            cname=storage.compressor,
            clevel=storage.compression_level,
            shuffle=_SHUFFLE[storage.shuffle],
        )
    )


def create_layout(
    h5: h5py.File,
    n: int,
    shape: tuple[int, int],
    mesh_shape: tuple[int, int],
    n_ref: int,
    storage: StorageSettings,
) -> None:
    """Create every dataset of an empty prepared-data file for ``n`` frames."""
    ny, nx = shape
    frames = chunk_time(shape, storage.lossless)
    chunks = (min(frames, n), min(CHUNK_PIXELS, ny), min(CHUNK_PIXELS, nx))
    options = compression(storage)
    for name, dtype in CUBE_TYPES[storage.lossless].items():
        h5.create_dataset(name, (n, ny, nx), dtype=dtype, chunks=chunks, **options)
    images = h5["images"].attrs
    images["encoding"] = FLOAT32 if storage.lossless else QUANTISED
    h5["images_err"].attrs["encoding"] = FLOAT32 if storage.lossless else HALF_DIFFERENCES
    images["block_frames"] = frames
    images["quantisation_step"] = storage.quantisation_step
    if not storage.lossless:
        # The dither of frame t, row r, column c (32-bit floats, tessphot.prepare.codec):
        # frac(time[t] + frac(rows[r] + cols[c])) - 1/2.
        rng = np.random.default_rng(DITHER_SEED)
        for name, size in (("dither_time", n), ("dither_rows", ny), ("dither_cols", nx)):
            h5.create_dataset(name, data=rng.random(size, dtype=np.float32))
    for name, dtype in (
        ("time", "f8"),
        ("timecorr", "f4"),
        ("time_start", "f8"),
        ("time_stop", "f8"),
        ("cadenceno", "i4"),
        ("quality", "i4"),
    ):
        h5.create_dataset(name, (n,), dtype=dtype)
    text = h5py.string_dtype()
    h5.create_dataset("imagespaths", (n,), dtype=text)
    h5.create_dataset("wcs", (n,), dtype=text)
    # The background subtracted (the time-smoothed mesh) and each frame's own estimate.
    for name in (
        "background_mesh",
        "background_mesh_err",
        "background_frame_mesh",
        "background_frame_mesh_err",
    ):
        h5.create_dataset(name, (n, *mesh_shape), dtype="f4", fillvalue=np.nan)
    h5.create_dataset("motion", (n, 6), dtype="f8", fillvalue=np.nan)
    # Working data of the run (kept: it documents how the motion was measured).
    h5.create_dataset("centroids", (n, n_ref, 2), dtype="f8", fillvalue=np.nan)
