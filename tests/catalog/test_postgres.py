"""The PostgreSQL/q3c source against a real throw-away server (see conftest.py).

Skipped without the server binaries or psycopg, except on CI, where the fixture fails.
"""

from __future__ import annotations

import numpy as np
import pytest

from tessphot.catalog import CatalogDB, CatalogError, catalog_path, make_catalogs
from tessphot.catalog.sources.file import FileSource
from tessphot.catalog.sources.postgres import PostgresSource
from tessphot.catalog.sources.postgres_load import load_db
from tessphot.cli import EXIT_ERROR, EXIT_OK, main


def _stars(path):
    with CatalogDB(path) as db:
        return db.stars()


def _assert_same(a, b):
    assert len(a) == len(b)
    for name in a.dtype.names:
        assert np.array_equal(a[name], b[name], equal_nan=name != "starid"), name


def _count(dsn, password, table):
    import psycopg

    with psycopg.connect(dsn, password=password) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_simulated_catalog_same_from_file_and_database(pg_env, pg_dsn, small_simulation, tmp_path):
    csv = next((small_simulation / "truth").glob("tic_*.csv"))
    n = load_db([csv], pg_dsn, "tic_sim")
    assert n == _count(pg_dsn, pg_env["password"], "tic_sim") > 50
    (tmp_path / "db").mkdir()
    (tmp_path / "file").mkdir()
    with PostgresSource(pg_dsn, table="tic_sim") as source:
        from_db = make_catalogs(1, tmp_path / "db", source, [1], [4])
    from_file = make_catalogs(1, tmp_path / "file", FileSource([csv]), [1], [4])
    _assert_same(_stars(from_db[0]), _stars(from_file[0]))
    with CatalogDB(from_db[0]) as db:
        assert db.metadata["source"] == "postgres" and "tic_sim" in db.metadata["source_detail"]


def test_many_stars_same_from_file_and_database(pg_env, pg_dsn, tmp_path, ccd_rows, write_table):
    """20 000 stars over two CCDs and around them, with dispositions, unknown motions and
    temperatures: the database gives exactly what the file gives, for every CCD."""
    rng = np.random.default_rng(31)
    a = ccd_rows(rng, 10_000, camera=1, ccd=4, spread=(-400.0, 2450.0))
    b = ccd_rows(rng, 10_000, camera=1, ccd=3, spread=(-400.0, 2450.0))
    rows = {k: np.concatenate([a[k], b[k]]) for k in a}
    rows["ID"] = rng.choice(10**9, 20_000, replace=False) + 1
    disposition = np.array([""] * 20_000, dtype="<U9")
    disposition[rng.uniform(size=20_000) < 0.05] = "DUPLICATE"
    disposition[rng.uniform(size=20_000) < 0.03] = "SPLIT"
    disposition[rng.uniform(size=20_000) < 0.02] = "ARTIFACT"
    rows["disposition"] = disposition
    data = write_table(tmp_path / "tic.fits", rows)
    load_db([data], pg_dsn, "tic_many", cluster=False)
    out_db, out_file = tmp_path / "db", tmp_path / "file"
    out_db.mkdir()
    out_file.mkdir()
    with PostgresSource(pg_dsn, table="tic_many") as source:
        make_catalogs(1, out_db, source, [1], [3, 4], faint_limit=17.0)
    make_catalogs(1, out_file, FileSource([data]), [1], [3, 4], faint_limit=17.0)
    for ccd in (3, 4):
        from_db = _stars(catalog_path(out_db, 1, 1, ccd))
        from_file = _stars(catalog_path(out_file, 1, 1, ccd))
        _assert_same(from_db, from_file)
        assert len(from_db) > 3000 and from_db["tmag"].max() <= 17.0
        dropped = set(rows["ID"][np.isin(disposition, ["DUPLICATE", "ARTIFACT"])].tolist())
        assert not dropped & set(from_db["starid"].tolist())
        split = set(rows["ID"][disposition == "SPLIT"].tolist())
        assert split & set(from_db["starid"].tolist())


def test_cli_load_and_query(pg_env, pg_dsn, small_simulation, tmp_path, capsys):
    csv = next((small_simulation / "truth").glob("tic_*.csv"))
    table = "cli.tic"
    import psycopg

    with psycopg.connect(pg_dsn, password=pg_env["password"], autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS cli")
    assert main(["-q", "catalog-load-db", str(csv), "--db", pg_dsn, "--db-table", table]) == 0
    assert "Loaded" in capsys.readouterr().out
    # Loading again into an existing table needs --append or --overwrite.
    assert main(["-q", "catalog-load-db", str(csv), "--db", pg_dsn, "--db-table", table]) == 1
    assert "exists" in capsys.readouterr().err
    args = ["-q", "catalog", "1", str(tmp_path), "--source", "postgres", "--db", pg_dsn]
    assert main([*args, "--db-table", table, "--camera", "1", "--ccd", "4"]) == EXIT_OK
    with CatalogDB(catalog_path(tmp_path, 1, 1, 4)) as db:
        assert len(db) == _count(pg_dsn, pg_env["password"], table)
    # Missing table: one clear error.
    code = main([*args, "--db-table", "nope", "--camera", "1", "--ccd", "3", "-o"])
    assert code == EXIT_ERROR and "no table nope" in capsys.readouterr().err


def test_load_modes_and_duplicates(pg_env, pg_dsn, tmp_path, write_table, cap_rows):
    rng = np.random.default_rng(4)
    rows = cap_rows(rng, 500, (30.0, -40.0), 1.0)
    first = write_table(tmp_path / "a.csv", {k: v[:300] for k, v in rows.items()})
    second = write_table(tmp_path / "b.parquet", {k: v[300:] for k, v in rows.items()})
    assert load_db([first], pg_dsn, "tic_modes") == 300
    with pytest.raises(CatalogError, match="exists"):
        load_db([second], pg_dsn, "tic_modes")
    assert load_db([second], pg_dsn, "tic_modes", append=True) == 200
    assert _count(pg_dsn, pg_env["password"], "tic_modes") == 500
    # A file repeating IDs: nothing of it is loaded.
    with pytest.raises(CatalogError, match="duplicate TIC IDs"):
        load_db([first], pg_dsn, "tic_modes", append=True)
    assert _count(pg_dsn, pg_env["password"], "tic_modes") == 500
    with pytest.raises(CatalogError, match="duplicate TIC IDs"):
        load_db([first, first], pg_dsn, "tic_dups")
    assert load_db([first], pg_dsn, "tic_modes", replace=True) == 300
    assert _count(pg_dsn, pg_env["password"], "tic_modes") == 300
    with pytest.raises(CatalogError, match="not found"):
        load_db([tmp_path / "missing.csv"], pg_dsn, "tic_modes", append=True)


def test_wrong_password_and_missing_q3c(postgres_server, pg_dsn, tmp_path, monkeypatch):
    monkeypatch.setenv("TESSPHOT_DB_PASSWORD", "wrong")
    with pytest.raises(CatalogError, match="password authentication failed") as err:
        PostgresSource(pg_dsn)
    assert "wrong" not in str(err.value) and "tessphot@127.0.0.1" in str(err.value)
    assert main(["-q", "catalog", "1", str(tmp_path), "--source", "postgres", "--db", pg_dsn]) == 1
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("TESSPHOT_DB_PASSWORD", postgres_server["password"])
    # The maintenance database has no q3c, and this user may not create it.
    other = pg_dsn.replace(f"dbname={postgres_server['dbname']}", "dbname=postgres")
    with pytest.raises(CatalogError, match="lacks the q3c extension"):
        PostgresSource(other)
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("ID,ra,dec,Tmag\n1,2,3,4\n")
    with pytest.raises(CatalogError, match="lacks the q3c extension"):
        load_db([tiny], other)


def test_environment_variables_name_the_database(postgres_server, monkeypatch, tmp_path):
    s = postgres_server
    for key, value in (
        ("HOST", s["host"]),
        ("PORT", str(s["port"])),
        ("NAME", s["dbname"]),
        ("USER", s["user"]),
        ("PASSWORD", s["password"]),
    ):
        monkeypatch.setenv(f"TESSPHOT_DB_{key}", value)
    monkeypatch.delenv("TESSPHOT_DB", raising=False)
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("ID,ra,dec,Tmag\n1,2,3,4\n")
    assert load_db([tiny], table="tic_env") == 1
    with PostgresSource(table="tic_env") as source:
        assert source.describe().startswith(f"postgresql://tessphot@127.0.0.1:{s['port']}/")
