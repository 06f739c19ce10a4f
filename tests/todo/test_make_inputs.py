"""Tests of the todo stage's inputs: files recognised by content, left out with a reason."""

from __future__ import annotations

import gzip
import logging
import shutil
import sqlite3

import pytest

from tessphot.catalog.make import make_catalogs
from tessphot.catalog.sources.file import FileSource
from tessphot.todo import TodoError, make_todo

TIC = 25155310
TPF = "tpf/tess25155310-s01-first-cadences.fits.gz"
SPOC_LC = "lightcurves/tess2018206045859-s0001-0000000025155310-0120-s_lc.fits.gz"
CUTOUT = "tesscut/tess-s0001-4-2_84.291190_-80.469170_6x6_astrocut.fits"


def _damaged(test_data, folder) -> None:
    """A truncated copy of the TPF and a light curve, under browser names."""
    raw = gzip.decompress((test_data / TPF).read_bytes())
    (folder / "tpf(1).fits").write_bytes(raw[:30000])
    shutil.copy(test_data / SPOC_LC, folder / "download(2).fits.gz")


def test_renamed_tpf_used_and_bad_files_counted(test_data, tmp_path, caplog):
    shutil.copy(test_data / TPF, tmp_path / "download.fits")
    _damaged(test_data, tmp_path)
    catalog = tmp_path / "user_catalog.csv"
    catalog.write_text(
        f"ID,ra,dec,pmRA,pmDEC,Tmag,Teff\n{TIC},63.37389,-69.226789,63.0735,53.6783,10.555,5800\n"
    )
    make_catalogs(1, tmp_path, FileSource([catalog]), cameras=[4], ccds=[1], overwrite=True)
    with caplog.at_level(logging.INFO, logger="tessphot"):
        todo = make_todo(tmp_path, overwrite=True)
    con = sqlite3.connect(todo)
    try:
        rows = con.execute(
            "SELECT starid, datasource, sector, camera, ccd FROM todolist"
        ).fetchall()
    finally:
        con.close()
    assert (TIC, "tpf", 1, 4, 1) in rows
    left = [r.getMessage() for r in caplog.records if ": left out: " in r.getMessage()]
    assert sorted(m.split(": left out: ")[1].split(":")[0] for m in left) == [
        "a SPOC light curve",
        "truncated",
    ]
    assert caplog.records[-1].getMessage() == (
        "Todo: 2 file(s) left out: 1 light curve, 1 truncated file"
    )


def test_advice_when_nothing_to_do(test_data, tmp_path):
    _damaged(test_data, tmp_path)
    with pytest.raises(TodoError, match="no usable FFIs or TESScut cutouts: left out 1 light "):
        make_todo(tmp_path)
    shutil.copy(test_data / CUTOUT, tmp_path / "cutout.fits")
    with pytest.raises(TodoError, match=r"but 1 FFI\(s\)/TESScut cutout\(s\): run 'tessphot pre"):
        make_todo(tmp_path)
