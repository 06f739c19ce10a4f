"""The todo file is the original TASOC layout (§4.4 of the notes), written atomically."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from astropy.table import Table

from tessphot.tasks import TODO_FILENAME, cbv_area, write_todolist
from tessphot.tasks.schema import CBV_AREA_RADIUS_DEG, FORMAT_VERSION

#: (name, declared type, NOT NULL, default, primary key) of each column, as in §4.4.
TODOLIST_COLUMNS = [
    ("priority", "INTEGER", 1, None, 1),
    ("starid", "INTEGER", 1, None, 0),
    ("sector", "INTEGER", 1, None, 0),
    ("datasource", "TEXT", 1, "'ffi'", 0),
    ("camera", "INTEGER", 1, None, 0),
    ("ccd", "INTEGER", 1, None, 0),
    ("cadence", "INTEGER", 1, None, 0),
    ("method", "TEXT", 0, "NULL", 0),
    ("tmag", "REAL", 0, None, 0),
    ("status", "INTEGER", 0, "NULL", 0),
    ("cbv_area", "INTEGER", 1, None, 0),
]
DIAGNOSTICS_COLUMNS = [
    ("priority", "INTEGER", 1, None, 1),
    ("lightcurve", "TEXT", 0, None, 0),
    ("method_used", "TEXT", 1, None, 0),
    ("elaptime", "REAL", 1, None, 0),
    ("worker_wait_time", "REAL", 0, None, 0),
    ("mean_flux", "DOUBLE", 0, None, 0),
    ("variance", "DOUBLE", 0, None, 0),
    ("variability", "DOUBLE", 0, None, 0),
    ("rms_hour", "DOUBLE", 0, None, 0),
    ("ptp", "DOUBLE", 0, None, 0),
    ("pos_row", "REAL", 0, None, 0),
    ("pos_column", "REAL", 0, None, 0),
    ("contamination", "REAL", 0, None, 0),
    ("mask_size", "INTEGER", 0, None, 0),
    ("edge_flux", "REAL", 0, None, 0),
    ("stamp_width", "INTEGER", 0, None, 0),
    ("stamp_height", "INTEGER", 0, None, 0),
    ("stamp_resizes", "INTEGER", 0, None, 0),
    ("prf_chi2", "REAL", 0, None, 0),
    ("errors", "TEXT", 0, None, 0),
]


def _row(starid, tmag, **extra):
    row = {
        "starid": starid,
        "sector": 1,
        "camera": 1,
        "ccd": 4,
        "cadence": 1800,
        "tmag": tmag,
        "cbv_area": 141,
    }
    row.update(extra)
    return row


def _columns(conn, table):
    return [(r[1], r[2], r[3], r[4], r[5]) for r in conn.execute(f"PRAGMA table_info({table})")]


def _indexes(conn, table):
    out = {}
    for _, name, unique, *_ in conn.execute(f"PRAGMA index_list({table})"):
        if name.startswith("sqlite_autoindex"):
            continue
        cols = [r[2] for r in conn.execute(f"PRAGMA index_info({name})")]
        out[name] = (bool(unique), cols)
    return out


@pytest.fixture
def todo(tmp_path):
    rows = [_row(3, 12.0), _row(1, 8.5, method="aperture"), _row(2, None), _row(4, 10.0)]
    return write_todolist(tmp_path / TODO_FILENAME, rows)


def test_original_schema(todo):
    conn = sqlite3.connect(todo)
    try:
        assert _columns(conn, "todolist") == TODOLIST_COLUMNS
        assert _columns(conn, "diagnostics") == DIAGNOSTICS_COLUMNS
        assert [c[:3] for c in _columns(conn, "photometry_skipped")] == [
            ("priority", "INTEGER", 1),
            ("skipped_by", "INTEGER", 1),
        ]
        assert _indexes(conn, "todolist") == {
            "unique_target_idx": (
                True,
                ["starid", "datasource", "sector", "camera", "ccd", "cadence"],
            ),
            "status_idx": (False, ["status"]),
            "starid_idx": (False, ["starid"]),
            "todolist_datasource_idx": (False, ["datasource"]),
        }
        assert _indexes(conn, "diagnostics") == {
            "diagnostics_lightcurve_idx": (True, ["lightcurve"])
        }
        fks = {
            (r[3], r[2], r[4], r[5], r[6])
            for r in conn.execute("PRAGMA foreign_key_list(photometry_skipped)")
        }
        assert fks == {
            ("priority", "todolist", "priority", "CASCADE", "CASCADE"),
            ("skipped_by", "todolist", "priority", "CASCADE", "RESTRICT"),
        }
        fks = [tuple(r[2:7]) for r in conn.execute("PRAGMA foreign_key_list(diagnostics)")]
        assert fks == [("todolist", "priority", "priority", "CASCADE", "CASCADE")]
        assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        meta = dict(conn.execute("SELECT key, value FROM tessphot_metadata"))
        assert meta["format_version"] == str(FORMAT_VERSION)
        assert meta["pipeline"] == "tessphot"
    finally:
        conn.close()


def test_priorities_by_brightness(todo):
    conn = sqlite3.connect(todo)
    rows = conn.execute("SELECT priority, starid, tmag, status, method, datasource FROM todolist")
    assert rows.fetchall() == [
        (1, 1, 8.5, None, "aperture", "ffi"),
        (2, 4, 10.0, None, None, "ffi"),
        (3, 3, 12.0, None, None, "ffi"),
        (4, 2, None, None, None, "ffi"),  # unknown magnitude last
    ]
    conn.close()
    assert [p.name for p in todo.parent.iterdir()] == [TODO_FILENAME]  # no temporary files


def test_rows_of_numpy_and_astropy(tmp_path):
    names = ("starid", "sector", "camera", "ccd", "cadence", "datasource", "tmag", "cbv_area")
    rows = [(10, 1, 2, 3, 120, "tpf", 9.0, 231), (11, 1, 2, 3, 120, "tpf:10", 12.0, 231)]
    table = Table(rows=rows, names=names)
    path = write_todolist(tmp_path / "a.sqlite", table)
    write_todolist(tmp_path / "b.sqlite", table.as_array())
    for name in ("a.sqlite", "b.sqlite"):
        conn = sqlite3.connect(tmp_path / name)
        got = conn.execute("SELECT starid, datasource, cadence, tmag FROM todolist").fetchall()
        assert got == [(10, "tpf", 120, 9.0), (11, "tpf:10", 120, 12.0)]
        assert isinstance(got[0][0], int)
        conn.close()
    assert path == tmp_path / "a.sqlite"


def test_existing_file_and_invalid_rows(todo):
    before = todo.read_bytes()
    with pytest.raises(FileExistsError, match="todo.sqlite"):
        write_todolist(todo, [_row(9, 9.0)])
    with pytest.raises(ValueError, match="same target twice"):
        write_todolist(todo, [_row(9, 9.0), _row(9, 9.5)], overwrite=True)
    for bad in (
        {"camera": 5},
        {"datasource": "tpf:abc"},
        {"method": "magic"},
        {"cadence": 0},
    ):
        with pytest.raises(ValueError, match="invalid target row"):
            write_todolist(todo, [_row(9, 9.0, **bad)], overwrite=True)
    with pytest.raises(ValueError, match="required field 'cbv_area'"):
        write_todolist(
            todo, [{"starid": 1, "sector": 1, "camera": 1, "ccd": 1, "cadence": 1}], overwrite=True
        )
    assert todo.read_bytes() == before  # failed writes leave the old file alone
    assert [p.name for p in todo.parent.iterdir()] == [TODO_FILENAME]
    write_todolist(todo, [_row(9, 9.0)], overwrite=True, metadata={"faint_limit": 15.0})
    conn = sqlite3.connect(todo)
    assert conn.execute("SELECT starid FROM todolist").fetchall() == [(9,)]
    assert dict(conn.execute("SELECT * FROM tessphot_metadata"))["faint_limit"] == "15.0"
    conn.close()


def test_cbv_area():
    radius = CBV_AREA_RADIUS_DEG
    assert radius == pytest.approx(16.97056, abs=1e-5)
    assert cbv_area(1, 4, 0.0) == 141
    assert cbv_area(3, 2, 0.3 * radius) == 322
    assert cbv_area(4, 1, 0.6 * radius) == 413
    assert cbv_area(2, 2, 0.8 * radius) == 224
    assert cbv_area(2, 2, 3 * radius) == 224
    assert cbv_area(1, 1, 0.25 * radius) == 112  # ring edges belong to the outer ring
    areas = cbv_area(np.array([1, 2]), np.array([3, 4]), np.array([1.0, 10.0]))
    np.testing.assert_array_equal(areas, [131, 243])
    with pytest.raises(ValueError, match="camera"):
        cbv_area(0, 1, 1.0)
    with pytest.raises(ValueError, match="CCD"):
        cbv_area(1, 5, 1.0)
    with pytest.raises(ValueError, match="distance"):
        cbv_area(1, 1, np.nan)
