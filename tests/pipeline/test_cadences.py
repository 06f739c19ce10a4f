"""Every TESS cadence end to end: 1800-s FFIs (the shared small sector, tests/photometry),
600-s and 200-s FFIs (tiny simulated sectors), 120-s TPFs (the real TPF, tests/photometry)
and 20-s TPFs (the real TPF's pixels re-stamped at 20 s), through todo and photometry."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits

from tessphot.catalog.make import make_catalogs
from tessphot.catalog.sources.file import FileSource
from tessphot.runner.loop import run_photometry
from tessphot.todo import make_todo

#: A Tmag-10 star in the middle of the tiny simulated sectors: (TIC, Tmag, row, column).
STAR = (900_000_100, 10.0, 1019.3, 1019.6)
TIC = 25155310
FAST_NAME = "tess2018206045859-s0001-0000000025155310-0120-s_fast-tp.fits.gz"


@pytest.mark.parametrize(("sector", "cadence"), [(30, 600), (60, 200)])
def test_ffi_cadence_end_to_end(sector, cadence, tmp_path):
    from tessphot.config import load_settings
    from tessphot.config.simulate import SimulationConfig
    from tessphot.demo import prepare_simulated
    from tessphot.evaluation.simulate.sector import simulate_sector

    config = SimulationConfig(
        sector=sector,
        camera=1,
        ccd=1,
        size=40,
        cadences=30,
        stars=15,
        bright=0,
        seed=sector,
        extra_stars=[STAR],
    )
    simulate_sector(config, tmp_path, progress=False)
    stages = prepare_simulated(tmp_path, load_settings(), progress=False, workers=1)
    report = run_photometry(tmp_path, tmp_path / "lc", constraints={"starid": [STAR[0]]})
    assert report.counts.get("OK", 0) + report.counts.get("WARNING", 0) == 1
    (path,) = (tmp_path / "lc" / f"c{cadence:04d}").rglob("*.fits.gz")
    assert f"-c{cadence:04d}-" in path.name
    with fits.open(path) as hdul:
        lc = hdul["LIGHTCURVE"].data
        header = hdul["LIGHTCURVE"].header
    assert len(lc) == 30 and header["TIMEDEL"] * 86400 == pytest.approx(cadence)
    assert np.median(np.diff(lc["TIME"])) * 86400 == pytest.approx(cadence, abs=0.01)
    assert header["NUM_FRM"] == cadence // 2
    assert np.isfinite(lc["FLUX_RAW"]).sum() >= 25
    assert stages["todo"].is_file()


def test_20s_tpf_end_to_end(test_data, tmp_path):
    """The real TPF's five cadences re-stamped 20 s apart as a fast (20-s) TPF."""
    with fits.open(test_data / "tpf" / "tess25155310-s01-first-cadences.fits.gz") as hdul:
        hdul = fits.HDUList([hdu.copy() for hdu in hdul])
    table = hdul["PIXELS"]
    table.header["TIMEDEL"] = 20 / 86400
    table.header["NUM_FRM"] = 10
    table.header["NREADOUT"] = 8
    t0 = table.data["TIME"][0]
    table.data["TIME"][:] = t0 + np.arange(len(table.data)) * 20 / 86400
    (tmp_path / "fast").mkdir()
    hdul.writeto(tmp_path / "fast" / FAST_NAME)
    catalog = tmp_path / "cat.csv"
    catalog.write_text(
        "ID,ra,dec,pmRA,pmDEC,Tmag,Teff\n25155310,63.37389,-69.226789,63.0735,53.6783,10.555,5800\n"
    )
    make_catalogs(1, tmp_path, FileSource([catalog]), cameras=[4], ccds=[1])
    make_todo(tmp_path)
    timing = {"ephemeris_dirs": [str(test_data / "ephemeris")], "download": False}
    report = run_photometry(tmp_path, tmp_path / "lc", run_all=True, timing=timing)
    assert report.failed == 0 and report.tasks == 1
    (path,) = (tmp_path / "lc" / "c0020").rglob("*.fits.gz")
    with fits.open(path) as hdul:
        lc = hdul["LIGHTCURVE"].data
        header = hdul["LIGHTCURVE"].header
    assert header["TIMEDEL"] * 86400 == pytest.approx(20) and header["NUM_FRM"] == 10
    np.testing.assert_allclose(np.diff(lc["TIME"]) * 86400, 20, atol=0.01)
    assert np.isfinite(lc["FLUX_RAW"]).all()
    shutil.rmtree(tmp_path / "lc")
