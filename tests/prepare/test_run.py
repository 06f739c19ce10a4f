"""Tests of the prepare stage's run over a folder: bad files and regions do not stop it."""

from __future__ import annotations

import logging
import shutil
import warnings

import numpy as np
import pytest
from astropy.io import fits

from tessphot.cli.common import EXIT_ERROR, EXIT_OK
from tessphot.cli.main import main
from tessphot.prepare.cube import PreparedCube
from tessphot.prepare.run import NothingPrepared, prepare_photometry

CUTOUT_6X6 = "tesscut/tess-s0001-4-2_84.291190_-80.469170_6x6_astrocut.fits"
SPOC_LC = "lightcurves/tess2018206045859-s0001-0000000025155310-0120-s_lc.fits.gz"


def _no_times(source, target) -> None:
    """A copy of a cutout whose headers are intact but whose TIME column is all NaN."""
    with fits.open(source) as hdul:
        hdul[1].data["TIME"][:] = np.nan
        hdul.writeto(target)


@pytest.fixture()
def folder(test_data, tmp_path):
    """A good cutout under a browser's name, a cutout that cannot be prepared, a truncated
    cutout and a light curve."""
    shutil.copy(test_data / CUTOUT_6X6, tmp_path / "download.fits")
    _no_times(test_data / CUTOUT_6X6, tmp_path / "cutout(1).fits")
    raw = (test_data / CUTOUT_6X6).read_bytes()
    (tmp_path / "cutout(2).fits").write_bytes(raw[: len(raw) // 2])
    shutil.copy(test_data / SPOC_LC, tmp_path / "lc.fits.gz")
    return tmp_path


def test_one_bad_cutout_does_not_stop_the_others(folder, caplog):
    with caplog.at_level(logging.INFO, logger="tessphot"), warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # astropy's warnings stay silent
        prepared = prepare_photometry(folder, workers=1, progress=False)
    assert [p.name for p in prepared] == [
        "sector001_camera4_ccd2_tesscut_84.291190_-80.469170_6x6.hdf5"
    ]
    with PreparedCube(prepared[0]) as cube:
        assert cube.shape == (6, 6) and cube.attrs["source_file"] == "download.fits"
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    failed = [m for level, m in messages if level == logging.ERROR]
    assert failed == [
        "Prepare of cutout(1).fits failed, left out: "
        f"{folder / 'cutout(1).fits'}: no cadence has a time"
    ]
    left = [m for _, m in messages if ": left out: " in m]
    assert len(left) == 2
    assert any(m.startswith(f"{folder / 'cutout(2).fits'}: left out: truncated") for m in left)
    assert any(m.startswith(f"{folder / 'lc.fits.gz'}: left out: a SPOC light curve") for m in left)
    assert messages[-1] == (
        logging.WARNING,
        "Prepare: 1 region(s) prepared, 1 failed (cutout(1).fits); 2 file(s) left out: "
        "1 light curve, 1 truncated file",
    )


def test_exit_codes(folder, capsys, test_data):
    shutil.copy(test_data / CUTOUT_6X6, folder / "download(1).fits")
    assert main(["-q", "prepare", str(folder), "-j", "1"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert "Prepared: " in out and "1 failed (cutout(1).fits)" in err
    assert "; 3 file(s) left out: 1 light curve, 1 truncated file, 1 duplicate cutout(s)" in err
    for name in ("download.fits", "download(1).fits"):
        (folder / name).unlink()
    for path in folder.glob("*.hdf5"):
        path.unlink()
    with pytest.raises(NothingPrepared, match="nothing prepared .* 1 region"):
        prepare_photometry(folder, workers=1, progress=False)
    assert main(["-q", "prepare", str(folder), "-j", "1"]) == EXIT_ERROR
    assert "error: nothing prepared" in capsys.readouterr().err
    (folder / "cutout(1).fits").unlink()
    assert main(["-q", "prepare", str(folder)]) == EXIT_ERROR
    err = capsys.readouterr().err.splitlines()[-1]
    assert err == (
        f"tessphot prepare: error: no FFIs or TESScut cutouts matching the selection below "
        f"{folder} (left out: 1 light curve, 1 truncated file)"
    )
