"""Every TESS cadence end to end: 1800-s FFIs (the shared small sector, tests/photometry),
600-s and 200-s FFIs (tiny simulated sectors), 120-s TPFs (the real TPF, tests/photometry)
and 20-s TPFs (the real TPF's pixels re-stamped at 20 s), through todo and photometry."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from tessphot.catalog.make import make_catalogs
from tessphot.catalog.sources.file import FileSource
from tessphot.evaluation.scoring.photometry import score_sector
from tessphot.evaluation.simulate.truth import read_truth
from tessphot.runner.loop import run_photometry
from tessphot.todo import make_todo

#: A Tmag-10 star in the middle of the tiny simulated sectors: (TIC, Tmag, row, column).
STAR = (900_000_100, 10.0, 1019.3, 1019.6)
TIC = 25155310
FAST_NAME = "tess2018206045859-s0001-0000000025155310-0120-s_fast-tp.fits.gz"
SLOW_NAME = "tess2018206045859-s0001-0000000025155310-0120-s_tp.fits.gz"


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
    # The flux against the truth: a F_t + b (a: the aperture's enclosed fraction, b: the
    # neighbours' light) within the errors, the errors as the simulation's noise predicts.
    truth = read_truth(next((tmp_path / "truth").glob("truth_*.hdf5")))
    star = int(np.flatnonzero(truth["stars"]["starid"] == STAR[0])[0])
    k = np.searchsorted(truth["ffiindex"], lc["CADENCENO"])
    assert np.array_equal(truth["ffiindex"][k], lc["CADENCENO"])
    flux, err = np.asarray(lc["FLUX_RAW"], float), np.asarray(lc["FLUX_RAW_ERR"], float)
    good = np.isfinite(flux) & (lc["QUALITY"] == 0)
    true = truth["flux"][k, star][good]
    (a, b), *_ = np.linalg.lstsq(np.column_stack([true, np.ones(true.size)]), flux[good])
    pull = (flux[good] - a * true - b) / err[good]
    (score,) = (s for s in score_sector(tmp_path, tmp_path / "lc").stars if s.starid == STAR[0])
    expected = score.expected_ppm * 1e-6 * np.sqrt(3600.0 / cadence)  # per cadence
    print(
        f"{cadence} s: pull std {np.std(pull):.2f} of {pull.size}, a {a:.4f}, "
        f"flux fraction {score.flux_fraction:.3f}, errors {np.median(err / flux) * 1e6:.0f} "
        f"ppm, expected {expected * 1e6:.0f} ppm"
    )
    # 25-30 cadences: the std of the pulls is good to ~14 % (1 sigma).
    assert 0.55 < np.std(pull) < 1.45
    assert abs(np.median(err / flux) / expected - 1) < 0.05  # found: 0.1 %
    assert abs(score.flux_fraction - 0.95) < 0.05


def _tpf_light_curve(test_data, folder, hdul, name: str, cadence: int) -> fits.FITS_rec:
    """Photometry of one TPF (written as ``name`` into ``folder``): its light curve."""
    (folder / "tpf").mkdir(parents=True)
    hdul.writeto(folder / "tpf" / name)
    catalog = folder / "cat.csv"
    catalog.write_text(
        "ID,ra,dec,pmRA,pmDEC,Tmag,Teff\n25155310,63.37389,-69.226789,63.0735,53.6783,10.555,5800\n"
    )
    make_catalogs(1, folder, FileSource([catalog]), cameras=[4], ccds=[1])
    make_todo(folder)
    timing = {"ephemeris_dirs": [str(test_data / "ephemeris")], "download": False}
    # K2P2's mask as it is: the noise-optimal aperture depends on the cadence (the noise
    # averages over 3600 s / cadence frames in an hour), so the two would differ.
    settings = {"aperture": {"optimise": False}}
    report = run_photometry(folder, folder / "lc", run_all=True, settings=settings, timing=timing)
    assert report.failed == 0 and report.tasks == 1
    (path,) = (folder / "lc" / f"c{cadence:04d}").rglob("*.fits.gz")
    with fits.open(path) as lc:
        return lc["LIGHTCURVE"].data.copy(), lc["LIGHTCURVE"].header.copy()


def test_20s_tpf_end_to_end(test_data, tmp_path):
    """The real TPF's five cadences re-stamped 20 s apart as a fast (20-s) TPF: the same
    pixels give the same fluxes as the 120-s original."""
    real = test_data / "tpf" / "tess25155310-s01-first-cadences.fits.gz"
    with fits.open(real) as hdul:
        slow, _ = _tpf_light_curve(test_data, tmp_path / "slow", hdul, SLOW_NAME, 120)
    with fits.open(real) as hdul:
        hdul = fits.HDUList([hdu.copy() for hdu in hdul])
    table = hdul["PIXELS"]
    table.header["TIMEDEL"] = 20 / 86400
    table.header["NUM_FRM"] = 10
    table.header["NREADOUT"] = 8
    t0 = table.data["TIME"][0]
    table.data["TIME"][:] = t0 + np.arange(len(table.data)) * 20 / 86400
    lc, header = _tpf_light_curve(test_data, tmp_path / "fast", hdul, FAST_NAME, 20)
    assert header["TIMEDEL"] * 86400 == pytest.approx(20) and header["NUM_FRM"] == 10
    np.testing.assert_allclose(np.diff(lc["TIME"]) * 86400, 20, atol=0.01)
    assert np.isfinite(lc["FLUX_RAW"]).all()
    np.testing.assert_array_equal(lc["CADENCENO"], slow["CADENCENO"])
    for column in ("FLUX_RAW", "FLUX_RAW_ERR", "FLUX_BKG"):
        np.testing.assert_allclose(lc[column], slow[column], rtol=1e-6, err_msg=column)
