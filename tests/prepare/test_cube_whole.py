"""A small region's cubes read whole: the same stamps and decoded blocks as stamp by stamp."""

from __future__ import annotations

import h5py
import hdf5plugin  # noqa: F401  (the cubes' Blosc filter)
import numpy as np
import pytest

from tessphot.prepare import cube as cube_module
from tessphot.prepare.cube import PreparedCube

PREPARED = "sector001_camera1_ccd4.hdf5"
STORED = ("images", "images_err", "pixel_flags")
#: Boxes (row, column offsets from the origin, size); the second again, then overlapping.
BOXES = ((3, 5, 9), (3, 5, 9), (8, 1, 14))


def _blocks(path, whole: bool, monkeypatch) -> dict:
    """Every box's stored and decoded blocks, the region read whole or stamp by stamp."""
    monkeypatch.setattr(cube_module, "WHOLE_REGION_BYTES", 2**40 if whole else 0)
    out = {}
    with PreparedCube(path) as cube:
        assert (cube._whole is not None) == whole
        orow, ocol = cube.origin
        n = cube.n_cadences
        for k, (r0, c0, size) in enumerate(BOXES):
            box = (orow + r0, orow + r0 + size, ocol + c0, ocol + c0 + size)
            for name in STORED:
                out[k, name, "stored"] = cube._stored(name, 0, n, box)
            for name in ("images", "images_err", "pixel_flags", "backgrounds"):
                out[k, name] = cube.block(name, 0, n, box)
                out[k, name, "part"] = cube.block(name, 40, n - 3, box)
        if whole:
            assert all(not cube._whole[name].flags.writeable for name in STORED)
    return out


def test_whole_region_gives_the_stamp_by_stamp_values(sector_copy, monkeypatch):
    path = sector_copy / PREPARED
    with h5py.File(path, "r", rdcc_nbytes=0) as h5:
        stored = {name: h5[name][()] for name in STORED}
    whole = _blocks(path, True, monkeypatch)
    stamps = _blocks(path, False, monkeypatch)
    assert whole.keys() == stamps.keys()
    for key, values in whole.items():
        assert values.dtype == stamps[key].dtype
        np.testing.assert_array_equal(values, stamps[key], err_msg=str(key))
    for k, (r0, c0, size) in enumerate(BOXES):
        for name in STORED:
            expected = stored[name][:, r0 : r0 + size, c0 : c0 + size]
            np.testing.assert_array_equal(whole[k, name, "stored"], expected)


def test_blocks_of_a_whole_region_are_the_callers_own(sector_copy):
    """A block handed out is a copy: changing it leaves the cube read whole as it was."""
    with PreparedCube(sector_copy / PREPARED) as cube:
        assert cube._whole is not None
        orow, ocol = cube.origin
        box = (orow + 2, orow + 9, ocol + 4, ocol + 10)
        for name in ("images", "images_err", "pixel_flags"):
            first = cube.block(name, 0, cube.n_cadences, box)
            kept = first.copy()
            first[...] = 0
            np.testing.assert_array_equal(cube.block(name, 0, cube.n_cadences, box), kept)
        with pytest.raises(ValueError):
            cube._whole["pixel_flags"][0, 0, 0] = 1
