"""The TPF reader on the real TPF of TIC 25155310 (WASP-126), and its errors."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
from astropy.io import fits

from tessphot.io.tpf import TPFError, find_tpfs, parse_tpf_name, read_tpf

#: The real TPF under a SPOC file name (the shared copy has a short name).
SPOC_NAME = "tess2018206045859-s0001-0000000025155310-0120-s_tp.fits.gz"
LC_NAME = "tess2018206045859-s0001-0000000025155310-0120-s_lc.fits.gz"


@pytest.fixture(scope="module")
def real_tpf(test_data):
    return test_data / "tpf" / "tess25155310-s01-first-cadences.fits.gz"


@pytest.fixture(scope="module")
def spoc_lightcurve(test_data):
    with fits.open(test_data / "lightcurves" / LC_NAME) as hdul:
        data = hdul["LIGHTCURVE"].data
        return {name: np.asarray(data[name]) for name in ("CADENCENO", "SAP_FLUX", "SAP_BKG")}


def test_names():
    assert parse_tpf_name(SPOC_NAME) == (25155310, 1, 120)
    assert parse_tpf_name("tess2020238165205-s0029-0000000025155310-0193-s_fast-tp.fits") == (
        25155310,
        29,
        20,
    )
    assert parse_tpf_name("hlsp_tess-data-alerts_tess_phot_00025155310-s01_tess_v1_tp.fits") == (
        25155310,
        1,
        120,
    )
    assert parse_tpf_name("tess2018206045859-s0001-0000000025155310-0120-s_lc.fits") is None
    assert parse_tpf_name("tess2018206192942-s0001-1-4-0120-s_ffic.fits") is None


def test_find_anywhere_below(real_tpf, tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    shutil.copy(real_tpf, tmp_path / "a" / "b" / SPOC_NAME)
    fast = "tess2018206045859-s0001-0000000025155310-0120-s_fast-tp.fits.gz"
    shutil.copy(real_tpf, tmp_path / "a" / fast)
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in find_tpfs(tmp_path)] == [fast, SPOC_NAME]  # sorted by name
    # The headers, not the name, say the cadence: a 2-min TPF named like a 20-s one is 2-min.
    assert find_tpfs(tmp_path, cadence=20) == []
    assert len(find_tpfs(tmp_path, cadence=120)) == 2
    assert find_tpfs(tmp_path, sector=2) == []
    assert len(find_tpfs(tmp_path, starid=25155310, sector=1)) == 2


def test_read_real_tpf(real_tpf):
    tpf = read_tpf(real_tpf)
    assert (tpf.starid, tpf.sector, tpf.camera, tpf.ccd, tpf.cadence) == (25155310, 1, 4, 1, 120)
    assert tpf.shape == (11, 11) and tpf.flux.shape == (5, 11, 11)
    # APERTURE CRVAL1P = 1619, CRVAL2P = 389 (1-based CCD column, row).
    assert tpf.origin == (388, 1574)
    assert tpf.cadenceno.tolist() == [70444, 70445, 70446, 70447, 70448]
    assert tpf.quality.tolist() == [8, 0, 0, 0, 0]
    assert tpf.optimal_aperture.sum() == tpf.aperture_header["NPIXSAP"] == 9
    assert tpf.collected.all()
    assert tpf.header["TMOFST41"] == 1.0 and "TTYPE1" not in tpf.header
    # The target (RA_OBJ/DEC_OBJ of the PIXELS header) is near the middle of the pixels.
    x, y = tpf.wcs.all_world2pix(tpf.header["RA_OBJ"], tpf.header["DEC_OBJ"], 0)
    assert 4 < x < 6 and 4 < y < 6
    header_only = read_tpf(real_tpf, pixels=False)
    assert header_only.flux is None and header_only.aperture.shape == (11, 11)


def test_spoc_aperture_reproduces_sap_flux_and_background(real_tpf, spoc_lightcurve):
    """Summing FLUX and FLUX_BKG over SPOC's optimal aperture gives SAP_FLUX and SAP_BKG."""
    tpf = read_tpf(real_tpf)
    rows = np.searchsorted(spoc_lightcurve["CADENCENO"], tpf.cadenceno)
    mask = tpf.optimal_aperture
    flux = tpf.flux[:, mask].astype(np.float64).sum(axis=1)
    background = tpf.flux_bkg[:, mask].astype(np.float64).sum(axis=1)
    sap, sap_bkg = spoc_lightcurve["SAP_FLUX"][rows], spoc_lightcurve["SAP_BKG"][rows]
    print("SAP_FLUX relative difference:", (flux / sap - 1))
    print("SAP_BKG relative difference:", (background / sap_bkg - 1))
    np.testing.assert_allclose(flux, sap, rtol=2e-7)
    np.testing.assert_allclose(background, sap_bkg, rtol=2e-7)


def _modified(real_tpf, tmp_path, change) -> str:
    with fits.open(real_tpf) as hdul:
        hdul = fits.HDUList([hdu.copy() for hdu in hdul])
        change(hdul)
        path = tmp_path / SPOC_NAME.replace(".gz", "")
        hdul.writeto(path, overwrite=True)
    return path


def test_errors_name_file_and_problem(real_tpf, tmp_path):
    with pytest.raises(TPFError, match="file not found"):
        read_tpf(tmp_path / "missing_tp.fits")
    junk = tmp_path / "junk_tp.fits"
    junk.write_bytes(b"not a fits file at all" * 200)
    with pytest.raises(TPFError, match=str(junk)):
        read_tpf(junk)
    truncated = tmp_path / "truncated_tp.fits.gz"
    truncated.write_bytes(real_tpf.read_bytes()[:4000])
    with pytest.raises(TPFError, match="truncated: the gzip stream is cut short"):
        read_tpf(truncated)
    path = _modified(real_tpf, tmp_path, lambda h: h.pop(2))
    with pytest.raises(TPFError, match="target pixel file of TIC 25155310 without its APERTURE"):
        read_tpf(path)

    def fast_but_wrong(hdul):
        hdul[1].header["TIMEDEL"] = 600 / 86400

    with pytest.raises(TPFError, match="invalid cadence 600 s"):
        read_tpf(_modified(real_tpf, tmp_path, fast_but_wrong))

    def no_camera(hdul):
        del hdul[0].header["CAMERA"]

    with pytest.raises(TPFError, match="CAMERA"):
        read_tpf(_modified(real_tpf, tmp_path, no_camera))
    # An FFI is not a TPF.
    ffi = tmp_path / "ffi.fits"
    with gzip.open(real_tpf) as src:
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((3, 3)))]).writeto(ffi)
        assert src.read(10)
    with pytest.raises(TPFError, match="not a target pixel file: not a TESS product"):
        read_tpf(ffi)
