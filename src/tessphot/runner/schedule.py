"""An I/O-aware order of the tasks: stars that share HDF5 chunks go to one worker, in a row.

The cubes of a prepared-data file are stored in chunks of
up to :data:`~tessphot.prepare.layout.MAX_CHUNK_TIME` cadences by
:data:`~tessphot.prepare.layout.CHUNK_PIXELS` x ``CHUNK_PIXELS`` pixels, and a stamp reads every
chunk it touches over all cadences. The schedule cuts each CCD into tiles of one chunk's
pixels and groups the tasks by the tile of their star (brightest first within a tile, so
that a bright star's result can make its faint neighbours SKIPPED before they run). The tiles
are put in a serpentine order (tile rows in turn, every other row walked backwards), so that
consecutive tiles are neighbours.

A worker takes the tasks of one tile after the other and then moves on to the next tile in
that order: stars that read the same chunks run in the same process close in time, where the
HDF5 chunk cache (:data:`~tessphot.prepare.cube.CHUNK_CACHE_BYTES`) still holds them
decompressed (a small region is read whole instead:
:data:`~tessphot.prepare.cube.WHOLE_REGION_BYTES`). Workers start far apart: a worker that
needs a new tile and whose next tile is taken starts at the middle of the longest stretch of
tiles nobody has touched yet; when every tile is taken, it helps with the fullest one.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import defaultdict, deque
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tessphot.catalog.errors import CatalogError
from tessphot.catalog.make import catalog_path
from tessphot.catalog.sqlite_catalog import CatalogDB
from tessphot.prepare.cube import CHUNK_PIXELS, PreparedCube, hdf5_name

logger = logging.getLogger(__name__)

#: Side of the square tiles of the schedule [px]: the pixels of one chunk of the cubes.
TILE_PIXELS = CHUNK_PIXELS

#: A tile: ``(sector, camera, ccd, tile row, tile column)``.
Tile = tuple[int, int, int, int, int]


def task_tiles(
    input_folder: str | os.PathLike, tasks: Iterable[Mapping[str, Any]]
) -> dict[int, Tile]:
    """The tile of each task's star, by task priority.

    The star's position is its catalog position at the reference frame's WCS of the
    prepared-data file (where the photometry centres its stamp). Tasks whose CCD has no
    readable prepared data or catalog, or whose star is not in the catalog, get no tile:
    the photometry will report the problem. So do tasks of target pixel files (their data are
    not in the chunks of the full-frame cube).

    Parameters
    ----------
    input_folder : path-like
        Folder with the prepared data and catalogs.
    tasks : iterable of mapping
        Tasks (``priority``, ``starid``, ``sector``, ``camera``, ``ccd``).

    Returns
    -------
    dict
        Priority to :data:`Tile`.
    """
    folder = Path(input_folder)
    by_ccd: dict[tuple[int, int, int], list[Mapping[str, Any]]] = defaultdict(list)
    for task in tasks:
        if (task.get("datasource") or "ffi") != "ffi":
            continue
        by_ccd[(int(task["sector"]), int(task["camera"]), int(task["ccd"]))].append(task)
    tiles: dict[int, Tile] = {}
    for (sector, camera, ccd), group in by_ccd.items():
        try:
            rows, cols, origin = _star_pixels(folder, sector, camera, ccd, group)
        except (OSError, KeyError, ValueError, CatalogError) as err:
            logger.debug(
                "No I/O-aware order for sector %d camera %d CCD %d: %s", sector, camera, ccd, err
            )
            continue
        for task, row, col in zip(group, rows, cols, strict=True):
            if np.isfinite(row) and np.isfinite(col):
                tiles[int(task["priority"])] = (
                    sector,
                    camera,
                    ccd,
                    int(np.floor(row + 0.5) - origin[0]) // TILE_PIXELS,
                    int(np.floor(col + 0.5) - origin[1]) // TILE_PIXELS,
                )
    return tiles


def _star_pixels(
    folder: Path, sector: int, camera: int, ccd: int, tasks: Sequence[Mapping[str, Any]]
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Science-area rows and columns of the tasks' stars, and the prepared data's origin.

    Stars not in the catalog get NaN.
    """
    with PreparedCube(folder / hdf5_name(sector, camera, ccd)) as cube:
        origin = cube.origin
        wcs = cube.reference_wcs
    if wcs is None:
        raise ValueError("no WCS for the reference frame")
    with CatalogDB(catalog_path(folder, sector, camera, ccd)) as db:
        stars = db.stars()
    index = {int(s): i for i, s in enumerate(stars["starid"])}
    found = np.array([index.get(int(task["starid"]), -1) for task in tasks], dtype=np.intp)
    ra = np.where(found >= 0, stars["ra"][found], np.nan)
    dec = np.where(found >= 0, stars["decl"][found], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        col, row = wcs.all_world2pix(ra, dec, 0, quiet=True)
    return np.asarray(row, dtype=float), np.asarray(col, dtype=float), origin


def serpentine_key(tile: Tile) -> tuple[int, int, int, int, int]:
    """Sort key of a tile: CCD by CCD, tile rows in turn, odd rows walked backwards."""
    sector, camera, ccd, row, col = tile
    return (sector, camera, ccd, row, -col if row % 2 else col)


class TileScheduler:
    """Tasks grouped by tile, handed out so that each worker works through whole tiles.

    Parameters
    ----------
    tasks : sequence of mapping
        The tasks (with ``priority`` and ``tmag``).
    tiles : mapping
        :data:`Tile` by priority (:func:`task_tiles`); tasks without one are handed out
        last, brightest first.
    """

    def __init__(self, tasks: Sequence[Mapping[str, Any]], tiles: Mapping[int, Tile]) -> None:
        self._tiles = dict(tiles)
        grouped: dict[Tile | None, list[dict[str, Any]]] = defaultdict(list)
        for task in tasks:
            grouped[self._tiles.get(int(task["priority"]))].append(dict(task))
        keys = sorted((k for k in grouped if k is not None), key=serpentine_key)
        if None in grouped:
            keys.append(None)
        #: Tile of each group, in schedule order.
        self._keys: list[Tile | None] = keys
        self._index = {key: i for i, key in enumerate(keys)}
        self._groups: list[deque[dict[str, Any]]] = [
            deque(sorted(grouped[key], key=_priority)) for key in keys
        ]
        #: Worker working through each group (None: nobody yet, or nobody any more).
        self._owner: list[Hashable | None] = [None] * len(keys)
        #: Group each worker works through.
        self._current: dict[Hashable, int] = {}
        self._started = False
        self._size = len(tasks)

    def __len__(self) -> int:
        """Tasks waiting to be handed out."""
        return self._size

    @property
    def tiles(self) -> int:
        """Number of tile groups (including the group of tasks without a tile)."""
        return len(self._keys)

    def pop(self, worker: Hashable) -> dict[str, Any] | None:
        """The next task for a worker (None: nothing left)."""
        if not self._size:
            return None
        index = self._current.get(worker)
        if index is None or not self._groups[index]:
            index = self._claim(worker, index)
        self._size -= 1
        return self._groups[index].popleft()

    def push(self, task: Mapping[str, Any]) -> None:
        """Hand a task out again (first in its tile), or a new one (last in its tile)."""
        task = dict(task)
        key = self._tiles.get(int(task["priority"]))
        index = self._index.get(key)
        if index is None:  # a task the schedule has not seen: a group of its own at the end
            index = len(self._keys)
            self._keys.append(key)
            self._index[key] = index
            self._groups.append(deque())
            self._owner.append(None)
        group = self._groups[index]
        if group and _priority(task) < _priority(group[0]):
            group.appendleft(task)
        else:
            group.append(task)
        self._size += 1

    def release(self, worker: Hashable) -> None:
        """A worker is gone: its group is free for the others."""
        index = self._current.pop(worker, None)
        if index is not None and self._owner[index] == worker:
            self._owner[index] = None

    def _claim(self, worker: Hashable, previous: int | None) -> int:
        """Give a worker a new group with tasks; returns its index."""
        if previous is not None and self._owner[previous] == worker:
            self._owner[previous] = None
        following = -1 if previous is None else previous + 1
        if 0 <= following < len(self._groups) and (
            self._groups[following] and self._owner[following] is None
        ):
            index = following  # the usual case: the next tile
        else:
            free = [i for i, group in enumerate(self._groups) if group and self._owner[i] is None]
            if not free:  # every group with tasks is being worked on: help with the fullest
                index = max(range(len(self._groups)), key=lambda i: len(self._groups[i]))
            elif not self._started:
                index = free[0]
            else:
                index = _middle_of_longest_run(free)
        self._started = True
        self._owner[index] = worker
        self._current[worker] = index
        return index


def _priority(task: Mapping[str, Any]) -> int:
    return int(task["priority"])


def _middle_of_longest_run(indices: Sequence[int]) -> int:
    """The middle of the longest run of consecutive integers in a sorted sequence."""
    best_start, best_length = indices[0], 1
    start, length = indices[0], 1
    for previous, current in zip(indices, indices[1:], strict=False):
        if current == previous + 1:
            length += 1
        else:
            start, length = current, 1
        if length > best_length:
            best_start, best_length = start, length
    return best_start + best_length // 2
