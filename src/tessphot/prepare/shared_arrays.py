"""Named numpy arrays in one block of memory that worker processes can share.

The prepare stage's workers write each frame they read, and each frame they encode, straight
into arrays of the main process (:mod:`tessphot.prepare.stream`): a ring of frames waiting
for their smoothed background and the block of frames being encoded. Such arrays live in
one POSIX shared-memory segment; pickled, a :class:`SharedArrays` carries only the
segment's name and layout, and unpickled (in a worker) it attaches to the same memory.
Without workers the arrays are private memory.

Every segment is created and removed by the main process; a killed run's segment is
removed by Python's resource tracker.
"""

from __future__ import annotations

from multiprocessing import shared_memory

import numpy as np

#: Alignment of each array in the segment [bytes].
ALIGNMENT = 64


class SharedArrays:
    """Arrays of given shapes and types in one segment (``shared``) or in private memory.

    Parameters
    ----------
    layout : dict
        ``name: (shape, dtype)`` of every array.
    shared : bool
        In a shared-memory segment (to be sent to worker processes), else private memory.
    """

    def __init__(self, layout: dict[str, tuple[tuple[int, ...], str]], *, shared: bool) -> None:
        self.layout = {
            name: (tuple(shape), np.dtype(dtype).str) for name, (shape, dtype) in layout.items()
        }
        size = max(_offsets(self.layout)[1], 1)
        self._segment = shared_memory.SharedMemory(create=True, size=size) if shared else None
        self._owner = True
        buffer = self._segment.buf if self._segment is not None else bytearray(size)
        self.arrays = _views(self.layout, buffer)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __getstate__(self) -> dict:
        if self._segment is None:
            raise TypeError("private arrays cannot be sent to another process")
        return {"layout": self.layout, "name": self._segment.name}

    def __setstate__(self, state: dict) -> None:
        self.layout = state["layout"]
        self._segment = shared_memory.SharedMemory(name=state["name"])
        self._owner = False
        self.arrays = _views(self.layout, self._segment.buf)

    def release(self) -> None:
        """Let go of the arrays; the creator removes the segment."""
        self.arrays = {}
        if self._segment is None:
            return
        try:
            self._segment.close()
        except BufferError:  # a view is still held somewhere: the memory goes with it
            pass
        if self._owner:
            self._segment.unlink()
        self._segment = None


def _offsets(layout: dict) -> tuple[dict[str, int], int]:
    """Each array's aligned offset, and the total size [bytes]."""
    offsets, end = {}, 0
    for name, (shape, dtype) in layout.items():
        offsets[name] = end
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        end += -(-nbytes // ALIGNMENT) * ALIGNMENT
    return offsets, end


def _views(layout: dict, buffer) -> dict[str, np.ndarray]:
    offsets, _ = _offsets(layout)
    return {
        name: np.ndarray(shape, dtype=dtype, buffer=buffer, offset=offsets[name])
        for name, (shape, dtype) in layout.items()
    }
