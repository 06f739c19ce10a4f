"""The C heap of the prepare stage's processes (glibc; no-ops elsewhere).

A full frame's arrays are 4-32 MiB each. By default glibc gives such an allocation its own
memory map and returns it to the system when it is freed, so every frame's arrays are
fresh pages that the kernel zeroes on first touch: 30 000-45 000 page faults and 0.15-0.25 s
of system time per full frame. While frames stream, :func:`reuse_large_allocations` keeps
them on the heap, to be reused by the next frame (the process then holds its largest
frame's working set between frames); :func:`release_free_memory` gives the heap's free
memory back at the end of a block or a run.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterator
from contextlib import contextmanager

#: glibc's ``mallopt`` parameters.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: glibc's defaults (the thresholds it starts from) [bytes].
DEFAULT_THRESHOLD = 128 * 2**10
#: While frames stream: allocations below this come from the heap [bytes] (a full frame's
#: largest arrays are 32 MiB) ...
STREAM_MMAP_THRESHOLD = 256 * 2**20
#: ... and free memory at the heap's top is kept up to this [bytes].
STREAM_TRIM_THRESHOLD = 512 * 2**20


def _libc():
    """The C library, when it is glibc (None elsewhere)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "mallopt") else None
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


def release_free_memory() -> None:
    """Give the heap's free memory back to the system.

    Many small objects freed (a catalog read, a frame's headers) leave the heap fragmented:
    the process keeps that memory until it is trimmed.
    """
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


def keep_large_allocations() -> None:
    """From now on, take large arrays from the heap and keep them there (this process).

    For worker processes, which do nothing else.
    """
    if _LIBC is not None:
        _LIBC.mallopt(M_MMAP_THRESHOLD, STREAM_MMAP_THRESHOLD)
        _LIBC.mallopt(M_TRIM_THRESHOLD, STREAM_TRIM_THRESHOLD)


@contextmanager
def reuse_large_allocations() -> Iterator[None]:
    """Large arrays from the heap and kept there inside the block; glibc's defaults after.

    After it, the thresholds are glibc's starting values, without its dynamic raising of
    them (which setting them turns off), and the free memory is given back.
    """
    keep_large_allocations()
    try:
        yield
    finally:
        if _LIBC is not None:
            _LIBC.mallopt(M_MMAP_THRESHOLD, DEFAULT_THRESHOLD)
            _LIBC.mallopt(M_TRIM_THRESHOLD, DEFAULT_THRESHOLD)
        release_free_memory()
