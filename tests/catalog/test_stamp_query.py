"""The spatial queries of CatalogDB against brute force (correctness only; the timing is in
benchmarks/bench_catalog.py)."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest

from tessphot.catalog import CatalogDB, CatalogError, make_catalogs, sphere
from tessphot.catalog.schema import CatalogSettings
from tessphot.catalog.sources.file import FileSource
from tessphot.catalog.writer import CatalogWriter

#: Stars this close to a stamp edge [px] may go either way (edges are sampled).
EDGE_TOLERANCE_PX = 0.01


@pytest.fixture(scope="module")
def dense_catalog(tmp_path_factory, ccd_rows, write_table):
    """40 000 stars over sector 1, camera 1, CCD 4."""
    folder = tmp_path_factory.mktemp("dense")
    rows = ccd_rows(np.random.default_rng(11), 40_000)
    write_table(folder / "tic.fits", rows)
    path = make_catalogs(1, folder, FileSource([folder / "tic.fits"]), [1], [4], faint_limit=None)
    return path[0]


def _brute_box(stars, col, row, r0, r1, c0, c1, margin=0.0):
    lo_r, hi_r = r0 - 0.5 - margin, r1 - 0.5 + margin
    lo_c, hi_c = c0 - 0.5 - margin, c1 - 0.5 + margin
    inside = (row >= lo_r) & (row < hi_r) & (col >= lo_c) & (col < hi_c)
    near = (
        (np.minimum(np.abs(row - lo_r), np.abs(row - hi_r)) < EDGE_TOLERANCE_PX)
        & (col > lo_c - 1)
        & (col < hi_c + 1)
    ) | (
        (np.minimum(np.abs(col - lo_c), np.abs(col - hi_c)) < EDGE_TOLERANCE_PX)
        & (row > lo_r - 1)
        & (row < hi_r + 1)
    )
    return set(stars["starid"][inside & ~near].tolist()), set(stars["starid"][near].tolist())


def test_stars_in_box_equals_brute_force(dense_catalog):
    rng = np.random.default_rng(1)
    with CatalogDB(dense_catalog) as db:
        stars = db.stars()
        col, row = db.wcs.all_world2pix(stars["ra"], stars["decl"], 0)
        n_found = 0
        for _ in range(150):
            size = int(rng.integers(10, 60))
            r0, c0 = rng.integers(-20, 2048 - size + 20, 2)
            margin = float(rng.choice([0.0, 2.5]))
            got = db.stars_in_box(r0, r0 + size, c0, c0 + size, margin=margin)
            sure, unsure = _brute_box(stars, col, row, r0, r0 + size, c0, c0 + size, margin)
            ids = set(got["starid"].tolist())
            assert sure <= ids and ids <= sure | unsure
            assert np.all(np.diff(got["tmag"]) >= 0)  # sorted by magnitude
            n_found += len(got)
        assert n_found > 1000
        # A large box (sampled edges, general polygon test) and a magnitude cut.
        got = db.stars_in_box(100, 700, 1500, 2048, tmag_max=12.0)
        sure, unsure = _brute_box(
            stars[stars["tmag"] <= 12.0],
            col[stars["tmag"] <= 12.0],
            row[stars["tmag"] <= 12.0],
            100,
            700,
            1500,
            2048,
        )
        ids = set(got["starid"].tolist())
        assert sure <= ids <= sure | unsure and len(ids) > 100
        assert db.stars_in_box(5, 5, 0, 10).size == 0  # empty box


def test_cone_and_polygon_queries_equal_brute_force(dense_catalog):
    with CatalogDB(dense_catalog) as db:
        stars = db.stars()
        xyz = sphere.radec_to_xyz(stars["ra"], stars["decl"])
        ra0, dec0 = float(np.median(stars["ra"])), float(np.median(stars["decl"]))
        got = db.stars_in_cone(ra0, dec0, 0.5)
        centre = sphere.radec_to_xyz(ra0, dec0)
        expect = stars["starid"][xyz @ centre >= np.cos(np.radians(0.5))]
        assert set(got["starid"].tolist()) == set(expect.tolist()) and len(expect) > 50
        poly_ra = ra0 + np.array([-1.0, 1.2, 0.9, -0.7])
        poly_dec = dec0 + np.array([-0.8, -0.6, 1.1, 0.7])
        got = db.stars_in_polygon(poly_ra, poly_dec, tmag_max=15)
        inside = sphere.polygon_contains(xyz, sphere.radec_to_xyz(poly_ra, poly_dec))
        expect = stars["starid"][inside & (stars["tmag"] <= 15)]
        assert set(got["starid"].tolist()) == set(expect.tolist()) and len(expect) > 50
        assert db.star(int(stars["starid"][0]))["tmag"] == stars["tmag"][0]
        assert db.star(1) is None


@pytest.fixture(scope="module")
def wrap_and_pole_catalog(tmp_path_factory, cap_rows):
    """A catalog written directly, with stars around RA 0 and around the north pole."""
    rng = np.random.default_rng(6)
    a = cap_rows(rng, 4000, (0.0, 10.0), 3.0)
    b = cap_rows(rng, 4000, (123.0, 89.0), 3.0)
    rows = {k: np.concatenate([a[k], b[k]]) for k in a}
    rows["ID"] = np.arange(1, rows["ra"].size + 1)
    path = tmp_path_factory.mktemp("wrap") / "catalog_sector001_camera1_ccd1.sqlite"
    settings = CatalogSettings(1, 1, 1, "8.2", 2458338.5, 2018.6, 0.2, 0.0, 0.0, "()")
    with CatalogWriter(path, settings, {}) as writer:
        writer.add(
            rows["ID"],
            rows["ra"],
            rows["dec"],
            rows["ra"],
            rows["dec"],
            rows["pmRA"],
            rows["pmDEC"],
            rows["Tmag"],
            rows["Teff"],
        )
        writer.finish()
    return path


@pytest.mark.parametrize("rtree", [True, False])
def test_queries_across_ra_zero_and_the_pole(wrap_and_pole_catalog, tmp_path, rtree):
    path = wrap_and_pole_catalog
    if not rtree:  # a catalog as the original pipeline wrote it: the (ra, decl) index only
        path = shutil.copy(path, tmp_path / path.name)
        con = sqlite3.connect(path)
        con.execute("DROP TABLE catalog_rtree")
        con.commit()
        con.close()
    with CatalogDB(path) as db:
        assert db.has_rtree == rtree
        stars = db.stars()
        xyz = sphere.radec_to_xyz(stars["ra"], stars["decl"])
        for ra, dec, radius in (
            (0.3, 10.0, 1.5),
            (359.2, 9.0, 2.0),
            (200.0, 89.5, 1.2),
            (0, 90, 2.5),
        ):
            got = db.stars_in_cone(ra, dec, radius)
            c = sphere.radec_to_xyz(ra, dec)
            expect = stars["starid"][xyz @ c >= np.cos(np.radians(radius))]
            assert set(got["starid"].tolist()) == set(expect.tolist()) and len(expect) > 20
        # A polygon around the pole and one across RA 0.
        for pra, pdec in (
            ([0, 90, 180, 270], [88.0] * 4),
            ([358.0, 2.0, 2.5, 357.0], [8, 8, 12, 11]),
        ):
            got = db.stars_in_polygon(pra, pdec)
            inside = sphere.polygon_contains(xyz, sphere.radec_to_xyz(pra, pdec))
            assert set(got["starid"].tolist()) == set(stars["starid"][inside].tolist())
            assert inside.sum() > 20


def test_catalogdb_rejects_what_is_not_a_catalog(tmp_path):
    with pytest.raises(CatalogError, match="not found"):
        CatalogDB(tmp_path / "missing.sqlite")
    (tmp_path / "junk.sqlite").write_bytes(b"this is not SQLite at all" * 100)
    with pytest.raises(CatalogError, match="cannot read"):
        CatalogDB(tmp_path / "junk.sqlite")
    con = sqlite3.connect(tmp_path / "other.sqlite")
    con.execute("CREATE TABLE t (a)")
    con.close()
    with pytest.raises(CatalogError, match="not a catalog"):
        CatalogDB(tmp_path / "other.sqlite")
