"""The MAST source, offline: astroquery's ``Catalogs.query_region`` replays answers built from
real TIC rows (``reference/tic.json``), parsed by astroquery's own MAST JSON reader, so the
cleaning (string IDs, masked values, dispositions), tiling, caching and retries all run."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from tessphot.catalog import CatalogDB, CatalogError, catalog_path, make_catalogs, sphere
from tessphot.catalog.footprint import ccd_footprint
from tessphot.catalog.sources.file import FileSource
from tessphot.catalog.sources.mast import MastSource, tile_centres

pytest.importorskip("astroquery")

#: The seven real TIC rows lie on sector 117, camera 1, CCD 1.
SECTOR, CAMERA, CCD = 117, 1, 1


@pytest.fixture(scope="module")
def tic_json(test_data):
    return json.loads((test_data / "reference" / "tic.json").read_text())


class Replay:
    """Stands in for ``Catalogs.query_region``: the rows of a recorded answer in the cone."""

    def __init__(self, answer: dict, failures: int = 0):
        self.answer = answer
        self.failures = failures
        self.calls = 0

    def __call__(self, coordinates, *, radius, catalog, **kwargs):
        from astroquery.mast.discovery_portal import _json_to_table

        assert catalog == "TIC"
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise ConnectionError("MAST is having a bad day")
        centre = sphere.radec_to_xyz(coordinates.ra.deg, coordinates.dec.deg)
        rows = [
            row
            for row in self.answer["data"]
            if sphere.radec_to_xyz(row["ra"], row["dec"]) @ centre
            >= np.cos(np.radians(radius.to_value("deg")))
        ]
        return _json_to_table({**self.answer, "data": rows})


@pytest.fixture
def replay(monkeypatch, tic_json):
    from astroquery.mast import Catalogs

    fake = Replay(tic_json)
    monkeypatch.setattr(Catalogs, "query_region", fake)
    return fake


def test_replayed_mast_answers_build_the_catalog(replay, tic_json, tmp_path, write_table):
    cache = tmp_path / "cache"
    source = MastSource(cache_dir=cache, tile_radius_deg=2.0)
    paths = make_catalogs(SECTOR, tmp_path, source, [CAMERA], [CCD])
    n_tiles = len(tile_centres(ccd_footprint(SECTOR, CAMERA, CCD, 0.2), 2.0, 0.1))
    assert replay.calls == source.n_queries >= n_tiles - 2 and source.n_cached == 0
    with CatalogDB(paths[0]) as db:
        stars = db.stars()
        assert db.metadata["source"] == "mast"
    rows = {r["ID"]: r for r in tic_json["data"]}
    assert sorted(stars["starid"].tolist()) == sorted(rows)
    for star in stars:
        row = rows[star["starid"]]
        assert (star["ra_J2000"], star["decl_J2000"], star["tmag"]) == (
            row["ra"],
            row["dec"],
            row["Tmag"],
        )
        # No proper motion in the TIC: the position stays; unknown values are NULL.
        assert (star["ra"], star["decl"]) == (row["ra"], row["dec"])
        assert np.isnan(star["pm_ra"]) and np.isnan(star["teff"])
    # The same rows from a file give the same catalog.
    columns = {k: [r[k] for r in tic_json["data"]] for k in ("ID", "ra", "dec", "Tmag")}
    write_table(tmp_path / "tic.csv", columns)
    (tmp_path / "file").mkdir()
    other = make_catalogs(SECTOR, tmp_path / "file", FileSource([tmp_path / "tic.csv"]), [1], [1])
    with CatalogDB(other[0]) as db:
        from_file = db.stars()
    for name in stars.dtype.names:
        assert np.array_equal(stars[name], from_file[name], equal_nan=name != "starid")
    # A second run (another faint limit) is served from the cache: no network at all.
    calls = replay.calls
    again = MastSource(cache_dir=cache, tile_radius_deg=2.0)
    make_catalogs(SECTOR, tmp_path, again, [1], [1], overwrite=True, faint_limit=16.0)
    assert replay.calls == calls and again.n_queries == 0 and again.n_cached > 0
    with CatalogDB(paths[0]) as db:
        assert set(db.stars()["starid"].tolist()) == {10000732586, 10000732587, 10000869228}


def test_each_star_once_although_tiles_overlap(replay, tmp_path):
    source = MastSource(cache_dir=tmp_path, tile_radius_deg=1.0)
    footprint = ccd_footprint(SECTOR, CAMERA, CCD, 0.2)
    centres = tile_centres(footprint, 1.0, 0.1)
    hits = sum(len(source.tile(ra, dec)) > 0 for ra, dec in centres)
    assert hits >= 2  # the stars are in more than one tile...
    batches = [b for _, b in source.stream([footprint], 0.1, None)]
    ids = np.concatenate([b.starid for b in batches])
    assert len(ids) == len(set(ids.tolist())) == 7  # ...but come out once


def test_dispositions_and_motions_from_mast(monkeypatch, tic_json, tmp_path):
    from astroquery.mast import Catalogs

    answer = copy.deepcopy(tic_json)
    data = answer["data"]
    data[0]["disposition"] = "DUPLICATE"
    data[1]["disposition"] = "ARTIFACT"
    data[2]["disposition"] = "SPLIT"
    data[3]["pmRA"], data[3]["pmDEC"], data[3]["Teff"] = 250.0, -120.0, 5100.0
    monkeypatch.setattr(Catalogs, "query_region", Replay(answer))
    source = MastSource(cache_dir=tmp_path / "cache", tile_radius_deg=2.0)
    paths = make_catalogs(SECTOR, tmp_path, source, [CAMERA], [CCD])
    with CatalogDB(paths[0]) as db:
        stars = {s["starid"]: s for s in db.stars()}
    assert set(stars) == {r["ID"] for r in data[2:]}
    moving = stars[data[3]["ID"]]
    assert moving["pm_ra"] == 250.0 and moving["teff"] == 5100.0
    years = db.settings.epoch - 2000.0
    shift = (moving["decl"] - moving["decl_J2000"]) * 3.6e6
    assert shift == pytest.approx(-120.0 * years, abs=0.05)  # [mas]; not linear exactly


def test_retries_with_backoff_then_a_clear_error(monkeypatch, tic_json, tmp_path):
    from astroquery.mast import Catalogs

    waits = []
    flaky = Replay(tic_json, failures=2)
    monkeypatch.setattr(Catalogs, "query_region", flaky)
    source = MastSource(cache_dir=tmp_path, tile_radius_deg=2.0, sleep=waits.append)
    ra, dec = tile_centres(ccd_footprint(SECTOR, CAMERA, CCD, 0.2), 2.0)[0]
    source.tile(ra, dec)
    assert waits == [5.0, 10.0] and flaky.calls == 3
    broken = Replay(tic_json, failures=10**6)
    monkeypatch.setattr(Catalogs, "query_region", broken)
    source = MastSource(cache_dir=tmp_path / "other", tile_radius_deg=2.0, sleep=waits.append)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(CatalogError, match="failed after 4 attempts: MAST is having a bad day"):
        make_catalogs(SECTOR, out, source, [CAMERA], [CCD])
    assert broken.calls == 4
    assert list(out.iterdir()) == [] and not catalog_path(out, SECTOR, CAMERA, CCD).exists()
    assert not list((tmp_path / "other").rglob("*.npz"))


def test_tiles_cover_the_footprint():
    rng = np.random.default_rng(3)
    footprint = ccd_footprint(1, 4, 2, 0.2)
    radius = 0.5
    centres = tile_centres(footprint, radius, 0.05)
    tiles = sphere.radec_to_xyz(*np.array(centres).T)
    centre, cap = footprint.bounding_cap(0.05)
    pts = sphere.normalise(centre + rng.normal(0, cap, (40000, 3)))
    pts = pts[sphere.polygon_contains(pts, footprint.query_polygon(0.05))]
    nearest = np.arccos(np.clip(pts @ tiles.T, -1, 1)).min(axis=1)
    assert len(pts) > 10000 and np.degrees(nearest.max()) <= radius


def test_bad_mast_settings():
    with pytest.raises(CatalogError, match="tile radius"):
        MastSource(tile_radius_deg=0.0)
    with pytest.raises(CatalogError, match="retries"):
        MastSource(retries=0)
