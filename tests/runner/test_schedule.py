"""The I/O-aware schedule: tasks grouped by HDF5 chunk tile, whole tiles per worker."""

from __future__ import annotations

import numpy as np

from tessphot.runner.schedule import TILE_PIXELS, TileScheduler, serpentine_key, task_tiles


def _tasks(tiles: list[tuple[int, int]]) -> tuple[list[dict], dict[int, tuple]]:
    """One task per entry, priority 1.. in order, on the given (tile row, tile column)."""
    tasks = [{"priority": i + 1, "starid": 1000 + i, "tmag": 10.0} for i in range(len(tiles))]
    return tasks, {i + 1: (1, 1, 4, r, c) for i, (r, c) in enumerate(tiles)}


def test_serpentine_order():
    keys = [(1, 1, 4, r, c) for r in range(3) for c in range(3)]
    ordered = [k[3:] for k in sorted(keys, key=serpentine_key)]
    assert ordered == [(0, 0), (0, 1), (0, 2), (1, 2), (1, 1), (1, 0), (2, 0), (2, 1), (2, 2)]


def test_one_worker_goes_through_whole_tiles_brightest_first():
    tasks, tiles = _tasks([(1, 0), (0, 0), (1, 0), (0, 1), (0, 0)])
    scheduler = TileScheduler(tasks, tiles)
    assert len(scheduler) == 5 and scheduler.tiles == 3
    order = [scheduler.pop("w")["priority"] for _ in range(5)]
    assert order == [2, 5, 4, 1, 3]  # tiles (0,0), (0,1), (1,0): serpentine
    assert scheduler.pop("w") is None and len(scheduler) == 0


def test_workers_start_far_apart_and_keep_their_tiles():
    tasks, tiles = _tasks([(0, c) for c in range(8) for _ in range(2)])
    scheduler = TileScheduler(tasks, tiles)
    a = [scheduler.pop("a")["priority"] for _ in range(2)]
    b = [scheduler.pop("b")["priority"] for _ in range(2)]
    assert a == [1, 2]  # tile 0
    assert b == [9, 10]  # the middle of the tiles nobody has: tile 4
    assert [scheduler.pop("a")["priority"] for _ in range(2)] == [3, 4]  # tile 1, next to 0
    assert [scheduler.pop("b")["priority"] for _ in range(2)] == [11, 12]  # tile 5


def test_requeued_task_comes_first_and_idle_workers_help():
    tasks, tiles = _tasks([(0, 0), (0, 0), (0, 0)])
    scheduler = TileScheduler(tasks, tiles)
    first = scheduler.pop("a")
    scheduler.release("a")  # worker a died
    scheduler.push(first)
    assert scheduler.pop("b")["priority"] == 1
    assert scheduler.pop("c")["priority"] == 2  # every tile taken: c helps b
    assert scheduler.pop("b")["priority"] == 3


def test_tasks_without_a_tile_come_last():
    tasks, tiles = _tasks([(0, 0), (0, 0)])
    del tiles[1]
    tasks.append({"priority": 3, "starid": 3, "tmag": 5.0})  # new, unknown to the schedule
    scheduler = TileScheduler(tasks[:2], tiles)
    scheduler.push(tasks[2])
    assert [scheduler.pop("w")["priority"] for _ in range(3)] == [2, 1, 3]


def test_task_tiles_of_a_prepared_ccd(small_sector, sector_copy):
    """The tile of each star is the chunk of its pixel in the prepared cube."""
    from tessphot.sources import ffi_source
    from tessphot.tasks import TaskManager

    with TaskManager(sector_copy) as manager:
        tasks = manager.get_tasks()
    tpf = {**tasks[0], "priority": 10_001, "datasource": "tpf"}  # data not in the cube
    tasks.append({**tasks[0], "priority": 10_000, "starid": 1})  # not in the catalog
    tiles = task_tiles(sector_copy, [*tasks, tpf])
    assert 10_000 not in tiles and 10_001 not in tiles and len(tiles) == len(tasks) - 1
    data = ffi_source(sector_copy, 1, 1, 4, 19.0)
    for task in tasks[:-1]:
        index = data.star(task["starid"])
        row = int(np.floor(data.stars.row[index] + 0.5)) - data.origin[0]
        col = int(np.floor(data.stars.col[index] + 0.5)) - data.origin[1]
        assert tiles[task["priority"]] == (1, 1, 4, row // TILE_PIXELS, col // TILE_PIXELS)
    assert task_tiles(sector_copy / "nothing", tasks) == {}
