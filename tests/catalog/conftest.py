"""Fixtures of the catalog tests: a throw-away PostgreSQL server with q3c, small catalogs.

The PostgreSQL fixture starts a real server (Debian packages ``postgresql-15`` and
``postgresql-15-q3c``, installed by ``.ci/install-system.sh``) in a temporary folder, on
127.0.0.1 and a free port, with password authentication over TCP. Without the binaries or
psycopg the tests that need it are skipped, except on CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

#: Where Debian puts the PostgreSQL 15 server programs.
PG_BINDIRS = ("/usr/lib/postgresql/15/bin",)
#: Database, user and password of the test server.
PG_DB, PG_USER, PG_PASSWORD = "tic_test", "tessphot", "not-a-secret-7"
#: Seconds to wait for the server to start.
PG_START_TIMEOUT = 60


def _on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str):
    """Skip, or fail on CI where the PostgreSQL tests must run."""
    if _on_ci():
        pytest.fail(f"PostgreSQL test server unavailable on CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _pg_bindir() -> Path | None:
    for candidate in PG_BINDIRS:
        if (Path(candidate) / "initdb").is_file():
            return Path(candidate)
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        path = Path(out.stdout.strip())
        if (path / "initdb").is_file() and (path / "postgres").is_file():
            return path
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _runuser() -> str:
    for candidate in (shutil.which("runuser"), "/usr/sbin/runuser", "/sbin/runuser"):
        if candidate and Path(candidate).is_file():
            return candidate
    _unavailable("running as root, but runuser (util-linux) is missing")


def _as_postgres(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a server program, as the ``postgres`` user when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        args = [_runuser(), "-u", "postgres", "--", *args]
    return subprocess.run(args, capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="session")
def postgres_server():
    """Connection parameters of a running PostgreSQL server with q3c in database ``tic_test``.

    Yields
    ------
    dict
        ``host``, ``port``, ``dbname``, ``user``, ``password`` (a non-superuser that owns the
        database; q3c is already created).
    """
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed (pip install 'tessphot[postgres]')")
    bindir = _pg_bindir()
    if bindir is None:
        _unavailable("PostgreSQL server binaries not found (apt-get install postgresql-15)")
    root = Path(tempfile.mkdtemp(prefix="tessphot-pg-"))
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()
    started = False
    try:
        out = _as_postgres(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        if out.returncode:
            _unavailable(f"initdb failed: {out.stderr.strip() or out.stdout.strip()}")
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        out = _as_postgres(
            [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w"]
            + ["-t", str(PG_START_TIMEOUT), "start"]
        )
        if out.returncode:
            server_log = log.read_text() if log.exists() else ""
            _unavailable(f"PostgreSQL did not start: {out.stderr.strip()} {server_log}")
        started = True
        admin = psycopg.connect(
            host=str(sockets), port=port, user="postgres", dbname="postgres", autocommit=True
        )
        with admin:
            admin.execute(f"CREATE ROLE {PG_USER} LOGIN PASSWORD '{PG_PASSWORD}'")
            admin.execute(f"CREATE DATABASE {PG_DB} OWNER {PG_USER}")
        with psycopg.connect(
            host=str(sockets), port=port, user="postgres", dbname=PG_DB, autocommit=True
        ) as conn:
            try:
                conn.execute("CREATE EXTENSION q3c")
            except psycopg.Error as err:
                _unavailable(f"q3c extension missing (apt-get install postgresql-15-q3c): {err}")
        yield {
            "host": "127.0.0.1",
            "port": port,
            "dbname": PG_DB,
            "user": PG_USER,
            "password": PG_PASSWORD,
        }
    finally:
        if started:
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_dsn(postgres_server) -> str:
    """libpq connection string of the test database (without the password)."""
    s = postgres_server
    return f"host={s['host']} port={s['port']} dbname={s['dbname']} user={s['user']}"


@pytest.fixture
def pg_env(postgres_server, monkeypatch) -> dict:
    """The password in ``$TESSPHOT_DB_PASSWORD`` (as a user would give it)."""
    monkeypatch.setenv("TESSPHOT_DB_PASSWORD", postgres_server["password"])
    return postgres_server


@pytest.fixture(scope="session")
def small_simulation(tmp_path_factory) -> Path:
    """A tiny simulated sector (sector 1, camera 1, CCD 4) with its TIC-like catalog."""
    from tessphot.config.simulate import SimulationConfig
    from tessphot.evaluation.simulate.sector import simulate_sector

    folder = tmp_path_factory.mktemp("simulated")
    config = SimulationConfig(size=64, cadences=1, stars=50, bright=1, compress=False)
    simulate_sector(config, folder, progress=False)
    return folder


def _random_tic_rows(
    rng: np.random.Generator, n: int, centre: tuple[float, float], radius_deg: float
) -> dict[str, np.ndarray]:
    """``n`` TIC-like stars spread uniformly over a cap (for synthetic catalog files)."""
    from tessphot.catalog import sphere

    c = sphere.radec_to_xyz(*centre)
    east, north = sphere.tangent_basis(c)
    r = np.radians(radius_deg) * np.sqrt(rng.uniform(0, 1, n))
    phi = rng.uniform(0, 2 * np.pi, n)
    xyz = (
        np.cos(r)[:, None] * c
        + (np.sin(r) * np.cos(phi))[:, None] * east
        + (np.sin(r) * np.sin(phi))[:, None] * north
    )
    ra, dec = sphere.xyz_to_radec(xyz)
    pm_ra = rng.standard_t(3, n) * 10.0
    pm_dec = rng.standard_t(3, n) * 10.0
    pm_ra[rng.uniform(size=n) < 0.1] = np.nan
    pm_dec[np.isnan(pm_ra)] = np.nan
    teff = rng.uniform(3000, 8000, n).round(0)
    teff[rng.uniform(size=n) < 0.2] = np.nan
    return {
        "ID": rng.choice(20 * n, n, replace=False) + 10_000_000,
        "ra": ra,
        "dec": dec,
        "pmRA": pm_ra,
        "pmDEC": pm_dec,
        "Tmag": rng.uniform(5.0, 20.0, n).round(3),
        "Teff": teff,
    }


def _write_table(path: Path, columns: dict) -> Path:
    """Write TIC-like columns as CSV, ECSV, FITS or Parquet (from the file name)."""
    from astropy.table import Table

    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({k: np.asarray(v) for k, v in columns.items()}), path)
    elif name.endswith(".fits"):
        Table(columns).write(path, format="fits", overwrite=True)
    elif name.endswith(".ecsv"):
        Table(columns).write(path, format="ascii.ecsv", overwrite=True)
    else:
        Table(columns).write(path, format="ascii.csv", overwrite=True)
    return path


def _ccd_rows(
    rng: np.random.Generator,
    n: int,
    sector: int = 1,
    camera: int = 1,
    ccd: int = 4,
    spread=(-80.0, 2128.0),
) -> dict[str, np.ndarray]:
    """``n`` TIC-like stars spread over a CCD (science pixels ``spread``), J2000 positions."""
    from tessphot.catalog.motion import julian_epoch, propagate
    from tessphot.geometry import sector_geometry
    from tessphot.sectors import sector_info

    wcs = sector_geometry(sector, camera, ccd).science_wcs
    cols, rows = rng.uniform(*spread, n), rng.uniform(*spread, n)
    ra, dec = wcs.all_pix2world(cols, rows, 0)
    out = _random_tic_rows(rng, n, (0.0, 0.0), 1.0)
    years = julian_epoch(sector_info(sector).reference_time) - 2000.0
    out["ra"], out["dec"] = propagate(ra, dec, out["pmRA"], out["pmDEC"], -years)
    return out


@pytest.fixture(scope="session")
def write_table():
    """``write_table(path, columns)``: TIC-like columns to CSV/ECSV/FITS/Parquet by name."""
    return _write_table


@pytest.fixture(scope="session")
def ccd_rows():
    """``ccd_rows(rng, n, sector=1, camera=1, ccd=4, spread=(-80, 2128))``: TIC-like stars
    (J2000) spread over a CCD's science pixels ``spread`` at the sector epoch."""
    return _ccd_rows


@pytest.fixture(scope="session")
def cap_rows():
    """``cap_rows(rng, n, (ra, dec), radius_deg)``: TIC-like stars spread over a cap."""
    return _random_tic_rows


@pytest.fixture
def catalog_log(tessphot_log):
    """Log messages of the catalog stage (the shared ``tessphot_log`` collector)."""
    return tessphot_log
