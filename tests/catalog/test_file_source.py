"""The file source: the simulator's catalog, and users' CSV, ECSV, FITS and Parquet files."""

from __future__ import annotations

import sqlite3

import h5py
import numpy as np
import pytest

from tessphot.catalog import CatalogDB, CatalogError, make_catalogs
from tessphot.catalog.sources.file import FileSource, read_tic_file

MAS = 1.0 / 3.6e6  # [deg]


def _stars(path):
    with CatalogDB(path) as db:
        return db.stars()


def test_simulated_catalog_reproduces_the_truth(small_simulation, tmp_path):
    csv = next((small_simulation / "truth").glob("tic_*.csv"))
    paths = make_catalogs(1, tmp_path, FileSource([csv]), [1], [4])
    stars = _stars(paths[0])
    truth_file = next((small_simulation / "truth").glob("truth_*.hdf5"))
    with h5py.File(truth_file, "r") as h5:
        truth = h5["stars"][:]
    # Every simulated star lies on (or just off) the 64x64 region: all are on the CCD.
    assert sorted(stars["starid"].tolist()) == sorted(truth["starid"].tolist())
    t = truth[np.argsort(truth["starid"])]
    # Positions at the sector epoch agree with the simulator's to far below a pixel.
    cos_dec = np.cos(np.radians(t["dec"]))
    assert np.all(np.abs(stars["ra"] - t["ra"]) * cos_dec < 0.1 * MAS)
    assert np.all(np.abs(stars["decl"] - t["dec"]) < 0.1 * MAS)
    assert np.allclose(stars["ra_J2000"], t["ra_j2000"], atol=1e-8)
    assert np.allclose(stars["tmag"], t["tmag"], atol=1e-4)
    assert np.allclose(stars["pm_ra"], t["pmra"], atol=1e-4)


@pytest.mark.parametrize("suffix", [".fits", ".parquet", ".ecsv", ".csv.gz"])
def test_formats_give_the_same_catalog(tmp_path, ccd_rows, write_table, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    rows = ccd_rows(np.random.default_rng(21), 300)
    write_table(tmp_path / "tic.csv", rows)
    other = tmp_path / f"tic{suffix}"
    if suffix == ".csv.gz":
        import gzip

        other.write_bytes(gzip.compress((tmp_path / "tic.csv").read_bytes()))
    else:
        write_table(other, rows)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _stars(make_catalogs(1, tmp_path / "a", FileSource([tmp_path / "tic.csv"]), [1], [4])[0])
    b = _stars(make_catalogs(1, tmp_path / "b", FileSource([other]), [1], [4])[0])
    assert len(a) > 250
    for name in a.dtype.names:
        assert np.array_equal(a[name], b[name], equal_nan=name != "starid"), name


def test_tasoc_column_names_case_and_missing_values(tmp_path):
    text = (
        "STARID,RA,DECL,PM_RA,PM_DECL,TMAG,TEFF,extra\n"
        "11,315.4,-28.9,1.5,-2.0,10.0,5000,x\n"
        "12,315.41,-28.91,,,11.0,,y\n"
        "13,315.42,-28.92,0,0,,4000,z\n"  # no Tmag: skipped
    )
    (tmp_path / "mine.csv").write_text(text)
    batches = list(read_tic_file(tmp_path / "mine.csv"))
    batch = batches[0]
    assert batch.starid.tolist() == [11, 12]
    assert np.isnan(batch.pm_ra[1]) and np.isnan(batch.teff[1])


def test_dispositions_faint_limit_and_duplicates(tmp_path, ccd_rows, write_table, catalog_log):
    rows = ccd_rows(np.random.default_rng(5), 200, spread=(100.0, 1900.0))
    rows["disposition"] = np.array([""] * 200, dtype="<U10")
    rows["disposition"][:10] = "DUPLICATE"
    rows["disposition"][10:20] = "ARTIFACT"
    rows["disposition"][20:30] = "SPLIT"
    write_table(tmp_path / "tic.ecsv", rows)
    dup = {k: v[40:45].copy() for k, v in rows.items()}
    dup["Tmag"] = np.full(5, 8.0)  # same IDs, other values: the first file wins
    write_table(tmp_path / "dup.ecsv", dup)
    paths = make_catalogs(
        1,
        tmp_path,
        FileSource([tmp_path / "tic.ecsv", tmp_path / "dup.ecsv"]),
        [1],
        [4],
        faint_limit=15.0,
    )
    assert "duplicate TIC IDs" in catalog_log.text
    stars = _stars(paths[0])
    ids = set(stars["starid"].tolist())
    expect = (rows["Tmag"] <= 15.0) & ~np.isin(rows["disposition"], ["DUPLICATE", "ARTIFACT"])
    # The second file's rows count where the first file's were left out (too faint).
    assert ids == set(rows["ID"][expect].tolist()) | set(dup["ID"].tolist())
    assert stars["tmag"].max() <= 15.0
    first = dict(zip(rows["ID"][expect].tolist(), rows["Tmag"][expect].tolist(), strict=True))
    assert all(first.get(s["starid"], 8.0) == s["tmag"] for s in stars)


def test_no_faint_limit_keeps_faint_stars(tmp_path, ccd_rows, write_table):
    rows = ccd_rows(np.random.default_rng(7), 100, spread=(100.0, 1900.0))
    rows["Tmag"][:10] = 21.5
    write_table(tmp_path / "tic.csv", rows)
    path = make_catalogs(
        1, tmp_path, FileSource([tmp_path / "tic.csv"]), [1], [4], faint_limit=None
    )
    assert _stars(path[0])["tmag"].max() == 21.5
    con = sqlite3.connect(path[0])
    meta = dict(con.execute("SELECT key, value FROM tessphot_metadata"))
    con.close()
    assert meta["faint_limit"] == "none"


def test_one_file_serves_all_ccds_it_touches(tmp_path, ccd_rows, write_table):
    """Stars of a file that covers two CCDs go to each CCD whose footprint they are on."""
    rng = np.random.default_rng(9)
    a = ccd_rows(rng, 150, camera=1, ccd=4, spread=(0.0, 2047.0))
    b = ccd_rows(rng, 150, camera=1, ccd=3, spread=(0.0, 2047.0))
    rows = {k: np.concatenate([a[k], b[k]]) for k in a}
    rows["ID"] = np.arange(1, 301)
    write_table(tmp_path / "tic.fits", rows)
    source = FileSource([tmp_path / "tic.fits"])
    paths = make_catalogs(1, tmp_path, source, [1], [3, 4], faint_limit=None)
    on3 = set(_stars(paths[0])["starid"].tolist())
    on4 = set(_stars(paths[1])["starid"].tolist())
    assert set(range(151, 301)) <= on3 and set(range(1, 151)) <= on4
    assert paths[0].name.endswith("camera1_ccd3.sqlite")


def test_bad_files(tmp_path):
    (tmp_path / "ragged.csv").write_text("ID,ra,dec,Tmag\n1,10,20,5\n2,11,3,4,5,6\n")
    (tmp_path / "words.csv").write_text("ID,ra,dec,Tmag\n1,ten,20,5\n")
    (tmp_path / "nocols.csv").write_text("ID,ra,Tmag\n1,10,5\n")
    (tmp_path / "badid.csv").write_text("ID,ra,dec,Tmag\nTIC1,10,20,5\n")
    (tmp_path / "baddec.csv").write_text("ID,ra,dec,Tmag\n1,10,95,5\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "junk.fits").write_bytes(b"SIMPLE = nonsense" * 200)
    (tmp_path / "tic.txt").write_text("x")
    cases = {
        "ragged.csv": "cannot read as CSV",
        "words.csv": "ra",
        "nocols.csv": "missing TIC column",
        "badid.csv": "TIC IDs must be integers",
        "baddec.csv": "declinations outside",
        "empty.csv": "empty file",
        "junk.fits": "cannot read as FITS",
        "tic.txt": "unknown catalog file type",
        "missing.csv": "not found",
    }
    for name, message in cases.items():
        with pytest.raises(CatalogError, match=message) as err:
            list(read_tic_file(tmp_path / name))
        assert name in str(err.value)
