"""A prepare run killed with SIGKILL (no clean-up at all) in the middle of an HDF5 write:
the rerun finishes, leaves no partial file, and its output equals an uninterrupted run's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from tessphot.config.simulate import SimulationConfig
from tessphot.prepare.cube import PreparedCube
from tessphot.prepare.run import prepare_ccd

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")

#: Run in a subprocess: prepare one CCD; with a dataset name and a block number, the process
#: SIGKILLs itself right after writing that dataset of that block.
KILLED_PREPARE = """
import os, signal, sys
from pathlib import Path
import h5py
from tessphot.prepare import blocks as prepare_blocks
from tessphot.prepare.blocks import BlockWriter
from tessphot.prepare.run import prepare_ccd

folder, dataset, kill_block = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
blocks = {"n": 0}
real_write, real_setitem = BlockWriter.flush, h5py.Dataset.__setitem__
real_chunks = prepare_blocks.write_chunks

def counting_write(*args, **kw):
    blocks["n"] += 1
    return real_write(*args, **kw)

def setitem(self, key, value):
    real_setitem(self, key, value)
    if blocks["n"] == kill_block and self.name == "/" + dataset:
        os.kill(os.getpid(), signal.SIGKILL)

def write_chunks(dataset_, chunks, offset):
    # The compressed chunks are written as they are: killed half way through a strip's.
    if blocks["n"] == kill_block and dataset_.name == "/" + dataset:
        for k, (position, mask, raw) in enumerate(chunks):
            if k == len(chunks.ends) // 2:
                os.kill(os.getpid(), signal.SIGKILL)
            t, r, c = (a + b for a, b in zip(offset, position))
            dataset_.id.write_direct_chunk((t, r, c), raw, filter_mask=mask)
    real_chunks(dataset_, chunks, offset)

BlockWriter.flush = counting_write
h5py.Dataset.__setitem__ = setitem
prepare_blocks.write_chunks = write_chunks
prepare_ccd(folder, 1, 1, 4, workers=1, progress=False)
"""
#: Compared with an uninterrupted run (the resumed run smooths the background with the
#: meshes stored as float32, the uninterrupted one with float64: 1e-7 relative; a quantised
#: value then differs by a step, 1/16 of its noise, where it fell near a step's edge).
COMPARED = ("images", "images_err", "backgrounds")
#: 70 cadences: blocks of 32, 32 and 6 frames.
CONFIG = SimulationConfig(size=40, cadences=70, stars=50, bright=0, seed=41, compress=False)


@pytest.fixture(scope="module")
def sector(tmp_path_factory, builder):
    """The simulated FFIs and catalog, and the output of an uninterrupted prepare run."""
    _, simulate_and_catalog = builder
    folder = tmp_path_factory.mktemp("killed")
    simulate_and_catalog(folder, CONFIG)
    clean = prepare_ccd(
        folder, 1, 1, 4, workers=1, progress=False, output=folder.parent / "clean.hdf5"
    )
    return folder, clean


def _copy_inputs(folder, tmp_path):
    work = tmp_path / "input"
    work.mkdir()
    for path in folder.iterdir():
        (work / path.name).symlink_to(path)
    return work


def _check_resumed(work, clean, before):
    """Rerun; no partial or temporary file is left; the output equals the clean run's."""
    out = prepare_ccd(work, 1, 1, 4, workers=1, progress=False)
    assert sorted(p.name for p in work.iterdir()) == sorted([*before, out.name])
    with h5py.File(out, "r") as resumed, h5py.File(clean, "r") as h5:
        assert resumed.attrs["complete"] and resumed.attrs["frames_done"] == CONFIG.cadences
        for name in ("sumimage", "motion", "quality"):
            np.testing.assert_allclose(
                resumed[name][()], h5[name][()], rtol=1e-6, atol=1e-4, equal_nan=True, err_msg=name
            )
        np.testing.assert_array_equal(resumed["pixel_flags"][()], h5["pixel_flags"][()])
    with PreparedCube(out) as resumed, PreparedCube(clean) as cube:
        noise = cube.read("images_err")
        for name in COMPARED:
            difference = resumed.read(name) - cube.read(name)
            assert np.all(np.abs(difference[np.isfinite(noise)]) <= noise[np.isfinite(noise)] / 8)


@pytest.mark.parametrize(
    ("dataset", "block"),
    [("images", 2), ("pixel_flags", 2), ("quality", 3)],
)
def test_killed_inside_a_block_write(sector, tmp_path, dataset, block):
    folder, clean = sector
    work = _copy_inputs(folder, tmp_path)
    before = sorted(p.name for p in work.iterdir())
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_PREPARE, str(work), dataset, str(block)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    part = work / "sector001_camera1_ccd4.hdf5.part"
    assert part.exists() and not (work / "sector001_camera1_ccd4.hdf5").exists()
    _check_resumed(work, clean, before)


def test_killed_at_a_random_moment(sector, tmp_path):
    """SIGKILL from outside once the partial file has grown past its first block."""
    folder, clean = sector
    work = _copy_inputs(folder, tmp_path)
    before = sorted(p.name for p in work.iterdir())
    part = work / "sector001_camera1_ccd4.hdf5.part"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_PREPARE, str(work), "none", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        first_size = None
        while proc.poll() is None:
            size = part.stat().st_size if part.exists() else None
            if first_size is None:
                first_size = size
            elif size is not None and size > first_size:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "prepare finished before it could be killed"
    _check_resumed(work, clean, before)
