"""Reading the cubes of a source in blocks of cadences, within a byte budget."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from tessphot.prepare.layout import MAX_CHUNK_TIME

#: A box of pixels ``(row_min, row_max, col_min, col_max)``, half-open.
Box = tuple[int, int, int, int]
#: Most bytes of cubes read at once: larger stamps are processed in blocks of cadences.
STREAM_BYTES = 256 * 2**20


class BlockReader:
    """Blocks of cadences of a source's cubes over a box.

    ``pixel_flags`` covers ``flags_box`` (default the box), the other cubes the box.
    Cubes whose every cadence fits in :data:`STREAM_BYTES` are read once and kept for the
    next passes; larger ones are read in blocks of whole chunks (multiples of
    :data:`~tessphot.prepare.layout.MAX_CHUNK_TIME` cadences).

    Parameters
    ----------
    read : callable
        ``read(name, t0, t1, box)``: cadences ``t0:t1`` of a cube over a box.
    n : int
        Number of cadences.
    box : Box
        The pixels of the cubes (science coordinates).
    flags_box : Box, optional
        The pixels of ``pixel_flags``.
    """

    def __init__(
        self,
        read: Callable[[str, int, int, Box], np.ndarray],
        n: int,
        box: Box,
        *,
        flags_box: Box | None = None,
    ) -> None:
        self._read = read
        self.n = n
        self.box = box
        self.flags_box = box if flags_box is None else flags_box
        r0, r1, c0, c1 = box
        f0, f1, g0, g1 = self.flags_box
        per_cadence = 3 * 4 * (r1 - r0) * (c1 - c0) + (f1 - f0) * (g1 - g0)
        step = n
        if n * per_cadence > STREAM_BYTES:
            step = max(MAX_CHUNK_TIME, STREAM_BYTES // per_cadence)
            step -= step % MAX_CHUNK_TIME
        #: Cadences per block.
        self.step = step
        self._cache: dict[str, np.ndarray] = {}

    def _cube(self, name: str, t0: int, t1: int) -> np.ndarray:
        box = self.flags_box if name == "pixel_flags" else self.box
        return self._read(name, t0, t1, box)

    def __call__(self, names: Iterable[str]) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
        """Iterate over the blocks ``(t0, t1, {name: cube})`` of some cubes."""
        names = list(names)
        n, step = self.n, self.step
        for t0 in range(0, n, step):
            t1 = min(t0 + step, n)
            cubes = {}
            for name in names:
                if step == n:
                    if name not in self._cache:
                        self._cache[name] = self._cube(name, 0, n)
                    cubes[name] = self._cache[name]
                else:
                    cubes[name] = self._cube(name, t0, t1)
            yield t0, t1, cubes
