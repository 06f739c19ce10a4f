"""Catalogs for just the data at hand: the footprints of TPFs and cutouts instead of whole CCDs.

The MAST answers are replayed offline from real TIC rows (``reference/tic.json``, as in
test_mast.py); the TPF and cutouts are the real ones in the test data.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from astropy.io import fits

from tessphot.catalog import CatalogDB, CatalogError, sphere
from tessphot.catalog.data import TPF, DataFile, header_stars, read_data_file, read_data_files
from tessphot.catalog.footprint import pixels_footprint
from tessphot.catalog.make import QUERY_SLACK_DEG, make_data_catalogs
from tessphot.catalog.motion import julian_epoch, max_motion_deg
from tessphot.catalog.sources.file import FileSource
from tessphot.catalog.sources.header import HeaderSource
from tessphot.catalog.sources.mast import DEFAULT_TILE_RADIUS, MastSource
from tessphot.cli import EXIT_ERROR, EXIT_OK, main
from tessphot.constants import PIXEL_SCALE_ARCSEC
from tessphot.geometry import angular_distance_deg, sector_geometry, shift_wcs
from tessphot.sectors import sector_info

#: The seven real TIC rows lie on sector 117, camera 1, CCD 1.
SECTOR, CAMERA, CCD = 117, 1, 1
#: The star the 5x5 cutout is centred on (TIC 10000869228).
CENTRE_TIC = 10000869228
#: Size of the cutout [px] and the catalog buffer [deg].
SIZE, BUFFER = 5, 0.2
TPF_FILE = "tpf/tess25155310-s01-first-cadences.fits.gz"


@pytest.fixture(scope="module")
def tic_rows(test_data):
    return json.loads((test_data / "reference" / "tic.json").read_text())


def _cutout(tic_rows, tmp_path) -> DataFile:
    """A 5x5 block of sector 117 camera 1 CCD 1 centred on TIC 10000869228."""
    star = next(r for r in tic_rows["data"] if r["ID"] == CENTRE_TIC)
    wcs = sector_geometry(SECTOR, CAMERA, CCD).science_wcs
    col, row = wcs.all_world2pix([[star["ra"], star["dec"]]], 0)[0]
    r0, c0 = round(float(row)) - SIZE // 2, round(float(col)) - SIZE // 2
    return DataFile(
        tmp_path / "cutout.fits",
        "tesscut",
        SECTOR,
        CAMERA,
        CCD,
        shift_wcs(wcs, -r0, -c0),
        (SIZE, SIZE),
        fits.Header(),
    )


def _expected(tic_rows, data: DataFile) -> tuple[set[int], set[int]]:
    """TIC IDs surely inside (distance from the centre + the half-diagonal < buffer) and surely
    outside (distance - half-diagonal > buffer) the buffered cutout; no proper motions."""
    ra0, dec0 = data.wcs.all_pix2world([[(SIZE - 1) / 2, (SIZE - 1) / 2]], 0)[0]
    half_diagonal = SIZE / 2 * math.sqrt(2) * PIXEL_SCALE_ARCSEC / 3600
    inside, outside = set(), set()
    for r in tic_rows["data"]:
        d = float(angular_distance_deg(r["ra"], r["dec"], ra0, dec0))
        if d + half_diagonal < BUFFER:
            inside.add(r["ID"])
        elif d - half_diagonal > BUFFER:
            outside.add(r["ID"])
    return inside, outside


def test_one_mast_cone_of_the_right_radius_for_a_small_cutout(monkeypatch, tic_rows, tmp_path):
    from astroquery.mast import Catalogs
    from astroquery.mast.discovery_portal import _json_to_table

    calls = []

    def query_region(coordinates, *, radius, catalog, **kwargs):
        calls.append((coordinates.ra.deg, coordinates.dec.deg, radius.to_value("deg")))
        centre = sphere.radec_to_xyz(coordinates.ra.deg, coordinates.dec.deg)
        cos = math.cos(math.radians(radius.to_value("deg")))
        rows = [
            r for r in tic_rows["data"] if sphere.radec_to_xyz(r["ra"], r["dec"]) @ centre >= cos
        ]
        return _json_to_table({**tic_rows, "data": rows})

    monkeypatch.setattr(Catalogs, "query_region", query_region)
    data = _cutout(tic_rows, tmp_path)
    source = MastSource(cache_dir=tmp_path / "cache")
    (path,) = make_data_catalogs([data], tmp_path, source, buffer_deg=BUFFER, faint_limit=None)
    # One cone around the cutout, not the ~400 tiles of the whole CCD.
    assert len(calls) == 1 and source.n_queries == 1
    ra, dec, radius = calls[0]
    ra0, dec0 = data.wcs.all_pix2world([[(SIZE - 1) / 2, (SIZE - 1) / 2]], 0)[0]
    assert float(angular_distance_deg(ra, dec, ra0, dec0)) * 3600 < 0.1
    # Radius: the cutout's half-diagonal (SIP-distorted pixels, 21 +- 0.5 arcsec) plus the
    # buffer and the largest proper motion since J2000 (plus the query slack).
    years = julian_epoch(sector_info(SECTOR).reference_time) - 2000.0
    half_diagonal = SIZE / 2 * math.sqrt(2) * PIXEL_SCALE_ARCSEC / 3600
    expected = half_diagonal + BUFFER + max_motion_deg(years) + QUERY_SLACK_DEG
    assert radius == pytest.approx(expected, abs=0.03 * half_diagonal)
    assert radius < DEFAULT_TILE_RADIUS
    inside, outside = _expected(tic_rows, data)
    assert inside and outside  # the test data has both
    with CatalogDB(path) as db:
        stars = set(db.stars()["starid"].tolist())
        assert db.settings.footprint.count("((") == 1
    assert inside <= stars and not outside & stars
    # A second cutout on the same CCD shares its catalog file (written once per CCD).
    assert path.name == f"catalog_sector{SECTOR:03d}_camera{CAMERA}_ccd{CCD}.sqlite"


def test_file_source_restricted_to_the_footprint(tic_rows, tmp_path, write_table):
    columns = {k: [r[k] for r in tic_rows["data"]] for k in ("ID", "ra", "dec", "Tmag")}
    tic = write_table(tmp_path / "tic.csv", columns)
    data = _cutout(tic_rows, tmp_path)
    # Two overlapping copies of the cutout: each star written once, both polygons recorded.
    (path,) = make_data_catalogs(
        [data, data], tmp_path, FileSource([tic]), buffer_deg=BUFFER, faint_limit=None
    )
    inside, outside = _expected(tic_rows, data)
    with CatalogDB(path) as db:
        stars = db.stars()["starid"].tolist()
        assert db.settings.footprint.count("((") == 2
    assert len(stars) == len(set(stars))
    assert inside <= set(stars) and not outside & set(stars)


def test_footprint_of_a_tall_tpf_covers_every_row():
    """A bleed-column TPF of 1200 x 11 px: both ends are in its footprint, not beyond."""
    wcs = shift_wcs(sector_geometry(1, 4, 1).science_wcs, -400, -900)
    fp = pixels_footprint(1, 4, 1, wcs, (1200, 11), 0.0)
    ends = wcs.all_pix2world([[5, 0], [5, 1199], [5, -3], [5, 1203]], 0)
    assert fp.contains(ends[:, 0], ends[:, 1]).tolist() == [True, True, False, False]


def test_header_catalog_of_a_real_tpf(test_data, tmp_path, tessphot_log):
    data = read_data_file(test_data / TPF_FILE)
    assert data.kind == TPF and data.ccd_key == (1, 4, 1) and data.shape == (11, 11)
    stars = header_stars([data, data])
    assert len(stars) == 1 and stars.starid[0] == 25155310
    source = HeaderSource(stars, [data.path.name])
    assert "neighbours are unknown" in tessphot_log.text
    (path,) = make_data_catalogs([data], tmp_path, source)
    with CatalogDB(path) as db:
        (star,) = db.stars()
        assert db.metadata["source"] == "header"
    # The header's J2000 position and proper motion, moved to the sector's epoch.
    assert (star["ra_J2000"], star["decl_J2000"]) == (63.37389, -69.226789)
    assert (star["pm_ra"], star["pm_decl"], star["tmag"]) == (63.0735, 53.6783, 10.55500031)
    years = julian_epoch(sector_info(1).reference_time) - 2000.0
    moved = float(angular_distance_deg(star["ra"], star["decl"], 63.37389, -69.226789)) * 3.6e6
    assert moved == pytest.approx(years * math.hypot(63.0735, 53.6783), rel=1e-3)


def test_no_header_target_is_one_clear_error():
    with pytest.raises(CatalogError, match="no target in the headers"):
        HeaderSource(header_stars([]), [])


def test_cli_for_files_offline(test_data, tmp_path, capsys, tessphot_log):
    folder = tmp_path / "input"
    folder.mkdir()
    shutil.copy(test_data / TPF_FILE, folder / "my_download.fits.gz")
    cutout = "tess-s0001-4-3_107.27_-70.0_5x5_astrocut.fits"
    shutil.copy(test_data / "tesscut" / cutout, folder / cutout)
    (folder / "broken.fits").write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    args = ["catalog", str(folder), "--for", str(folder / "my_download.fits.gz")]
    args += ["--for", str(folder / cutout), "--for", str(folder / "broken.fits")]
    assert main(args) == EXIT_OK
    assert "1 catalog(s) written" in capsys.readouterr().out
    assert "broken.fits" in tessphot_log.text and "neighbours are unknown" in tessphot_log.text
    # The TPF's CCD has its target; the cutout's CCD gets no empty catalog from headers.
    assert sorted(p.name for p in folder.glob("catalog_*")) == [
        "catalog_sector001_camera4_ccd1.sqlite"
    ]
    assert main(["catalog", str(folder)]) == EXIT_ERROR
    assert "sector must be a number" in capsys.readouterr().err
    assert main(["catalog", "--source", "header", "1", str(folder)]) == EXIT_ERROR
    assert "--source header needs --for" in capsys.readouterr().err


def test_unreadable_files_are_left_out(test_data, tmp_path, tessphot_log):
    bad = tmp_path / "truncated.fits.gz"
    bad.write_bytes((test_data / TPF_FILE).read_bytes()[:5000])
    files = read_data_files([bad, test_data / TPF_FILE], sector=1)
    assert [f.path.name for f in files] == [TPF_FILE.split("/")[1]]
    assert "truncated.fits.gz" in tessphot_log.text
    assert read_data_files([test_data / TPF_FILE], sector=2) == []
    assert np.isfinite(files[0].shape).all()


def test_renamed_files_read_as_what_their_headers_say(test_data, tmp_path):
    cutout = tmp_path / "download.fits"
    tpf = tmp_path / "tpf(1).fits.gz"
    shutil.copy(test_data / "tesscut" / "tess-s0001-4-3_107.27_-70.0_5x5_astrocut.fits", cutout)
    shutil.copy(test_data / "tpf" / "tess25155310-s01-first-cadences.fits.gz", tpf)
    as_cutout, as_tpf = read_data_file(cutout), read_data_file(tpf)
    assert (as_cutout.kind, as_cutout.sector, as_cutout.camera, as_cutout.ccd) == (
        "tesscut",
        1,
        4,
        3,
    )
    assert as_cutout.shape == (5, 5)
    assert (as_tpf.kind, as_tpf.sector, as_tpf.camera, as_tpf.ccd) == (TPF, 1, 4, 1)


def test_cli_for_one_folder_writes_beside_it(test_data, tmp_path, capsys, monkeypatch):
    """'tessphot catalog --for mydata' with no input folder: the catalogs go into mydata."""
    monkeypatch.delenv("TESSPHOT_INPUT", raising=False)
    folder = tmp_path / "mydata"
    folder.mkdir()
    shutil.copy(test_data / TPF_FILE, folder / "download.fits.gz")
    monkeypatch.chdir(tmp_path)
    assert main(["catalog", "--for", "mydata", "-q"]) == EXIT_OK
    assert [p.name for p in folder.glob("catalog_*")] == ["catalog_sector001_camera4_ccd1.sqlite"]
    assert not list(tmp_path.glob("catalog_*"))
    # Two --for paths and no input folder: which folder is meant is not guessed.
    assert main(["catalog", "--for", "mydata", "--for", "mydata/download.fits.gz"]) == EXIT_ERROR
    assert "no input folder" in capsys.readouterr().err
