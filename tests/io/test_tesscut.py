"""The TESScut reader on the two real cutouts."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from tessphot.io.tesscut import TESScutError, find_cutouts, parse_cutout_name, read_cutout

SMALL = "tess-s0001-4-3_107.27_-70.0_5x5_astrocut.fits"
PI_MEN = "tess-s0001-4-2_84.291190_-80.469170_6x6_astrocut.fits"


def test_names(test_data):
    name = parse_cutout_name(SMALL)
    assert name[:5] == (1, 4, 3, 107.27, -70.0) and name.tag == "107.27_-70.0_5x5"
    assert parse_cutout_name("tess-s0001-4-3_107.27_-70.0_5x5_astrocut.fits.gz") is not None
    assert parse_cutout_name("tess2018206192942-s0001-1-4-0120-s_ffic.fits") is None
    assert [p.name for p in find_cutouts(test_data / "tesscut")] == [PI_MEN, SMALL]
    assert [p.name for p in find_cutouts(test_data / "tesscut", ccd=3)] == [SMALL]


def test_full_sector_cutout_with_broken_wcs(test_data, caplog):
    """The 2018 cutout: 1282 cadences; its WCS and physical WCS are wrong (the middle pixel
    maps 5 degrees from the requested position), so the CCD's WCS model places it."""
    with caplog.at_level(logging.WARNING, logger="tessphot"):
        cutout = read_cutout(test_data / "tesscut" / SMALL)
    assert "early astrocut" in caplog.text
    assert cutout.geometry_source == "model"
    assert cutout.shape == (5, 5) and cutout.time.size == 1282
    assert cutout.origin == (1901, 883)
    ra, dec = cutout.wcs.all_pix2world([[2.0, 2.0]], 0)[0]
    assert abs(ra - 107.27) * np.cos(np.radians(dec)) < 0.01 and abs(dec + 70.0) < 0.01
    # FFI cadence numbers counted from sector 1's first FFI, as in the real list.
    cadences = np.loadtxt(test_data / "sector001" / "cadences_s0001.txt", dtype=int)
    np.testing.assert_array_equal(cutout.cadenceno, cadences)
    assert cutout.cadence == 1800 and set(np.unique(cutout.quality)) == {0, 32}
    frame = cutout.frame(10)
    assert frame.data.shape == (5, 5) and frame.origin == (1901, 883)
    assert frame.cadenceno == cadences[10] and frame.barycorr == cutout.timecorr[10]
    assert frame.tstop - frame.tstart == pytest.approx(1800 / 86400)
    assert frame.header["NUM_FRM"] == 900 and frame.header["NREADOUT"] == 720
    assert frame.data_rel == 1 and frame.procver.startswith("spoc")


def test_recent_cutout_keeps_its_own_geometry(test_data):
    """The 2021 cutout of pi Mensae: WCS and CCD position (in the PIXELS table) agree with
    the model and are used as they are."""
    cutout = read_cutout(test_data / "tesscut" / PI_MEN)
    assert cutout.geometry_source == "file"
    assert cutout.origin == (256, 1583)  # 1CRV4P = 1628, 2CRV4P = 257
    assert cutout.cadenceno[:3].tolist() == [4697, 4698, 4699]  # FFIINDEX of the first FFI
    x, y = cutout.wcs.all_world2pix(84.29119, -80.46917, 0)
    assert abs(x - 2.5) < 1 and abs(y - 2.5) < 1


def test_errors(test_data, tmp_path):
    with pytest.raises(TESScutError, match="file not found"):
        read_cutout(tmp_path / "cutout.fits")
    with pytest.raises(TESScutError, match="file not found"):
        read_cutout(tmp_path / SMALL)
    broken = tmp_path / SMALL
    broken.write_bytes((test_data / "tesscut" / SMALL).read_bytes()[:20000])
    expected = f"{broken}: truncated: the file ends inside the header of HDU 1"
    with pytest.raises(TESScutError, match=expected):
        read_cutout(broken)
