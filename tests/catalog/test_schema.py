"""The catalog file layout is the original TASOC one (§4.2 of the notes), plus our index."""

from __future__ import annotations

import re
import sqlite3

import numpy as np
import pytest

from tessphot.catalog import CatalogDB, catalog_path, make_catalogs
from tessphot.catalog.footprint import ccd_footprint
from tessphot.catalog.motion import julian_epoch
from tessphot.catalog.schema import FORMAT_VERSION, catalog_filename
from tessphot.catalog.sources.file import FileSource
from tessphot.sectors import sector_info

#: (name, declared type, NOT NULL, primary key) of each column, as in §4.2.
SETTINGS_COLUMNS = [
    ("sector", "INTEGER", 1, 0),
    ("camera", "INTEGER", 1, 0),
    ("ccd", "INTEGER", 1, 0),
    ("ticver", "TEXT", 1, 0),
    ("reference_time", "DOUBLE", 0, 0),
    ("epoch", "DOUBLE", 0, 0),
    ("coord_buffer", "DOUBLE", 0, 0),
    ("camera_centre_ra", "DOUBLE", 0, 0),
    ("camera_centre_dec", "DOUBLE", 0, 0),
    ("footprint", "TEXT", 0, 0),
]
CATALOG_COLUMNS = [
    ("starid", "INTEGER", 1, 1),
    ("ra", "DOUBLE", 1, 0),
    ("decl", "DOUBLE", 1, 0),
    ("ra_J2000", "DOUBLE", 1, 0),
    ("decl_J2000", "DOUBLE", 1, 0),
    ("pm_ra", "DOUBLE", 0, 0),
    ("pm_decl", "DOUBLE", 0, 0),
    ("tmag", "REAL", 1, 0),
    ("teff", "REAL", 0, 0),
]
FOOTPRINT_RE = re.compile(
    r"^\((\(-?\d+\.\d{16},-?\d+\.\d{16}\),)+\(-?\d+\.\d{16},-?\d+\.\d{16}\)\)$"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory, ccd_rows, write_table):
    folder = tmp_path_factory.mktemp("schema")
    rows = ccd_rows(np.random.default_rng(3), 400)
    write_table(folder / "tic.csv", rows)
    paths = make_catalogs(1, folder, FileSource([folder / "tic.csv"]), [1], [4])
    return folder, paths[0], rows


def _columns(con, table):
    return [(r[1], r[2], r[3], r[5]) for r in con.execute(f"PRAGMA table_info({table})")]


def test_file_name_and_place(built):
    folder, path, _ = built
    assert path == catalog_path(folder, 1, 1, 4) == folder / "catalog_sector001_camera1_ccd4.sqlite"
    assert catalog_filename(27, 4, 1) == "catalog_sector027_camera4_ccd1.sqlite"
    # Nothing else was left in the folder (temporary files are renamed or removed).
    assert sorted(p.name for p in folder.iterdir()) == [path.name, "tic.csv"]


def test_tables_columns_and_index_as_the_original(built):
    _, path, _ = built
    con = sqlite3.connect(path)
    assert _columns(con, "settings") == SETTINGS_COLUMNS
    assert _columns(con, "catalog") == CATALOG_COLUMNS
    index = con.execute("PRAGMA index_info(ra_dec_idx)").fetchall()
    assert [r[2] for r in index] == ["ra", "decl"]
    assert con.execute("PRAGMA page_size").fetchone()[0] == 4096
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert con.execute("SELECT COUNT(*) FROM settings").fetchone()[0] == 1
    # tessphot's additions: the R*Tree on unit vectors and a metadata table.
    rtree = _columns(con, "catalog_rtree")
    assert [c[0] for c in rtree] == ["starid", "xmin", "xmax", "ymin", "ymax", "zmin", "zmax"]
    meta = dict(con.execute("SELECT key, value FROM tessphot_metadata"))
    assert meta["format_version"] == str(FORMAT_VERSION) and meta["source"] == "file"
    n = con.execute("SELECT COUNT(*) FROM catalog").fetchone()[0]
    assert (
        con.execute("SELECT COUNT(*) FROM catalog_rtree").fetchone()[0] == n == int(meta["n_stars"])
    )
    con.close()


def test_settings_row(built):
    _, path, _ = built
    info = sector_info(1)
    fp = ccd_footprint(1, 1, 4, 0.2)
    with CatalogDB(path) as db:
        s = db.settings
    assert (s.sector, s.camera, s.ccd, s.ticver) == (1, 1, 4, "8.2")
    assert s.reference_time == info.reference_time
    assert s.epoch == pytest.approx(julian_epoch(info.reference_time)) and 2018 < s.epoch < 2019
    assert s.coord_buffer == 0.2
    assert (s.camera_centre_ra, s.camera_centre_dec) == pytest.approx(fp.camera_centre)
    assert FOOTPRINT_RE.match(s.footprint)
    pairs = re.findall(r"\((-?[\d.]+),(-?[\d.]+)\)", s.footprint)
    ra, dec = np.array(pairs, dtype=float).T
    qra, qdec = fp.query_polygon_radec()
    assert np.allclose(ra, qra, atol=1e-12) and np.allclose(dec, qdec, atol=1e-12)


def test_rows_hold_epoch_and_j2000_positions(built):
    _, path, rows = built
    with CatalogDB(path) as db:
        stars = db.stars()
    index = {sid: i for i, sid in enumerate(rows["ID"].tolist())}
    i = np.array([index[s] for s in stars["starid"].tolist()])
    assert np.array_equal(stars["ra_J2000"], np.mod(rows["ra"][i], 360.0))
    assert np.array_equal(stars["decl_J2000"], rows["dec"][i])
    assert np.array_equal(stars["tmag"], rows["Tmag"][i])
    # Unknown proper motions and temperatures are NULL (NaN in the arrays).
    assert np.array_equal(np.isnan(stars["pm_ra"]), np.isnan(rows["pmRA"][i]))
    assert np.array_equal(np.isnan(stars["teff"]), np.isnan(rows["Teff"][i]))
    assert np.isnan(stars["pm_ra"]).any() and np.isnan(stars["teff"]).any()
    con = sqlite3.connect(path)
    assert con.execute("SELECT COUNT(*) FROM catalog WHERE pm_ra IS NULL").fetchone()[0] > 0
    con.close()
