"""The prepare processes' heap: a frame's large arrays reused by the next frame."""

from __future__ import annotations

import resource
import sys

import numpy as np
import pytest

from tessphot.prepare import heap

pytestmark = pytest.mark.skipif(
    heap._LIBC is None or not sys.platform.startswith("linux"), reason="glibc only"
)

#: A full frame of 64-bit floats [bytes].
FRAME_BYTES = 2048 * 2048 * 8
PAGE = resource.getpagesize()


def _faults_of_a_fresh_frame() -> int:
    """Page faults of allocating and filling a full frame of 64-bit floats."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    frame = np.empty(FRAME_BYTES // 8)
    frame.fill(1.0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    del frame
    return faults


def _resident() -> int:
    """This process's resident memory now [bytes]."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def test_frames_reuse_the_heap_inside_and_give_it_back_after():
    pages = FRAME_BYTES // PAGE
    with heap.reuse_large_allocations():
        _faults_of_a_fresh_frame()  # the heap grows once
        assert _faults_of_a_fresh_frame() < 0.01 * pages  # the same memory again
        kept = _resident()
    # Freed frames are kept inside, and given back after.
    assert kept - _resident() > 0.9 * FRAME_BYTES


def test_release_free_memory_runs_anywhere():
    heap.release_free_memory()
