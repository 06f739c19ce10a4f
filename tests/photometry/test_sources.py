"""The other data sources end to end on real data: the TPF of TIC 25155310 and the two
TESScut cutouts, through catalog (user catalog file), prepare, todo and photometry."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from tessphot.catalog.make import make_catalogs
from tessphot.catalog.sources.file import FileSource
from tessphot.config.prepare import BackgroundSettings
from tessphot.constants import SATURATED_RATE, tmag_to_flux
from tessphot.io.tpf import read_tpf
from tessphot.lightcurve.writer import settings_from_header
from tessphot.photometry.task import photometry_task
from tessphot.prepare.cube import PreparedCube
from tessphot.prepare.run import prepare_photometry
from tessphot.runner.loop import run_photometry
from tessphot.sources import TPFSource, clear_cache
from tessphot.sources.errors import SourceError
from tessphot.sources.tpf_background import TPFBackground, data_uncertainties
from tessphot.tasks import STATUS
from tessphot.todo import make_todo

TIC = 25155310
TPF_NAME = "tess2018206045859-s0001-0000000025155310-0120-s_tp.fits.gz"
SPOC_LC = "tess2018206045859-s0001-0000000025155310-0120-s_lc.fits.gz"
TASOC_LC = "hlsp_tasoc_tess_ffi_tic00261136679-s0001-cam4-ccd2-c1800_tess_v05_ens-lc.fits"
PI_MEN = 261136679
PI_MEN_CUTOUT = "tess-s0001-4-2_84.291190_-80.469170_6x6_astrocut.fits"
#: SPOC's time-stamp correction of a data release <= 26 TPF: the mid-exposure stamp is
#: 2.000 - 0.021 s late (section 5.15 of the notes).
TPF_STAMP_OFFSET_S = 1.979
#: Catalog columns of a user catalog file (TIC names).
HEADER = "ID,ra,dec,pmRA,pmDEC,Tmag,Teff\n"


def _catalog(folder: Path, rows: list[str], cameras, ccds) -> None:
    path = folder / "user_catalog.csv"
    path.write_text(HEADER + "".join(f"{r}\n" for r in rows))
    make_catalogs(1, folder, FileSource([path]), cameras=cameras, ccds=ccds, overwrite=True)


def _rows(todo: Path, table: str = "todolist") -> list[dict]:
    con = sqlite3.connect(todo)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(f"SELECT * FROM {table} ORDER BY priority")]
    finally:
        con.close()


@pytest.fixture(scope="module")
def timing(test_data):
    return {"ephemeris_dirs": [str(test_data / "ephemeris")], "download": False}


@pytest.fixture(scope="module")
def tpf_run(test_data, tmp_path_factory, timing):
    """The real TPF below an input folder, a user catalog (the target with its TIC position
    and proper motion, and two faint stars placed on the TPF's pixels), todo and run."""
    folder = tmp_path_factory.mktemp("tpf_run")
    (folder / "tpfs" / "s01").mkdir(parents=True)
    tpf_path = folder / "tpfs" / "s01" / TPF_NAME
    shutil.copy(test_data / "tpf" / "tess25155310-s01-first-cadences.fits.gz", tpf_path)
    tpf = read_tpf(tpf_path)
    (ra1, dec1), (ra2, dec2) = tpf.wcs.all_pix2world([[2.0, 8.0], [9.6, 1.2]], 0)
    _catalog(
        folder,
        [
            f"{TIC},63.37389,-69.226789,63.0735,53.6783,10.555,5800",
            f"900000001,{ra1:.7f},{dec1:.7f},0,0,13.5,5000",
            f"900000002,{ra2:.7f},{dec2:.7f},0,0,14.5,5000",
        ],
        [4],
        [1],
    )
    todo = make_todo(folder, overwrite=True)
    tasks = _rows(todo)
    report = run_photometry(folder, folder / "lc", run_all=True, timing=timing)
    return {"folder": folder, "todo": todo, "tasks": tasks, "report": report, "tpf": tpf}


def test_tpf_targets_in_the_todo_list(tpf_run):
    tasks = tpf_run["tasks"]
    assert [(t["starid"], t["datasource"]) for t in tasks] == [
        (TIC, "tpf"),
        (900000001, f"tpf:{TIC}"),
        (900000002, f"tpf:{TIC}"),
    ]
    for t in tasks:
        assert (t["sector"], t["camera"], t["ccd"], t["cadence"]) == (1, 4, 1, 120)
        assert t["cbv_area"] == tasks[0]["cbv_area"]


def test_tpf_photometry_against_spoc(tpf_run, test_data, prf_dir):
    """TIC 25155310 from its TPF: times within 1 ms of SPOC's, SPOC's aperture bits kept,
    and our aperture's flux against SAP_FLUX as the PRF says the apertures differ."""
    assert tpf_run["report"].failed == 0
    statuses = {t["starid"]: t["status"] for t in _rows(tpf_run["todo"])}
    assert statuses[TIC] == 1  # OK: a mask reaching the TPF's edge is no warning
    diagnostics = {d["priority"]: d for d in _rows(tpf_run["todo"], "diagnostics")}
    path = tpf_run["folder"] / diagnostics[1]["lightcurve"]
    assert path.parent.parent.name == "c0120"
    with fits.open(path) as hdul:
        lc = hdul["LIGHTCURVE"].data
        aperture = hdul["APERTURE"].data
        primary = hdul[0].header
    with fits.open(test_data / "lightcurves" / SPOC_LC) as hdul:
        spoc = hdul["LIGHTCURVE"].data
        rows = np.searchsorted(spoc["CADENCENO"], lc["CADENCENO"])
        spoc_time = np.asarray(spoc["TIME"][rows], dtype=float)
        spoc_timecorr = np.asarray(spoc["TIMECORR"][rows], dtype=float)
        sap = np.asarray(spoc["SAP_FLUX"][rows], dtype=float)
    tpf = tpf_run["tpf"]
    np.testing.assert_array_equal(lc["CADENCENO"], tpf.cadenceno)
    np.testing.assert_array_equal(lc["PIXEL_QUALITY"], tpf.quality)
    # Times: SPOC's spacecraft time less the early release's 1.979-s stamp offset, with our
    # per-star barycentric correction, which is within 1 ms of SPOC's TIMECORR.
    timecorr_ms = (lc["TIMECORR"] - spoc_timecorr) * 86400e3
    print(f"TIMECORR - SPOC's: {np.round(timecorr_ms, 3)} ms")
    assert np.abs(timecorr_ms).max() < 1.0
    expected = spoc_time - spoc_timecorr - TPF_STAMP_OFFSET_S / 86400 + lc["TIMECORR"]
    assert np.abs(lc["TIME"] - expected).max() * 86400 < 1e-4
    assert primary["TOFFSET"] == pytest.approx(TPF_STAMP_OFFSET_S)
    # Real data with no SPOC PRF configured: no motion correction with the analytic PRF.
    assert primary["AP_MCORR"] is False and primary["AP_PRF"].lower().startswith("analytic")
    assert "tables" in primary["BARYSRC"]
    # APERTURE: SPOC's collected (1), background (4) and output bits kept, ours (2, 8) added.
    spoc_bits = tpf.aperture
    np.testing.assert_array_equal(aperture & ~(2 | 8), spoc_bits & ~(2 | 8))
    ours = (aperture & 2) > 0
    assert ((aperture & 8) > 0).sum() == ours.sum() > 0
    # Flux: the ratio to SAP_FLUX is what the PRF puts into the two apertures.
    from scipy.optimize import least_squares

    from tessphot.prf import load_prf

    prf = load_prf(prf_dir, 1, 4, 1)
    mean = np.nanmean(tpf.flux[tpf.quality == 0], axis=0).astype(float)
    r0, c0 = tpf.origin  # the PRF varies over the CCD: science coordinates

    def model(p):
        star = prf.render(p[:1], p[1:2], p[2:3], mean.shape, tpf.origin)
        return star + p[3]

    start = [r0 + 5.0, c0 + 5.0, 9000.0, 0.0]
    fit = least_squares(lambda p: (model(p) - mean).ravel(), start, x_scale=[0.1, 0.1, 100, 1])
    wide = (r0 - 15, c0 - 15)
    star = prf.render(fit.x[:1], fit.x[1:2], np.ones(1), (41, 41), wide)[15:26, 15:26]
    spoc_fraction = star[tpf.optimal_aperture].sum()
    predicted = star[ours].sum() / spoc_fraction
    measured = np.nanmean(lc["FLUX_RAW"] / sap)
    print(
        f"{ours.sum()} px vs SPOC's {tpf.optimal_aperture.sum()}: FLUX_RAW / SAP_FLUX = "
        f"{measured:.4f}, PRF-predicted {predicted:.4f}; PRF flux fraction in SPOC's aperture "
        f"{spoc_fraction:.3f} (SPOC's FLFRCSAP {tpf.header['FLFRCSAP']:.3f})"
    )
    assert abs(spoc_fraction - tpf.header["FLFRCSAP"]) < 0.02
    # Neighbours put 1 - CROWDSAP = 2.7 % of SPOC's aperture flux in: the margin.
    assert abs(measured - predicted) < 1 - tpf.header["CROWDSAP"] + 0.01


def test_tpf_source_reproduces_sap(tpf_run, test_data):
    """Through the photometry's data source: SPOC's aperture gives SAP_FLUX and SAP_BKG."""
    data = TPFSource(tpf_run["folder"] / "tpfs" / "s01" / TPF_NAME, tpf_run["folder"], 19.0)
    mask = data.tpf.optimal_aperture
    with fits.open(test_data / "lightcurves" / SPOC_LC) as hdul:
        spoc = hdul["LIGHTCURVE"].data
        rows = np.searchsorted(spoc["CADENCENO"], data.cadenceno)
        sap, sap_bkg = spoc["SAP_FLUX"][rows], spoc["SAP_BKG"][rows]
    r0, c0 = data.origin
    box = (r0, r0 + data.shape[0], c0, c0 + data.shape[1])
    n = data.time.size
    images = data.read("images", 0, n, box)[:, mask].astype(np.float64).sum(axis=1)
    backgrounds = data.read("backgrounds", 0, n, box)[:, mask].astype(np.float64).sum(axis=1)
    np.testing.assert_allclose(images, sap, rtol=2e-7)
    np.testing.assert_allclose(backgrounds, sap_bkg, rtol=2e-7)


def test_tpf_secondary_targets(tpf_run):
    statuses = {t["starid"]: t for t in _rows(tpf_run["todo"])}
    assert statuses[900000001]["status"] in (1, 3, 5)  # OK, WARNING or SKIPPED
    diagnostics = {d["priority"]: d for d in _rows(tpf_run["todo"], "diagnostics")}
    secondary = diagnostics[statuses[900000001]["priority"]]
    assert secondary["lightcurve"].startswith("lc/c0120/00900/tess00900000001-s001-4-1-c0120")


def test_tpf_errors_are_task_errors(tpf_run, tmp_path, timing):
    """A TPF task whose file is gone ends in ERROR with the reason; the run goes on."""
    folder = tmp_path / "input"
    shutil.copytree(tpf_run["folder"], folder, ignore=shutil.ignore_patterns("lc", "tpfs"))
    clear_cache()
    report = run_photometry(folder, folder / "lc", run_all=True, overwrite=True, timing=timing)
    assert report.counts == {"ERROR": 3}
    assert "no target pixel file of TIC 25155310 sector 1 at 120 s" in report.results[0][4]


@pytest.fixture(scope="module")
def cutout_run(test_data, tmp_path_factory, timing):
    """Both real cutouts with a user catalog (pi Mensae from the TIC; a placeholder star in
    the middle of the blank 5x5 field), through prepare, todo and photometry."""
    folder = tmp_path_factory.mktemp("cutouts")
    (folder / "cutouts").mkdir()
    for path in (test_data / "tesscut").glob("*.fits"):
        shutil.copy(path, folder / "cutouts" / path.name)
    _catalog(
        folder,
        [
            f"{PI_MEN},84.2911879979852,-80.4691197969941,311.187,1048.84,5.1054,5992.1",
            "900000010,107.27,-70.0,0,0,14.0,5000",
        ],
        [4],
        [2, 3],
    )
    prepared = prepare_photometry(folder, workers=1, progress=False)
    todo = make_todo(folder, overwrite=True)
    report = run_photometry(folder, folder / "lc", run_all=True, timing=timing)
    return {"folder": folder, "prepared": prepared, "todo": todo, "report": report}


def test_cutouts_prepared_as_small_ffi_regions(cutout_run, test_data):
    names = sorted(p.name for p in cutout_run["prepared"])
    assert names == [
        "sector001_camera4_ccd2_tesscut_84.291190_-80.469170_6x6.hdf5",
        "sector001_camera4_ccd3_tesscut_107.27_-70.0_5x5.hdf5",
    ]
    path = cutout_run["folder"] / names[1]
    with PreparedCube(path) as cube:
        assert cube.origin == (1901, 883) and cube.shape == (5, 5)
        assert cube.attrs["source"] == "tesscut" and cube.attrs["cadence"] == 1800
        # Data release 1: 2 s stamp offset and camera 4 CCD 3's readout delay removed.
        assert cube.attrs["time_offset"] == pytest.approx(1.979 - 1.04)
        time = cube.array("time")
        quality = cube.array("quality")
        sky = cube.array("backgrounds")
        image = cube.array("images")
    with fits.open(test_data / "tesscut" / "tess-s0001-4-3_107.27_-70.0_5x5_astrocut.fits") as h:
        raw = h[1].data
        np.testing.assert_array_equal(quality, raw["QUALITY"])
        np.testing.assert_allclose(time, raw["TIME"] - (1.979 - 1.04) / 86400, rtol=0, atol=1e-8)
        flux = np.asarray(raw["FLUX"], dtype=float)
    # A blank field: the background is the sky, the images what is left around zero.
    good = quality == 0
    level = np.nanmedian(flux[good])
    print(f"5x5 sky {level:.1f} e-/s, background {np.nanmedian(sky[good]):.1f} e-/s")
    assert abs(np.nanmedian(sky[good]) / level - 1) < 0.1
    assert abs(np.nanmedian(image[good])) < 0.1 * level


def test_cutout_light_curves(cutout_run, test_data):
    report = cutout_run["report"]
    assert report.tasks == 2 and report.failed == 0
    tasks = {t["starid"]: t for t in _rows(cutout_run["todo"])}
    assert tasks[PI_MEN]["datasource"] == "ffi" and tasks[PI_MEN]["ccd"] == 2
    diagnostics = {d["priority"]: d for d in _rows(cutout_run["todo"], "diagnostics")}
    folder = cutout_run["folder"]
    with fits.open(folder / diagnostics[tasks[900000010]["priority"]]["lightcurve"]) as h:
        assert len(h["LIGHTCURVE"].data) == 1282
        assert h[0].header["CCD"] == 3 and h[0].header["DATA_REL"] == 1
    with fits.open(folder / diagnostics[tasks[PI_MEN]["priority"]]["lightcurve"]) as h:
        ours = h["LIGHTCURVE"].data
        assert h[0].header["DATA_REL"] == 42
    with fits.open(test_data / "lightcurves" / TASOC_LC) as h:
        tasoc = h["LIGHTCURVE"].data
        rows = np.searchsorted(tasoc["CADENCENO"], ours["CADENCENO"])
        assert np.array_equal(tasoc["CADENCENO"][rows], ours["CADENCENO"])
        diff_ms = (ours["TIMECORR"] - tasoc["TIMECORR"][rows]) * 86400e3
        ratio = np.nanmedian(ours["FLUX_RAW"] / tasoc["FLUX_RAW"][rows])
    print(f"pi Men: |TIMECORR - TASOC's| {np.abs(diff_ms).max():.3f} ms, flux ratio {ratio:.3f}")
    assert np.abs(diff_ms).max() < 1.0
    # The flux: test_saturated_cutout_flux, test_saturated_cutout_variations.


def test_real_cutouts_corrected(cutout_run, tmp_path):
    """The real cutouts' light curves through ``tessphot correct`` (issue 15's real data):
    each is a star on its own (no vectors, no neighbours), so FLUX_CORR is its relative raw
    flux, flagged WARNING with the reason; the 1282-cadence one keeps its noise."""
    from tessphot.correct.stage import run_corrections
    from tessphot.lightcurve.diagnostics import rms_timescale

    folder = tmp_path / "run"
    shutil.copytree(cutout_run["folder"], folder)
    report = run_corrections(folder, output=folder / "lc")
    assert report.counts == {"WARNING": 2} and not report.errors
    statuses = {row["corr_status"] for row in _rows(folder / "todo.sqlite")}
    assert statuses == {STATUS.WARNING.value}
    for row in _rows(folder / "todo.sqlite", "diagnostics_corr"):
        assert "needed for a correction" in row["errors"]
    for path in sorted((folder / "lc").rglob("*.fits*")):
        with fits.open(path) as h:
            data, header = h["LIGHTCURVE"].data, h[0].header
        assert header["CORRMET"] == "none" and header["CORRJUMP"] == 0
        raw = np.asarray(data["FLUX_RAW"], dtype=float)
        usable = np.isfinite(raw) & np.isfinite(data["FLUX_CORR"])
        # The relative raw flux (over its median, in the target's own light): linear in it.
        corrected = np.asarray(data["FLUX_CORR"][usable], dtype=float)
        fitted = np.polyval(np.polyfit(raw[usable], corrected, 1), raw[usable])
        assert np.abs(corrected - fitted).max() < 1.0  # ppm
        if len(data) == 1282:
            t = data["TIME"][usable]
            relative = raw[usable] / np.median(raw[usable]) - 1
            scale = np.polyfit(relative, corrected / 1e6, 1)[0]  # the decontamination
            before = rms_timescale(t, relative)
            after = rms_timescale(t, corrected / 1e6) / scale
            print(f"real 5x5 cutout: rms_hour {before * 1e6:.0f} ppm raw, {after * 1e6:.0f} corr.")
            assert after == pytest.approx(before, rel=1e-3)


def _pi_men(cutout_run, test_data):
    """pi Men's light curve from the cutout, its primary header, and TASOC's flux on the
    same cadences."""
    tasks = {t["starid"]: t for t in _rows(cutout_run["todo"])}
    diagnostics = {d["priority"]: d for d in _rows(cutout_run["todo"], "diagnostics")}
    path = cutout_run["folder"] / diagnostics[tasks[PI_MEN]["priority"]]["lightcurve"]
    with fits.open(path) as h:
        ours = h["LIGHTCURVE"].data
        header = h[0].header
    with fits.open(test_data / "lightcurves" / TASOC_LC) as h:
        tasoc = h["LIGHTCURVE"].data
        rows = np.searchsorted(tasoc["CADENCENO"], ours["CADENCENO"])
        tasoc_flux = np.asarray(tasoc["FLUX_RAW"][rows], dtype=float)
    return ours, header, tasoc_flux


def test_saturated_cutout_flux(cutout_run, test_data):
    """pi Mensae (Tmag 5.11, saturated) in a 6x6 cutout gets halo photometry, whose level
    is the TIC magnitude's flux by construction (HALO_SCL): 0.902 of TASOC's aperture flux
    from the full FFIs (no tolerance to tune: the level is exact)."""
    ours, header, tasoc_flux = _pi_men(cutout_run, test_data)
    flux = np.asarray(ours["FLUX_RAW"], dtype=float)
    assert header["PHOTMET"] == "halo"
    assert header["HALO_SCL"] == pytest.approx(tmag_to_flux(5.1054), rel=1e-9)
    assert np.nanmedian(flux) == pytest.approx(header["HALO_SCL"], rel=1e-6)
    print(f"pi Men: flux / TASOC's {np.nanmedian(flux / tasoc_flux):.4f}")


def _relative(values: np.ndarray, good: np.ndarray) -> np.ndarray:
    return values[good] / np.median(values[good])


def test_saturated_cutout_variations_are_the_pixels_own(cutout_run, test_data):
    """pi Men's bleed runs off the 6x6 cutout, and only 12 pixels (all in its wings) are
    unsaturated. TASOC's aperture on the full FFIs is flat to 2e-4 over these 50 cadences,
    but the cutout's own pixels are not: the wings' sum rises by ~2 % against TASOC over
    the first day (focus and pointing settling after the sector's start move light across
    the cutout's edges), so no method confined to the cutout can follow TASOC. The sky,
    fitted on those wings, is poorly determined, and the light curve must say so: its
    deviation from TASOC's stays within its own stated uncertainties."""
    ours, _, tasoc_flux = _pi_men(cutout_run, test_data)
    with fits.open(test_data / "tesscut" / PI_MEN_CUTOUT) as hdul:
        pixels = np.asarray(hdul[1].data["FLUX"], dtype=float)
    assert len(pixels) == len(ours)  # every cadence, in the file's order
    unsaturated = np.all(pixels < 0.8 * SATURATED_RATE, axis=0)
    wings = pixels[:, unsaturated].sum(axis=1)
    flux = np.asarray(ours["FLUX_RAW"], dtype=float)
    error = np.asarray(ours["FLUX_RAW_ERR"], dtype=float)
    good = np.isfinite(flux) & np.isfinite(tasoc_flux) & (ours["QUALITY"] == 0)
    wings_vs_tasoc = np.ptp(_relative(wings, good) - _relative(tasoc_flux, good))
    ours_vs_tasoc = np.std(_relative(flux, good) - _relative(tasoc_flux, good))
    stated = np.median(error[good] / flux[good])
    print(
        f"pi Men: wings vs TASOC {wings_vs_tasoc:.2e} peak to peak; ours vs TASOC "
        f"{ours_vs_tasoc:.2e} rms; stated relative uncertainty {stated:.2e}"
    )
    assert wings_vs_tasoc > 5e-3
    assert ours_vs_tasoc < stated


def test_psf_methods_on_a_real_tpf(tpf_run, test_data, prf_dir, timing, tmp_path):
    """Linear and nonlinear PSF photometry of the real TPF with the SPOC PRF. The TPF's WCS
    puts TIC 25155310 0.3 px (in column) from where its PRF fits it: linear PSF photometry,
    at that position, gets ~0.88 of the star's whole flux (SPOC's SAP_FLUX over FLFRCSAP);
    PSF photometry fits the offset and gets the whole flux within 2 %."""
    folder = tpf_run["folder"]
    task = next(t for t in tpf_run["tasks"] if t["starid"] == TIC)
    settings = {"prf_dir": str(prf_dir)}
    with fits.open(test_data / "lightcurves" / SPOC_LC) as hdul:
        spoc = hdul["LIGHTCURVE"].data
        fraction = hdul[1].header["FLFRCSAP"]
    ratios, headers = {}, {}
    for method in ("linpsf", "psf"):
        out = tmp_path / method
        result = photometry_task(task, folder, out, method=method, settings=settings, timing=timing)
        assert result.status == STATUS.OK and result.method_used == method
        with fits.open(out / result.details["filepath_lightcurve"]) as hdul:
            lc = hdul["LIGHTCURVE"].data
            headers[method] = hdul[0].header
        rows = np.searchsorted(spoc["CADENCENO"], lc["CADENCENO"])
        whole = np.asarray(spoc["SAP_FLUX"][rows], dtype=float) / fraction
        flux = np.asarray(lc["FLUX_RAW"], dtype=float)
        good = np.isfinite(flux) & np.isfinite(whole)
        assert good.mean() > 0.9
        ratios[method] = float(np.median(flux[good] / whole[good]))
    offset = headers["psf"]["PSF_DROW"], headers["psf"]["PSF_DCOL"]
    print(f"flux / (SAP_FLUX / FLFRCSAP): {ratios}; PSF offset {offset[0]:.3f}, {offset[1]:.3f} px")
    assert abs(ratios["psf"] - 1) < 0.02
    assert 0.8 < ratios["linpsf"] < ratios["psf"]
    assert -0.4 < offset[1] < -0.2 and abs(offset[0]) < 0.2


def _tpf_copy(tpf_run, test_data, folder: Path, **nan_columns: bool) -> Path:
    """The input folder of ``tpf_run`` with a copy of the TPF whose columns are set NaN."""
    shutil.copytree(tpf_run["folder"], folder, ignore=shutil.ignore_patterns("lc", "tpfs"))
    target = folder / "tpfs" / TPF_NAME
    target.parent.mkdir()
    with fits.open(test_data / "tpf" / "tess25155310-s01-first-cadences.fits.gz") as hdul:
        for name, nan in nan_columns.items():
            if nan:
                hdul["PIXELS"].data[name][:] = np.nan
        hdul.writeto(target)
    clear_cache()
    return target


def test_tpf_own_background_against_spoc(tpf_run, test_data, prf_dir):
    """Our background on the TPF's pixels (SPOC's FLUX + FLUX_BKG), against SPOC's FLUX_BKG,
    and uncertainties from the data against SPOC's FLUX_ERR."""
    path = tpf_run["folder"] / "tpfs" / "s01" / TPF_NAME
    clear_cache()
    choice = TPFBackground(method="fit", prf_dir=str(prf_dir))
    ours = TPFSource(path, tpf_run["folder"], 19.0, background=choice)
    spoc = TPFSource(path, tpf_run["folder"], 19.0)
    assert ours.background_record == {"method": "fit", "uncertainties": "spoc", "reason": "chosen"}
    assert spoc.background_record == {"method": "spoc", "uncertainties": "spoc"}
    sky = ours.cubes["backgrounds"][:, 5, 5]
    spoc_sky = spoc.cubes["backgrounds"][:, 5, 5]
    sky_err = np.sqrt(
        ours.cubes["images_err"][:, 0, 0] ** 2 - spoc.cubes["images_err"][:, 0, 0] ** 2
    )
    print(f"sky: ours {np.round(sky, 1)} +- {np.round(sky_err, 1)}, SPOC's {np.round(spoc_sky, 1)}")
    # The same pixels: ours and SPOC's images differ by the difference of the backgrounds.
    np.testing.assert_allclose(
        ours.cubes["images"] - spoc.cubes["images"],
        (spoc_sky - sky)[:, None, None] + np.zeros(ours.shape),
        atol=0.05,
    )
    # Sector 1's sky near WASP-126 is ~100 e-/s: the two agree within a few of our sigmas.
    assert np.all(np.abs(sky - spoc_sky) < 4 * sky_err + 2.0)
    # Uncertainties from the data (Poisson + read noise) against SPOC's FLUX_ERR.
    raw = spoc.tpf.flux + spoc.tpf.flux_bkg
    errors, source = data_uncertainties(spoc.tpf, raw)
    ratio = np.nanmedian(errors / spoc.tpf.flux_err)
    print(f"uncertainties from the data / SPOC's FLUX_ERR: {ratio:.3f} ({source})")
    assert source.startswith("Poisson + read noise (READNOI* header, 48 reads)")
    assert 0.9 < ratio < 1.1


def test_tpf_with_nan_background_and_errors(tpf_run, test_data, tmp_path, timing, caplog):
    """SPOC's NaN FLUX_BKG and FLUX_ERR (its brightest stars): our background and
    uncertainties from the data, a warning, and the header says so."""
    folder = tmp_path / "input"
    _tpf_copy(tpf_run, test_data, folder, FLUX_ERR=True, FLUX_BKG=True)
    report = run_photometry(folder, folder / "lc", run_all=True, overwrite=True, timing=timing)
    assert report.failed == 0
    assert "SPOC's FLUX_BKG is NaN" in caplog.text and "Poisson + read noise" in caplog.text
    diagnostics = {d["priority"]: d for d in _rows(folder / "todo.sqlite", "diagnostics")}
    with fits.open(folder / diagnostics[1]["lightcurve"]) as hdul:
        lc = hdul["LIGHTCURVE"].data
        recorded = settings_from_header(hdul[0].header)
    assert recorded["background.method"] == "fit"
    assert recorded["background.reason"] == "SPOC's FLUX_BKG is NaN"
    assert recorded["background.uncertainties"].startswith("Poisson + read noise")
    assert np.isfinite(lc["FLUX_RAW"]).all() and np.isfinite(lc["FLUX_RAW_ERR"]).all()
    # The flux: at most the star's whole flux (SAP_FLUX / FLFRCSAP), most of it.
    with fits.open(test_data / "lightcurves" / SPOC_LC) as hdul:
        spoc = hdul["LIGHTCURVE"].data
        whole = spoc["SAP_FLUX"][np.searchsorted(spoc["CADENCENO"], lc["CADENCENO"])]
        whole = whole / hdul[1].header["FLFRCSAP"]
    ratio = lc["FLUX_RAW"] / whole
    print(f"flux with our background and uncertainties / whole flux: {np.round(ratio, 4)}")
    assert np.all((ratio > 0.9) & (ratio < 1.03))


def test_tpf_without_any_usable_pixel_is_one_error(tpf_run, test_data, tmp_path, timing):
    """A TPF whose FLUX is NaN as well: one clear ERROR naming the file."""
    folder = tmp_path / "input"
    _tpf_copy(tpf_run, test_data, folder, FLUX=True, FLUX_ERR=True, FLUX_BKG=True)
    report = run_photometry(folder, folder / "lc", run_all=True, overwrite=True, timing=timing)
    assert report.counts.get("ERROR") == 3
    message = report.results[0][4]
    assert TPF_NAME in message and "FLUX is NaN on every collected pixel" in message


def test_tpf_too_small_for_our_background_is_one_error(tpf_run):
    """Our background asked for on a TPF with too few pixels for it: one clear error."""
    clear_cache()
    choice = TPFBackground(method="fit", settings=BackgroundSettings(fit_pixels_per_parameter=500))
    path = tpf_run["folder"] / "tpfs" / "s01" / TPF_NAME
    with pytest.raises(SourceError, match=r"no background can be estimated: .* \(121 collected\)"):
        TPFSource(path, tpf_run["folder"], 19.0, background=choice)


#: The tall TPF: rows, the saturated target's Tmag, the sky [e-/s/px].
TALL_ROWS, TALL_TMAG, TALL_SKY = 61, 5.0, 100.0


def _tall_tpf(test_data, prf_dir, path: Path) -> tuple[float, float]:
    """A tall TPF (61 x 11 px) of a saturated Tmag-5 star with its bleed columns, built on
    the real TPF's headers, with SPOC's NaN FLUX_BKG and FLUX_ERR; the star's RA, Dec."""
    from tessphot.constants import tmag_to_flux
    from tessphot.evaluation.simulate.detector import saturate
    from tessphot.prf import load_prf

    with fits.open(test_data / "tpf" / "tess25155310-s01-first-cadences.fits.gz") as hdul:
        primary, table, aperture = (hdu.copy() for hdu in hdul[:3])
    shift = (TALL_ROWS - 11) // 2
    aperture.header["CRVAL2P"] -= shift
    aperture.header["CRPIX2"] += shift
    origin = (aperture.header["CRVAL2P"] - 1, aperture.header["CRVAL1P"] - 45)
    shape = (TALL_ROWS, 11)
    row, col = origin[0] + TALL_ROWS // 2 + 0.2, origin[1] + 5.4
    prf = load_prf(prf_dir, 1, 4, 1)
    rate = prf.render([row], [col], [tmag_to_flux(TALL_TMAG)], shape, origin) + TALL_SKY
    rng = np.random.default_rng(11)
    n = len(table.data)
    flux = np.array([saturate(rate) + rng.normal(0, 2.0, shape) for _ in range(n)], "f4")
    nan = np.full_like(flux, np.nan)
    dim = f"({shape[1]},{shape[0]})"
    fmt = f"{shape[0] * shape[1]}E"
    columns = [table.columns[name] for name in ("TIME", "TIMECORR", "CADENCENO")]
    columns += [
        fits.Column(name=name, format=fmt, unit="e-/s", dim=dim, array=array)
        for name, array in (("FLUX", flux), ("FLUX_ERR", nan), ("FLUX_BKG", nan))
    ]
    columns += [table.columns[name] for name in ("QUALITY", "POS_CORR1", "POS_CORR2")]
    pixels = fits.BinTableHDU.from_columns(columns, header=table.header, name="PIXELS")
    aperture.data = np.full(shape, 257, dtype=np.int32)
    fits.HDUList([primary, pixels, aperture]).writeto(path)
    tpf = read_tpf(path)
    ra, dec = tpf.wcs.all_pix2world([[col - origin[1], row - origin[0]]], 0)[0]
    return float(ra), float(dec)


def test_tall_tpf_of_a_saturated_star(test_data, prf_dir, tmp_path, timing):
    """A saturated star in a tall TPF (SPOC's NaN background and uncertainties): the
    aperture holds the whole bleed, the sky is ours, the flux is the star's."""
    from tessphot.constants import tmag_to_flux

    folder = tmp_path / "tall"
    folder.mkdir()
    ra, dec = _tall_tpf(test_data, prf_dir, folder / TPF_NAME)
    _catalog(folder, [f"{TIC},{ra:.7f},{dec:.7f},0,0,{TALL_TMAG},5800"], [4], [1])
    make_todo(folder, overwrite=True)
    clear_cache()
    settings = {"prf_dir": str(prf_dir)}
    report = run_photometry(folder, folder / "lc", run_all=True, timing=timing, settings=settings)
    assert report.failed == 0
    diagnostics = _rows(folder / "todo.sqlite", "diagnostics")
    with fits.open(folder / diagnostics[0]["lightcurve"]) as hdul:
        lc = hdul["LIGHTCURVE"].data
        recorded = settings_from_header(hdul[0].header)
        aperture = hdul["APERTURE"].data
    ratio = lc["FLUX_RAW"] / tmag_to_flux(TALL_TMAG)
    bleed_rows = np.flatnonzero(((aperture & 2) > 0).any(axis=1))
    print(
        f"tall TPF, Tmag {TALL_TMAG}: flux / true {np.round(ratio, 4)}, aperture rows "
        f"{bleed_rows.min()}-{bleed_rows.max()} of {TALL_ROWS}, {recorded['background.method']}"
    )
    assert recorded["background.method"] == "fit"
    # The bleed is all in (rows 23-38 here); the PRF model's light beyond the 11 columns
    # is < 0.1 %; the noise of the sum is ~50 e-/s of 1.5e6.
    assert np.all(np.abs(ratio - 1) < 0.005)
    assert bleed_rows.min() > 0 and bleed_rows.max() < TALL_ROWS - 1
