"""Building catalogs: overwrite, atomic output on errors, and the command line."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tessphot.catalog import CatalogDB, CatalogError, catalog_path, make_catalogs
from tessphot.catalog.sources.base import CatalogSource, StarBatch
from tessphot.catalog.sources.file import FileSource, read_tic_file
from tessphot.cli import EXIT_ERROR, EXIT_OK, main


class FailingSource(CatalogSource):
    """Yields some stars for every footprint, then fails."""

    name = "failing"
    scan = True

    def __init__(self, batch: StarBatch) -> None:
        self.batch = batch

    def describe(self) -> str:
        return "a source that breaks"

    def stream(self, footprints, margin_deg, faint_limit):
        for index in range(len(footprints)):
            yield index, self.batch
        raise CatalogError("connection lost half-way")


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith((".catalog", "catalog")))


@pytest.fixture
def tic_csv(tmp_path, ccd_rows, write_table):
    rows = ccd_rows(np.random.default_rng(12), 200, spread=(50.0, 2000.0))
    return write_table(tmp_path / "tic.csv", rows)


def test_existing_catalogs_are_skipped_unless_overwrite(tmp_path, tic_csv, catalog_log):
    out = tmp_path / "out"
    out.mkdir()
    first = make_catalogs(1, out, FileSource([tic_csv]), [1], [4])
    path = first[0]
    os.utime(path, (1_000_000, 1_000_000))
    assert make_catalogs(1, out, FileSource([tic_csv]), [1], [4]) == []
    assert path.stat().st_mtime == 1_000_000 and "Already done" in catalog_log.text
    again = make_catalogs(1, out, FileSource([tic_csv]), [1], [4], overwrite=True, buffer_deg=0.5)
    assert again == [path] and path.stat().st_mtime > 1_000_000
    with CatalogDB(path) as db:
        assert db.settings.coord_buffer == 0.5
    assert _leftovers(out) == [path.name]


def test_a_failing_source_leaves_no_file_and_keeps_the_old_one(tmp_path, tic_csv):
    out = tmp_path / "out"
    out.mkdir()
    stars = StarBatch.concatenate(read_tic_file(tic_csv))
    with pytest.raises(CatalogError, match="half-way"):
        make_catalogs(1, out, FailingSource(stars), [1], [3, 4])
    assert _leftovers(out) == []
    # With an existing catalog, a failed overwrite leaves it as it was.
    make_catalogs(1, out, FileSource([tic_csv]), [1], [4])
    before = catalog_path(out, 1, 1, 4).read_bytes()
    with pytest.raises(CatalogError):
        make_catalogs(1, out, FailingSource(stars), [1], [4], overwrite=True)
    assert catalog_path(out, 1, 1, 4).read_bytes() == before
    assert _leftovers(out) == ["catalog_sector001_camera1_ccd4.sqlite"]


def test_bad_arguments(tmp_path, tic_csv):
    source = FileSource([tic_csv])
    for kwargs, message in (
        ({"sector": 9999}, "unknown sector 9999"),
        ({"input_folder": tmp_path / "nope"}, "does not exist"),
        ({"buffer_deg": -1.0}, "buffer"),
        ({"cameras": [5]}, "camera must be 1-4"),
        ({"faint_limit": float("nan")}, "faint limit"),
    ):
        args = {"sector": 1, "input_folder": tmp_path, "cameras": [1], "ccds": [4], **kwargs}
        with pytest.raises(CatalogError, match=message):
            make_catalogs(source=source, **args)
        assert _leftovers(tmp_path) == []
    with pytest.raises(CatalogError, match="not found"):
        FileSource([tmp_path / "missing.csv"])


def test_cli_builds_the_simulated_catalog(small_simulation, tmp_path, capsys):
    folder = tmp_path / "sim"
    folder.mkdir()
    (folder / "truth").symlink_to(small_simulation / "truth")
    assert main(["-q", "catalog", "1", str(folder)]) == EXIT_OK
    assert "1 catalog(s) written" in capsys.readouterr().out
    path = catalog_path(folder, 1, 1, 4)
    with CatalogDB(path) as db:
        assert len(db) > 50 and db.metadata["source"] == "file"
    # Again: already done; with -o and another faint limit: rebuilt.
    assert main(["-q", "catalog", "1", str(folder)]) == EXIT_OK
    assert "0 catalog(s)" in capsys.readouterr().out
    assert main(["-q", "catalog", "1", str(folder), "-o", "--faint-limit", "12"]) == EXIT_OK
    with CatalogDB(path) as db:
        assert db.stars()["tmag"].max() <= 12.0 and db.metadata["faint_limit"] == "12.0"
    assert main(["-q", "catalog", "1", str(folder), "-o", "--faint-limit", "none"]) == EXIT_OK
    with CatalogDB(path) as db:
        assert db.metadata["faint_limit"] == "none"


def test_cli_with_a_file_and_a_settings_file(tmp_path, tic_csv, capsys):
    settings = tmp_path / "s.toml"
    settings.write_text('[catalog]\nbuffer = 0.1\nticver = "8.2-test"\n')
    code = main(
        [
            "-q",
            "catalog",
            "1",
            str(tmp_path),
            "--camera",
            "1",
            "--ccd",
            "4",
            "--catalog-file",
            str(tic_csv),
            "--settings",
            str(settings),
        ]
    )
    assert code == EXIT_OK
    with CatalogDB(catalog_path(tmp_path, 1, 1, 4)) as db:
        assert db.settings.coord_buffer == 0.1 and db.settings.ticver == "8.2-test"
    # Without --camera/--ccd all 16 CCDs are searched, and only those with stars written.
    out = tmp_path / "all"
    out.mkdir()
    assert main(["-q", "catalog", "1", str(out), "--catalog-file", str(tic_csv)]) == EXIT_OK
    assert _leftovers(out) == ["catalog_sector001_camera1_ccd4.sqlite"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["999"], "unknown sector 999"),
        (["1", "--catalog-file", "/no/such/tic.csv"], "not found"),
        (["1"], "no catalog file"),
        (
            ["1", "--source", "postgres", "--db", "host=127.0.0.1 port=9 dbname=x user=y"],
            "cannot connect",
        ),
    ],
)
def test_cli_errors_are_one_clear_line(tmp_path, capsys, args, message):
    code = main(["-q", "catalog", args[0], str(tmp_path), *args[1:]])
    assert code == EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("tessphot catalog: error:")
    assert _leftovers(tmp_path) == []


def test_defaults_agree_with_settings():
    from tessphot.catalog.make import DEFAULT_BUFFER, DEFAULT_FAINT_LIMIT
    from tessphot.catalog.schema import DEFAULT_TICVER
    from tessphot.catalog.sources.base import DEFAULT_KEEP_DISPOSITIONS
    from tessphot.catalog.sources.mast import DEFAULT_BACKOFF, DEFAULT_RETRIES, DEFAULT_TILE_RADIUS
    from tessphot.catalog.sources.postgres import DEFAULT_CONNECT_TIMEOUT, DEFAULT_TABLE
    from tessphot.config import DEFAULTS

    s = DEFAULTS["catalog"]
    assert (s["buffer"], s["faint_limit"], s["ticver"]) == (
        DEFAULT_BUFFER,
        DEFAULT_FAINT_LIMIT,
        DEFAULT_TICVER,
    )
    assert tuple(s["keep_dispositions"]) == DEFAULT_KEEP_DISPOSITIONS
    assert (s["db_table"], s["db_connect_timeout"]) == (DEFAULT_TABLE, DEFAULT_CONNECT_TIMEOUT)
    assert (s["mast_tile_radius"], s["mast_retries"], s["mast_backoff"]) == (
        DEFAULT_TILE_RADIUS,
        DEFAULT_RETRIES,
        DEFAULT_BACKOFF,
    )
