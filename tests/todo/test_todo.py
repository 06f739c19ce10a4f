"""The todo stage: todo.sqlite from the prepared data and the catalog (the small sector)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from tessphot.cli import EXIT_ERROR, EXIT_OK, main
from tessphot.tasks import cbv_area
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


# --- Target pixel files of any shape, new files added to a list, exclusions logged ---------

#: The real TPF (TIC 25155310, sector 1, camera 4, CCD 1), under a SPOC name.
TPF_SOURCE = "tpf/tess25155310-s01-first-cadences.fits.gz"
TPF_NAME = "tess2018206045859-s0001-0000000025155310-0120-s_tp.fits.gz"
TPF_TIC = 25155310
#: Rows of the tall copy and the row its target is moved to (far from the middle: the old
#: 0.5 deg search around the middle missed it, 400 px = 2.3 deg away).
TALL_ROWS, TALL_TARGET_ROW = 1200, 1000
#: Table keywords that describe the columns (rebuilt for the new pixel shape).
_COLUMN_KEYWORD = ("TTYPE", "TFORM", "TUNIT", "TDISP", "TDIM", "TNULL", "TFIELDS", "NAXIS")


def _tall_tpf(source: Path, destination: Path) -> None:
    """A copy of the real TPF that is 1200 x 11 pixels (a bleed-column TPF), its target moved
    to row 1000 (the WCS shifted with it), every pixel collected."""
    from astropy.io import fits

    with fits.open(source) as hdul:
        primary = hdul[0].copy()
        table = hdul["PIXELS"]
        n = len(table.data)
        columns = []
        for col in table.columns:
            if col.dim:
                cube = np.zeros((n, TALL_ROWS, 11), dtype=np.float32)
                columns.append(
                    fits.Column(col.name, f"{TALL_ROWS * 11}E", dim=f"(11,{TALL_ROWS})", array=cube)
                )
            else:
                columns.append(fits.Column(col.name, col.format, array=table.data[col.name]))
        header = table.header.copy()
        for key in list(header):
            if key.startswith(_COLUMN_KEYWORD) or key in ("PCOUNT", "GCOUNT", "BITPIX", "XTENSION"):
                del header[key]
        pixels = fits.BinTableHDU.from_columns(columns, header=header, name="PIXELS")
        aperture = fits.ImageHDU(
            np.full((TALL_ROWS, 11), 1 | 2, dtype=np.int32), header=hdul["APERTURE"].header
        )
        aperture.header["CRPIX2"] += TALL_TARGET_ROW - 5
        fits.HDUList([primary, pixels, aperture]).writeto(destination)


def _user_catalog(folder: Path, rows: list[str], data_files: list[Path]) -> None:
    """A catalog of the TPFs' footprints from a user's TIC-like CSV file."""
    from tessphot.catalog.data import read_data_files
    from tessphot.catalog.make import make_data_catalogs
    from tessphot.catalog.sources.file import FileSource

    csv = folder / "user_catalog.csv"
    csv.write_text("ID,ra,dec,pmRA,pmDEC,Tmag\n" + "".join(f"{r}\n" for r in rows))
    make_data_catalogs(read_data_files(data_files), folder, FileSource([csv]), overwrite=True)


def test_tall_tpf_target_and_neighbours_found(test_data, tmp_path, tessphot_log):
    from tessphot.io.tpf import read_tpf

    folder = tmp_path / "input"
    folder.mkdir()
    tall = folder / TPF_NAME
    _tall_tpf(test_data / TPF_SOURCE, tall)
    tpf = read_tpf(tall, pixels=False)
    assert tpf.shape == (TALL_ROWS, 11)
    (near_ra, near_dec), (off_ra, off_dec) = tpf.wcs.all_pix2world([[5.0, 60.0], [5.0, -20.0]], 0)
    _user_catalog(
        folder,
        [
            f"{TPF_TIC},63.37389,-69.226789,63.0735,53.6783,10.555",
            f"900000001,{near_ra:.7f},{near_dec:.7f},0,0,12.0",
            f"900000002,{off_ra:.7f},{off_dec:.7f},0,0,12.0",  # 20 px off the end
        ],
        [tall],
    )
    rows = _rows(make_todo(folder))
    assert [(r["starid"], r["datasource"]) for r in rows] == [
        (TPF_TIC, "tpf"),
        (900000001, f"tpf:{TPF_TIC}"),
    ]
    assert "not in" not in tessphot_log.text


def test_new_files_added_without_resetting_finished_tasks(sector_copy, test_data, tessphot_log):
    folder = sector_copy
    todo = folder / "todo.sqlite"
    con = sqlite3.connect(todo)
    with con:
        con.execute("UPDATE todolist SET status = 1 WHERE priority = 1")
        con.execute("UPDATE todolist SET status = 3, method = 'psf' WHERE priority = 2")
        con.execute(
            "INSERT INTO diagnostics (priority, lightcurve, method_used, elaptime, errors) "
            "VALUES (1, 'c1800/lc.fits.gz', 'aperture', 1.5, NULL)"
        )
    con.close()
    before = _rows(todo)
    # Nothing new: nothing changes.
    assert make_todo(folder) == todo
    assert _rows(todo) == before
    assert "Added 0 new task(s)" in tessphot_log.text
    # A TPF of another CCD arrives, without any catalog for it: its header gives its target.
    shutil.copy(test_data / TPF_SOURCE, folder / TPF_NAME)
    make_todo(folder)
    after = _rows(todo)
    assert after[: len(before)] == before  # status, methods, priorities untouched
    (new,) = after[len(before) :]
    assert new["priority"] == len(before) + 1 and new["status"] is None
    assert (new["starid"], new["datasource"], new["camera"], new["ccd"]) == (TPF_TIC, "tpf", 4, 1)
    assert new["tmag"] == pytest.approx(10.555, abs=1e-3)
    con = sqlite3.connect(todo)
    assert con.execute("SELECT lightcurve, elaptime FROM diagnostics").fetchall() == [
        ("c1800/lc.fits.gz", 1.5)
    ]
    con.close()
    assert "Added 1 new task(s)" in tessphot_log.text
    assert "neighbours are unknown" in tessphot_log.text
    assert (folder / "catalog_sector001_camera4_ccd1.sqlite").is_file()
    # -o rebuilds from scratch: every result forgotten.
    make_todo(folder, overwrite=True)
    assert all(r["status"] is None for r in _rows(todo)) and len(_rows(todo)) == len(after)


def test_excluded_targets_are_logged(small_sector, sector_copy, test_data, tmp_path, tessphot_log):
    folder = sector_copy
    b = small_sector["B"][0]
    shutil.copy(test_data / TPF_SOURCE, folder / TPF_NAME)
    exclude = tmp_path / "exclude.dat"
    exclude.write_text(f"{b}  1  ffi  30  Bad.\n{TPF_TIC}  1  tpf  0  No data (DATA_REL 0 here).\n")
    make_todo(folder, overwrite=True, settings={"exclude_file": str(exclude)})
    starids = {r["starid"] for r in _rows(folder / "todo.sqlite")}
    assert b not in starids and TPF_TIC not in starids
    lines = [line for line in tessphot_log.text.splitlines() if "exclude list" in line]
    assert len(lines) == 2
    assert any(f"TIC {b}" in line and "sector001_camera1_ccd4" in line for line in lines)
    assert any(f"TIC {TPF_TIC}" in line and TPF_NAME in line for line in lines)


def test_cbv_area_one_formula_for_ffi_and_tpf_targets():
    from tessphot.catalog.schema import CatalogSettings
    from tessphot.tasks.schema import CBV_AREA_RADIUS_DEG
    from tessphot.todo.targets import target_cbv_areas

    settings = CatalogSettings(
        sector=1,
        camera=2,
        ccd=3,
        ticver="8.2",
        reference_time=0.0,
        epoch=2018.6,
        coord_buffer=0.2,
        camera_centre_ra=100.0,
        camera_centre_dec=0.0,
        footprint="",
    )
    # Along the equator, distance = RA offset: the rings' edges at 1/4, 1/2, 3/4 of the radius.
    edges = np.array([0.25, 0.5, 0.75]) * CBV_AREA_RADIUS_DEG
    ra = 100.0 + np.array(
        [0.0, edges[0] - 0.01, edges[0] + 0.01, edges[1] + 0.01, edges[2] + 0.01, 16.0]
    )
    areas = target_cbv_areas(settings, 2, 3, ra, np.zeros(ra.size))
    assert areas.tolist() == [231, 231, 232, 233, 234, 234]
    assert target_cbv_areas(settings, 2, 3, [], []).size == 0
