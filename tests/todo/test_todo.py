"""The todo stage: todo.sqlite from the prepared data and the catalog (the small sector)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from tessphot.cli import EXIT_ERROR, EXIT_OK, main
from tessphot.tasks import TaskManager, cbv_area
from tessphot.todo import OverrideFileError, TodoError, make_todo, read_exclusions, read_methods

REPO = Path(__file__).resolve().parents[2]


def _rows(path: Path) -> list[dict]:
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM todolist ORDER BY priority")]
    finally:
        con.close()


def test_every_star_on_the_data_brighter_than_the_limit(small_sector):
    rows = _rows(small_sector["todo"])
    with h5py.File(small_sector["truth"], "r") as h5:
        stars = h5["stars"][:]
        r0, r1, c0, c1 = (int(v) for v in h5.attrs["region"])
    # Truth positions are where the stars are; the todo list uses the prepared WCS, which
    # agrees to a few hundredths of a pixel: leave stars within 0.1 px of the edge out.
    inside = (stars["row"] >= r0 - 0.4) & (stars["row"] < r1 - 0.6)
    inside &= (stars["col"] >= c0 - 0.4) & (stars["col"] < c1 - 0.6)
    outside = (stars["row"] < r0 - 0.6) | (stars["row"] >= r1 - 0.4)
    outside |= (stars["col"] < c0 - 0.6) | (stars["col"] >= c1 - 0.4)
    expected = set(stars["starid"][inside & (stars["tmag"] < 15)].tolist())
    never = set(stars["starid"][outside | (stars["tmag"] >= 15)].tolist())
    listed = {r["starid"] for r in rows}
    assert expected <= listed
    assert not listed & never
    assert {small_sector["A"][0], small_sector["B"][0]} <= listed
    # Brightest first, priorities 1..N, the original's columns and values.
    tmags = [r["tmag"] for r in rows]
    assert tmags == sorted(tmags)
    assert [r["priority"] for r in rows] == list(range(1, len(rows) + 1))
    for r in rows:
        assert (r["sector"], r["camera"], r["ccd"], r["cadence"]) == (1, 1, 4, 1800)
        assert r["datasource"] == "ffi" and r["method"] is None and r["status"] is None
        assert r["cbv_area"] // 10 == 14 and 1 <= r["cbv_area"] % 10 <= 4


def test_cbv_area_from_the_camera_centre(small_sector):
    from tessphot.catalog.sqlite_catalog import CatalogDB
    from tessphot.geometry import angular_distance_deg

    rows = _rows(small_sector["todo"])
    with CatalogDB(small_sector["catalog"]) as db:
        s = db.settings
        star = db.star(small_sector["A"][0])
    distance = angular_distance_deg(
        star["ra"], star["decl"], s.camera_centre_ra, s.camera_centre_dec
    )
    row = next(r for r in rows if r["starid"] == small_sector["A"][0])
    assert row["cbv_area"] == cbv_area(1, 4, float(distance))


def test_existing_file_kept_unless_overwrite(sector_copy, tessphot_log):
    folder = sector_copy
    todo = folder / "todo.sqlite"
    with TaskManager(todo) as manager:  # a result in the file
        task = manager.get_task()
        manager.start_task(task)
    before = todo.stat().st_mtime_ns
    assert make_todo(folder) == todo
    assert todo.stat().st_mtime_ns == before
    assert "already exists" in tessphot_log.text
    make_todo(folder, overwrite=True)
    assert all(r["status"] is None for r in _rows(todo))


def test_faint_limit_and_halo_setting(small_sector, sector_copy):
    folder = sector_copy
    make_todo(folder, overwrite=True, settings={"faint_limit": 12.0, "halo_tmag_limit": 9.5})
    rows = _rows(folder / "todo.sqlite")
    assert rows and max(r["tmag"] for r in rows) < 12.0
    methods = {r["starid"]: r["method"] for r in rows}
    assert methods[small_sector["B"][0]] == "halo"  # Tmag 9.0 <= 9.5
    assert methods[small_sector["A"][0]] is None


def test_override_files(small_sector, sector_copy, tmp_path):
    folder = sector_copy
    a, b = small_sector["A"][0], small_sector["B"][0]
    methods = tmp_path / "methods.dat"
    methods.write_text(
        "# TIC sector datasource method reason\n"
        f"{a}  1  ffi  psf   Testing a forced method.\n"
        f"{b}  1  tpf  halo  Another data source: no effect.\n"
    )
    exclude = tmp_path / "exclude.dat"
    exclude.write_text(
        f"{b}  1  ffi  30  Excluded for this data release.\n"
        f"{a}  1  ffi  29  Another data release: no effect.\n"
    )
    make_todo(
        folder,
        overwrite=True,
        settings={"methods_file": str(methods), "exclude_file": str(exclude)},
    )
    rows = {r["starid"]: r for r in _rows(folder / "todo.sqlite")}
    assert rows[a]["method"] == "psf"
    assert b not in rows


def test_shipped_override_tables_are_the_originals():
    methods = read_methods()
    exclusions = read_exclusions()
    assert methods[(267211065, 1, "ffi")] == "halo"
    assert (44577667, 1, "tpf", 1) in exclusions
    assert len(methods) > 50 and len(exclusions) > 80


@pytest.mark.parametrize(
    "text, problem",
    [
        ("123 1 ffi magic reason\n", "unknown method"),
        ("123 x ffi halo reason\n", "invalid sector"),
        ("123 1 tape halo reason\n", "invalid datasource"),
        ("123 1\n", "expected TIC"),
    ],
)
def test_malformed_override_file(tmp_path, text, problem):
    path = tmp_path / "bad.dat"
    path.write_text(text)
    with pytest.raises(OverrideFileError, match=problem) as info:
        read_methods(path)
    assert "line 1" in str(info.value) and str(path) in str(info.value)


def test_missing_inputs_are_clear_errors(small_sector, sector_copy, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TodoError, match="no prepared-data files"):
        make_todo(empty)
    folder = sector_copy
    (folder / Path(small_sector["catalog"]).name).unlink()
    with pytest.raises(TodoError, match="catalog missing"):
        make_todo(folder, overwrite=True)


def test_cli_and_original_entry_point(sector_copy, capsys):
    folder = sector_copy
    (folder / "todo.sqlite").unlink()
    assert main(["-q", "todo", str(folder)]) == EXIT_OK
    assert "todo.sqlite" in capsys.readouterr().out
    n = len(_rows(folder / "todo.sqlite"))
    assert main(["-q", "todo", str(folder), "-o", "--sector", "1", "--camera", "1"]) == EXIT_OK
    assert len(_rows(folder / "todo.sqlite")) == n
    assert main(["-q", "todo", str(folder), "-o", "--ccd", "2"]) == EXIT_ERROR
    assert "no prepared-data files" in capsys.readouterr().err
    result = subprocess.run(
        [sys.executable, str(REPO / "run_make_todo.py"), str(folder), "--overwrite"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert len(_rows(folder / "todo.sqlite")) == n
    assert np.isfinite(n) and n > 10
