"""The chunk cache of a prepared file's cubes: a small region cached whole, same values."""

from __future__ import annotations

import h5py
import hdf5plugin  # noqa: F401  (the cubes' Blosc filter)
import numpy as np

from tessphot.prepare import cube as cube_module
from tessphot.prepare.cube import (
    CHUNK_CACHE_BYTES,
    CHUNK_CACHE_SLOTS,
    WHOLE_REGION_CACHE_BYTES,
    PreparedCube,
    chunk_cache,
)

PREPARED = "sector001_camera1_ccd4.hdf5"


def test_small_region_is_cached_whole():
    """Room for every chunk of the largest cube, a slot for each of its chunks."""
    layouts = [
        ((1300, 200, 200), (32, 16, 16), 4),
        ((1300, 200, 200), (32, 16, 16), 2),
        ((1300, 200, 200), (32, 16, 16), 1),
    ]
    chunks = 41 * 13 * 13
    assert chunk_cache(layouts) == (max(chunks, CHUNK_CACHE_SLOTS), chunks * 32 * 16 * 16 * 4)
    tiny = [((10, 20, 20), (10, 16, 16), 4)]
    assert chunk_cache(tiny) == (CHUNK_CACHE_SLOTS, CHUNK_CACHE_BYTES)


def test_large_region_or_unchunked_keeps_the_neighbours_cache():
    ccd = [((1300, 2048, 2048), (32, 16, 16), 4), ((1300, 2048, 2048), (32, 16, 16), 1)]
    assert chunk_cache(ccd) == (CHUNK_CACHE_SLOTS, CHUNK_CACHE_BYTES)
    assert chunk_cache([((100, 20, 20), None, 4)]) == (CHUNK_CACHE_SLOTS, CHUNK_CACHE_BYTES)
    # Just over the budget.
    side = int(np.sqrt(WHOLE_REGION_CACHE_BYTES / (7 * 1024))) + 16
    assert chunk_cache([((1024, side, side), (32, 16, 16), b) for b in (4, 2, 1)]) == (
        CHUNK_CACHE_SLOTS,
        CHUNK_CACHE_BYTES,
    )


def test_cubes_opened_with_their_cache_read_the_same_values(sector_copy, monkeypatch):
    """Stamps read through the cache (twice, and overlapping) equal uncached reads."""
    path = sector_copy / PREPARED
    with h5py.File(path, "r", rdcc_nbytes=0) as h5:
        stored = {name: h5[name][()] for name in ("images", "images_err", "pixel_flags")}
    for budget in (WHOLE_REGION_CACHE_BYTES, 0):  # cached whole, then the neighbours' cache
        monkeypatch.setattr(cube_module, "WHOLE_REGION_CACHE_BYTES", budget)
        with PreparedCube(path) as cube:
            slots, nbytes = cube._cubes["images"].id.get_access_plist().get_chunk_cache()[:2]
            if budget:
                assert nbytes >= stored["images"].nbytes
            else:
                assert (slots, nbytes) == (CHUNK_CACHE_SLOTS, CHUNK_CACHE_BYTES)
            orow, ocol = cube.origin
            for r0, c0, size in ((3, 5, 9), (3, 5, 9), (8, 1, 14)):
                box = (orow + r0, orow + r0 + size, ocol + c0, ocol + c0 + size)
                for name, values in stored.items():
                    read = cube._stored(name, 0, cube.n_cadences, box)
                    expected = values[:, r0 : r0 + size, c0 : c0 + size]
                    np.testing.assert_array_equal(read, expected)
