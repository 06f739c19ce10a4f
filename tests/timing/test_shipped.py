"""The TESS ephemeris shipped with tessphot: offline per-star times, and the fallback."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from astropy.io import fits

from tessphot import env
from tessphot.catalog.motion import julian_epoch, propagate
from tessphot.constants import BTJD_OFFSET
from tessphot.sectors import sector_info
from tessphot.sources.base import PixelSource
from tessphot.timing import (
    EphemerisError,
    TableEphemeris,
    TimingSettings,
    barycentric_correction,
    find_tables,
    horizons,
    observer_state,
    read_horizons_table,
    spacecraft_ephemeris,
)
from tessphot.timing.barycentric import FILE_CORRECTION_SOURCE, SPEED_OF_LIGHT_KM_S
from tessphot.timing.shipped import (
    SHIPPED_NAME,
    compact_tables,
    read_compact,
    shipped_path,
    shipped_tables,
    write_compact,
)

SPOC_LC = "tess2018206045859-s0001-0000000025155310-0120-s_lc.fits.gz"
#: Largest position error of the shipped tables against the full ones [km] (measured 0.31 km
#: every 10 min over the mission: 1.05 us of light time).
SHIPPED_TOLERANCE_KM = 0.35


@pytest.fixture(scope="module")
def full(test_data):
    return TableEphemeris([read_horizons_table(p) for p in find_tables([test_data / "ephemeris"])])


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No network (a download raises), an empty cache, no user tables or kernels."""
    calls = []

    def no_network(url, timeout):
        calls.append(url)
        raise OSError("Network is unreachable")

    monkeypatch.setattr(horizons.urllib.request, "urlopen", no_network)
    for name in (env.EPHEMERIS, env.SPICE_KERNELS, env.EPHEMERIS_CACHE):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty-cache").mkdir()
    monkeypatch.setenv(env.XDG_CACHE_HOME, str(tmp_path / "empty-cache"))
    return calls


def test_shipped_with_the_package():
    path = shipped_path()
    assert path.name == SHIPPED_NAME and path.is_file()
    assert path.stat().st_size < 600_000
    tables = shipped_tables()
    assert len(tables) == 8 and all(t.path == path for t in tables)


def test_shipped_tables_match_the_full_tables(full):
    """Every 10 min over 2018-05 to 2026-01: the compact copy within 0.35 km (1.2 us)."""
    shipped = TableEphemeris(shipped_tables())
    assert shipped.coverage == full.coverage
    probe = np.arange(full.start, full.stop, 10.0 / 1440.0)
    error = np.linalg.norm(shipped.position_km(probe) - full.position_km(probe), axis=1)
    print(
        f"shipped vs full tables: max {error.max():.3f} km "
        f"({error.max() / SPEED_OF_LIGHT_KM_S * 1e6:.2f} us), median {np.median(error):.4f} km"
    )
    assert error.max() < SHIPPED_TOLERANCE_KM


def test_compact_round_trip(full, tmp_path):
    """Written and read back: the same rows; a tighter tolerance keeps more rows."""
    tables = full.tables[:1]
    compact = compact_tables(tables, tolerance_km=1.0)
    path = tmp_path / "eph.npz"
    write_compact(compact, path)
    (back,) = read_compact(path)
    np.testing.assert_allclose(back.jd, compact[0].jd, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(back.position_km, compact[0].position_km)
    finer = compact_tables(tables, tolerance_km=0.1)
    assert tables[0].jd.size > finer[0].jd.size > compact[0].jd.size
    (path.parent / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(EphemerisError, match="bad.npz"):
        read_compact(path.parent / "bad.npz")


def test_offline_per_star_times_from_the_shipped_tables(offline, full, test_data):
    """No network, an empty cache: TIC 25155310's correction over sector 1 from the shipped
    tables, equal to the full tables' within 2 us and to SPOC's TIMECORR within 1 ms."""
    with fits.open(test_data / "lightcurves" / SPOC_LC) as hdul:
        data = hdul["LIGHTCURVE"].data
        ok = np.isfinite(data["TIME"]) & (data["TIMECORR"] != 0)
        time = np.asarray(data["TIME"][ok], dtype=float)
        timecorr = np.asarray(data["TIMECORR"][ok], dtype=float)
        header = hdul[0].header
    years = julian_epoch(sector_info(1).reference_time) - 2000.0
    ra, dec = propagate(header["RA_OBJ"], header["DEC_OBJ"], header["PMRA"], header["PMDEC"], years)
    jd = time - timecorr + BTJD_OFFSET
    ephemeris = spacecraft_ephemeris(jd.min(), jd.max(), TimingSettings())
    assert ephemeris.name == f"tables {SHIPPED_NAME}"
    assert offline == []  # no download tried
    ours = barycentric_correction(observer_state(jd, ephemeris), ra, dec)[0]
    reference = barycentric_correction(observer_state(jd, full), ra, dec)[0]
    assert np.abs(ours - reference).max() * 86400 < 2e-6
    assert np.abs(ours - timecorr).max() * 86400 < 1e-3


def test_user_tables_win_over_the_shipped(offline, monkeypatch, test_data, full):
    monkeypatch.setenv(env.EPHEMERIS, str(test_data / "ephemeris"))
    found = spacecraft_ephemeris(2458330.0, 2458340.0, TimingSettings())
    assert "20180720_tess_ephem.csv.gz" in found.name and SHIPPED_NAME not in found.name
    # A user table covering only part of the interval is completed by the shipped tables
    # (and used where it covers).
    first = read_horizons_table(find_tables([test_data / "ephemeris"])[0])
    monkeypatch.setenv(env.EPHEMERIS, str(first.path))
    mixed = spacecraft_ephemeris(first.stop - 5.0, first.stop + 5.0, TimingSettings())
    assert first.path.name in mixed.name and SHIPPED_NAME in mixed.name
    probe = np.array([first.stop - 1.0])
    np.testing.assert_allclose(mixed.position_km(probe), first_spline(first)(probe), atol=1e-6)


def first_spline(table):
    """The full table's own spline (what a user table gives where it covers)."""
    return TableEphemeris([table]).position_km


class _Source(PixelSource):
    """A pixel source with only times (the part of the interface the times use)."""

    def __init__(self, path, time, timecorr):
        self.path = path
        self.time = time
        self.timecorr = timecorr
        self.timing = TimingSettings()

    def read(self, name, t0, t1, box):
        raise NotImplementedError

    def close(self):
        pass


def test_outside_every_table_the_file_timecorr_is_used(offline, tmp_path, caplog):
    """Times after the shipped tables, no network: every star gets the file's TIMECORR, with
    a WARNING naming the file and a BARYSRC header card saying so."""
    time = 5100.0 + np.arange(20) / 720.0  # BTJD, after the tables shipped (JD 2461071.5)
    timecorr = 0.0040 + 1e-6 * np.arange(20)
    source = _Source(tmp_path / "my_cutout.fits", time, timecorr)
    with caplog.at_level(logging.WARNING, logger="tessphot"):
        times, correction = source.barycentric_times(63.0, -69.0)
    assert len(offline) == 1  # the download was tried
    np.testing.assert_array_equal(correction, timecorr)
    np.testing.assert_array_equal(times, time)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "my_cutout.fits" in warnings[0].getMessage()
    assert "TIMECORR" in warnings[0].getMessage()
    barysrc, comment = source.time_keywords()["BARYSRC"]
    assert barysrc == FILE_CORRECTION_SOURCE
    assert len(fits.Card("BARYSRC", barysrc, comment).image) == 80  # fits on one card
    # Inside the tables the same source gets its per-star correction.
    inside = _Source(tmp_path / "inside.fits", 1330.0 + np.arange(20) / 720.0, timecorr)
    _, per_star = inside.barycentric_times(63.0, -69.0)
    assert np.abs(per_star - timecorr).min() * 86400 > 1.0
    assert inside.time_keywords()["BARYSRC"][0] == f"tables {SHIPPED_NAME}"


def test_update_downloads_after_the_tables(offline, monkeypatch, tmp_path, capsys):
    """``tessphot ephemeris --update``: from a month before the end of the tables found (the
    shipped ones here) to now, into the cache; nothing when they reach far enough."""
    from tessphot.cli import EXIT_OK, main
    from tessphot.timing import ephemeris as eph

    asked = []

    def fake_download(jd_min, jd_max, cache_dir):
        asked.append((jd_min, jd_max, cache_dir))
        return cache_dir / "horizons_tess_x.csv"

    monkeypatch.setattr(eph, "download_horizons", fake_download)
    stop = TableEphemeris(shipped_tables()).stop
    settings = TimingSettings(cache_dir=str(tmp_path / "cache"))
    assert eph.update_tables(settings, until_jd=stop - 1.0) is None and asked == []
    path = eph.update_tables(settings, until_jd=stop + 100.0)
    assert asked == [(stop - eph.UPDATE_OVERLAP_DAYS, stop + 100.0, tmp_path / "cache")]
    assert path == tmp_path / "cache" / "horizons_tess_x.csv"
    assert main(["ephemeris", "--update"]) == EXIT_OK
    assert "downloaded" in capsys.readouterr().out and asked[-1][1] > stop
    assert main(["ephemeris"]) == EXIT_OK
    listed = capsys.readouterr().out
    assert f"{SHIPPED_NAME} (shipped with tessphot): JD 2458270.50-2461071.50" in listed
