"""Sector metadata covers every sector, not a table that stops at sector 60."""

from __future__ import annotations

import json

import pytest
from astropy.io import fits

from tessphot.constants import ffi_cadence
from tessphot.sectors import sector_info


def test_reference_time_is_the_middle_of_the_real_data(test_data):
    """Sector 1's reference time against its real data: SPOC's 2-min light curve runs from
    TSTART to TSTOP. The pointing table gives whole-day windows (sector 1: 0.8 d before the
    data start, 0.7 d before they end), so the middle agrees to within a day."""
    path = test_data / "lightcurves" / "tess2018206045859-s0001-0000000025155310-0120-s_lc.fits.gz"
    header = fits.getheader(path, 1)
    middle = 0.5 * (header["TSTART"] + header["TSTOP"]) + header["BJDREFI"]
    info = sector_info(1)
    assert info.start_jd < header["TSTART"] + header["BJDREFI"] < info.start_jd + 1
    assert abs(info.reference_time - middle) < 1.0
    assert abs(info.reference_tjd - (middle - header["BJDREFI"])) < 1.0


def test_reference_times_against_the_original_table(test_data):
    """TASOC's reference times are a different convention (sectors 3-54: 5.6-7.1 d before
    the middle of the window, 55-60: 9.0-9.5 d; sector 1: the window's last day): both lie
    in the window, and the FFI cadences agree."""
    table = json.loads((test_data / "reference" / "sectors.json").read_text())["sectors"]
    for key, row in table.items():
        sector = int(key)
        if sector < 1:
            continue
        info = sector_info(sector)
        assert info.start_jd < row["reference_time"] < info.end_jd
        assert 24 < info.end_jd - info.start_jd < 30  # sector 18: 25 d, sector 2: 29 d
        if sector <= 54:
            assert info.ffi_cadence == row["ffi_cadence"]


def test_sectors_beyond_60():
    for sector in (61, 80, 100):
        info = sector_info(sector)
        assert info.ffi_cadence == 200
        assert 20 < info.end_jd - info.start_jd < 40


def test_invalid_sectors():
    with pytest.raises(ValueError, match="unknown sector"):
        sector_info(5000)
    with pytest.raises(ValueError):
        ffi_cadence(0)
    assert ffi_cadence(26) == 1800 and ffi_cadence(27) == 600 and ffi_cadence(55) == 600
