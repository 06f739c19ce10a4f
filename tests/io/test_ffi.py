"""Tests of the FFI reader on the real cropped sector-1 FFI and variants built from it."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from tessphot.constants import (
    FIRST_SCIENCE_CCD_COLUMN,
    FIRST_SCIENCE_CCD_ROW,
    SCIENCE_COLUMN_OFFSET,
)
from tessphot.io import FFIError, FFIImage, TessphotError, read_ffi, read_ffi_header

#: Shape of the real crop's image HDU and of its science part.
HDU_SHAPE = (128, 173)
SCIENCE_SHAPE = (128, HDU_SHAPE[1] - SCIENCE_COLUMN_OFFSET)
#: Width of the real crop's uncertainty HDU: CCD columns 1-128 (see ffi_geometry.place_uncertainty).
UNCERTAINTY_WIDTH = 128
#: Science columns of the real crop that have an uncertainty.
N_UNCERTAIN_COLUMNS = UNCERTAINTY_WIDTH - SCIENCE_COLUMN_OFFSET
#: Image-HDU values of the real crop.
TSTART_BTJD = 1325.318778691997
TSTOP_BTJD = 1325.339612017777
BARYCORR_DAYS = 5.6780875e-03
EXPOSURE_DAYS = 0.016499994018
#: Effective exposure [s] and reads per FFI of sector 1, for the uncertainty model.
EXPOSURE_SECONDS = 0.792 * 1800
N_READS = 720
#: Pixel-position tolerance of the WCS comparisons [pixels].
PIXEL_TOL = 1e-6


def _rewrite(src: Path, dst: Path, edit: Callable[[fits.HDUList], None]) -> Path:
    """Copy a FITS file, applying ``edit`` to an in-memory copy of its HDUs."""
    with fits.open(src, memmap=False) as hdul:
        hdus = fits.HDUList(
            [fits.PrimaryHDU(header=hdul[0].header.copy())]
            + [fits.ImageHDU(data=hdu.data.copy(), header=hdu.header.copy()) for hdu in hdul[1:]]
        )
    edit(hdus)
    dst.parent.mkdir(parents=True, exist_ok=True)
    hdus.writeto(dst)
    return dst


def _variant(real_ffi: Path, tmp_path: Path, edit: Callable[[fits.HDUList], None]) -> Path:
    """A modified copy of the real FFI with the same (SPOC-style) file name."""
    return _rewrite(real_ffi, tmp_path / "variant" / real_ffi.name, edit)


def _crop(hdus: fits.HDUList, rows: slice, cols: slice, indices=(1, 2)) -> None:
    """Crop image HDUs like a cutout tool: data, physical WCS and celestial CRPIX."""
    for index in indices:
        hdu = hdus[index]
        hdu.data = hdu.data[rows, cols].copy()
        hdu.header["CRVAL1P"] += cols.start
        hdu.header["CRVAL2P"] += rows.start
        hdu.header["CRPIX1"] -= cols.start
        hdu.header["CRPIX2"] -= rows.start


@pytest.fixture(scope="module")
def image(real_ffi: Path) -> FFIImage:
    return read_ffi(real_ffi)


@pytest.fixture(scope="module")
def full_wcs(real_ffi: Path) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(fits.getheader(real_ffi, 1))


# ------------------------------------------------------------------------------------------
# The real file


def test_shapes_and_types(image: FFIImage, real_ffi: Path):
    assert fits.getdata(real_ffi, 1).shape == HDU_SHAPE
    assert image.data.shape == SCIENCE_SHAPE
    assert image.uncertainty.shape == SCIENCE_SHAPE
    assert image.shape == SCIENCE_SHAPE
    assert image.data.dtype == np.float32
    assert image.uncertainty.dtype == np.float32
    assert image.data.dtype.isnative
    assert image.path == real_ffi


def test_origin(image: FFIImage):
    assert image.origin == (0, 0)
    assert image.ccd_origin == (FIRST_SCIENCE_CCD_ROW, FIRST_SCIENCE_CCD_COLUMN)
    assert image.ccd_origin == (1, 45)


def test_data_is_science_part_of_hdu(image: FFIImage, real_ffi: Path):
    expected = fits.getdata(real_ffi, 1)[:, SCIENCE_COLUMN_OFFSET:]
    np.testing.assert_array_equal(image.data, expected)


def test_keywords(image: FFIImage, real_ffi: Path):
    assert "SECTOR" not in fits.getheader(real_ffi, 0)
    assert "SECTOR" not in fits.getheader(real_ffi, 1)
    assert image.sector == 1  # from the file name
    assert image.camera == 1
    assert image.ccd == 4
    assert image.tstart == pytest.approx(TSTART_BTJD, abs=1e-12)
    assert image.tstop == pytest.approx(TSTOP_BTJD, abs=1e-12)
    assert image.time_mid == pytest.approx(0.5 * (TSTART_BTJD + TSTOP_BTJD), abs=1e-12)
    assert image.barycorr == pytest.approx(BARYCORR_DAYS)
    assert image.exposure == pytest.approx(EXPOSURE_DAYS)
    assert image.quality == 0
    assert image.cadenceno is None  # sector 1 FFIs have no FFIINDEX
    assert image.data_rel == 1
    assert image.procver == "spoc-3.3.31-20180902"


def test_header_is_merged_with_image_values_winning(image: FFIImage, real_ffi: Path):
    primary = fits.getheader(real_ffi, 0)
    assert primary["TSTART"] != pytest.approx(TSTART_BTJD, abs=1e-6)  # TJD, not BTJD
    assert image.header["TSTART"] == TSTART_BTJD  # the image HDU's value
    assert image.header["ORIGIN"] == "NASA/Ames"  # primary only
    assert image.header["DATA_REL"] == 1  # primary only
    assert image.header["BARYCORR"] == pytest.approx(BARYCORR_DAYS)  # image only
    for keyword in ("NAXIS", "NAXIS1", "BITPIX", "XTENSION", "SIMPLE", "CHECKSUM"):
        assert keyword not in image.header


def test_read_ffi_header(image: FFIImage, real_ffi: Path):
    header = read_ffi_header(real_ffi)
    assert header["CAMERA"] == 1
    assert header["TSTART"] == TSTART_BTJD
    assert list(header.keys()) == list(image.header.keys())
    with pytest.raises(FFIError, match="not found"):
        read_ffi_header(real_ffi.parent / "missing_ffic.fits")


def test_wcs_agrees_with_full_hdu_wcs(image: FFIImage, full_wcs: WCS):
    assert image.wcs.sip is not None  # SIP kept
    assert image.wcs.naxis == 2
    assert image.wcs.pixel_shape == (SCIENCE_SHAPE[1], SCIENCE_SHAPE[0])
    ny, nx = image.shape
    rows = np.array([0, 0, ny - 1, ny - 1, 0.5, 37.25, 64, 100.7, -0.5, ny - 0.5])
    cols = np.array([0, nx - 1, 0, nx - 1, 0.5, 12.75, 64, 3.3, -0.5, nx - 0.5])
    ra, dec = image.wcs.pixel_to_world_values(cols, rows)
    ra_full, dec_full = full_wcs.pixel_to_world_values(cols + SCIENCE_COLUMN_OFFSET, rows)
    # The same sky position through both WCSs lands on the same physical pixel.
    x_full, y_full = full_wcs.world_to_pixel_values(ra, dec)
    np.testing.assert_allclose(x_full, cols + SCIENCE_COLUMN_OFFSET, atol=PIXEL_TOL, rtol=0)
    np.testing.assert_allclose(y_full, rows, atol=PIXEL_TOL, rtol=0)
    x, y = image.wcs.world_to_pixel_values(ra_full, dec_full)
    np.testing.assert_allclose(x, cols, atol=PIXEL_TOL, rtol=0)
    np.testing.assert_allclose(y, rows, atol=PIXEL_TOL, rtol=0)


def test_wcs_sip_is_significant(image: FFIImage):
    # Guard against a silently dropped SIP: across the crop, the SIP moves pixels noticeably.
    no_sip = image.wcs.deepcopy()
    no_sip.sip = None
    ra, dec = image.wcs.pixel_to_world_values(np.array([0.0]), np.array([0.0]))
    x, y = no_sip.world_to_pixel_values(ra, dec)
    assert np.hypot(x[0], y[0]) > 1.0


def test_uncertainty_alignment(image: FFIImage, real_ffi: Path):
    unc = image.uncertainty
    covered = np.isfinite(unc)
    # Uncertainty HDU = CCD columns 1-128 = science columns 0-83; the rest has none.
    assert covered[:, :N_UNCERTAIN_COLUMNS].all()
    assert not covered[:, N_UNCERTAIN_COLUMNS:].any()
    np.testing.assert_array_equal(
        unc[:, :N_UNCERTAIN_COLUMNS],
        fits.getdata(real_ffi, 2)[:, SCIENCE_COLUMN_OFFSET:UNCERTAINTY_WIDTH],
    )
    flux = image.data[:, :N_UNCERTAIN_COLUMNS].astype(float)
    sigma = unc[:, :N_UNCERTAIN_COLUMNS].astype(float)
    assert (sigma > 0).all()
    # Poisson + read noise model: the real uncertainties follow it pixel by pixel.
    read_noise = fits.getheader(real_ffi, 1)["READNOIA"]
    model = np.sqrt(np.clip(flux, 0, None) * EXPOSURE_SECONDS + N_READS * read_noise**2)
    model /= EXPOSURE_SECONDS
    assert np.corrcoef(model.ravel(), sigma.ravel())[0, 1] > 0.999
    assert np.median(sigma / model) == pytest.approx(1.0, abs=0.1)
    # Correlated with sqrt(flux) in particular.
    assert np.corrcoef(np.sqrt(np.clip(flux, 0, None)).ravel(), sigma.ravel())[0, 1] > 0.99


def test_no_open_file_handles(real_ffi: Path):
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("needs /proc/self/fd")
    before = len(os.listdir(fd_dir))
    read_ffi(real_ffi)
    read_ffi_header(real_ffi)
    assert len(os.listdir(fd_dir)) == before


# ------------------------------------------------------------------------------------------
# Variants: cropping, compression, uncertainty placement


def test_further_cropped_region(image: FFIImage, real_ffi: Path, tmp_path: Path):
    rows, cols = slice(10, 60), slice(60, 120)
    path = _variant(real_ffi, tmp_path, lambda h: _crop(h, rows, cols))
    crop = read_ffi(path)
    expected_origin = (rows.start, cols.start - SCIENCE_COLUMN_OFFSET)
    assert expected_origin == (10, 16)
    assert crop.origin == expected_origin
    assert crop.ccd_origin == (11, 61)
    r0, c0 = expected_origin
    ny, nx = rows.stop - rows.start, cols.stop - cols.start
    assert crop.shape == (ny, nx)
    np.testing.assert_array_equal(crop.data, image.data[r0 : r0 + ny, c0 : c0 + nx])
    np.testing.assert_array_equal(crop.uncertainty, image.uncertainty[r0 : r0 + ny, c0 : c0 + nx])
    # Every pixel sees the same sky as the corresponding pixel of the original.
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    ra, dec = crop.wcs.pixel_to_world_values(x.ravel(), y.ravel())
    ra0, dec0 = image.wcs.pixel_to_world_values(x.ravel() + c0, y.ravel() + r0)
    np.testing.assert_allclose(ra, ra0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(dec, dec0, rtol=0, atol=1e-9)


def test_crop_including_collateral_columns(image: FFIImage, real_ffi: Path, tmp_path: Path):
    rows, cols = slice(5, 40), slice(30, 100)
    path = _variant(real_ffi, tmp_path, lambda h: _crop(h, rows, cols))
    crop = read_ffi(path)
    n_science = cols.stop - SCIENCE_COLUMN_OFFSET
    assert crop.origin == (rows.start, 0)
    assert crop.shape == (rows.stop - rows.start, n_science)
    np.testing.assert_array_equal(crop.data, image.data[rows, :n_science])
    np.testing.assert_array_equal(crop.uncertainty, image.uncertainty[rows, :n_science])
    ra, dec = crop.wcs.pixel_to_world_values([0.0, n_science - 1.0], [0.0, 0.0])
    ra0, dec0 = image.wcs.pixel_to_world_values([0.0, n_science - 1.0], [rows.start] * 2)
    np.testing.assert_allclose([ra, dec], [ra0, dec0], rtol=0, atol=1e-9)


def test_gzipped_copy(image: FFIImage, real_ffi: Path, tmp_path: Path):
    path = tmp_path / (real_ffi.name + ".gz")
    path.write_bytes(gzip.compress(real_ffi.read_bytes()))
    gz = read_ffi(path)
    np.testing.assert_array_equal(gz.data, image.data)
    np.testing.assert_array_equal(gz.uncertainty, image.uncertainty)
    assert gz.sector == 1
    assert gz.tstart == image.tstart
    assert read_ffi_header(path)["CCD"] == 4


def test_uncertainty_same_shape_as_image_without_physical_wcs(real_ffi: Path, tmp_path: Path):
    sigma = np.arange(np.prod(HDU_SHAPE), dtype=np.float32).reshape(HDU_SHAPE)

    def edit(hdus):
        hdus[2].data = sigma
        for key in ("CRVAL1P", "CRVAL2P", "CRPIX1P", "CRPIX2P"):
            del hdus[2].header[key]

    result = read_ffi(_variant(real_ffi, tmp_path, edit))
    np.testing.assert_array_equal(result.uncertainty, sigma[:, SCIENCE_COLUMN_OFFSET:])


def test_uncertainty_shaped_as_science_region(real_ffi: Path, tmp_path: Path):
    sigma = np.arange(np.prod(SCIENCE_SHAPE), dtype=np.float32).reshape(SCIENCE_SHAPE)

    def edit(hdus):
        hdus[2].data = sigma
        for key in ("CRVAL1P", "CRVAL2P"):
            del hdus[2].header[key]

    result = read_ffi(_variant(real_ffi, tmp_path, edit))
    np.testing.assert_array_equal(result.uncertainty, sigma)


def test_uncertainty_by_its_own_physical_wcs(real_ffi: Path, tmp_path: Path):
    # A 20x30 uncertainty patch at CCD row 5, column 100 (science row 4, column 55).
    sigma = np.ones((20, 30), dtype=np.float32)

    def edit(hdus):
        hdus[2].data = sigma
        hdus[2].header["CRVAL1P"] = 100
        hdus[2].header["CRVAL2P"] = 5

    result = read_ffi(_variant(real_ffi, tmp_path, edit))
    expected = np.full(SCIENCE_SHAPE, np.nan, dtype=np.float32)
    expected[4:24, 55:85] = 1
    np.testing.assert_array_equal(result.uncertainty, expected)


def test_unplaceable_uncertainty_warns(real_ffi: Path, tmp_path: Path):
    def edit(hdus):
        hdus[2].header["CRVAL1P"] = 1500  # nowhere near the image

    with pytest.warns(UserWarning, match="cannot place the uncertainty"):
        result = read_ffi(_variant(real_ffi, tmp_path, edit))
    assert np.isnan(result.uncertainty).all()
    assert np.isfinite(result.data).all()


def test_missing_uncertainty_hdu_warns(real_ffi: Path, tmp_path: Path):
    def edit(hdus):
        del hdus[2]
        hdus[0].header["NEXTEND"] = 1

    with pytest.warns(UserWarning, match="no uncertainty image"):
        result = read_ffi(_variant(real_ffi, tmp_path, edit))
    assert result.uncertainty.shape == result.data.shape
    assert np.isnan(result.uncertainty).all()


def test_optional_keywords_from_header(real_ffi: Path, tmp_path: Path):
    def edit(hdus):
        hdus[0].header["SECTOR"] = 7
        hdus[0].header["FFIINDEX"] = 4711
        hdus[1].header["DQUALITY"] = 32
        for key in ("BARYCORR", "EXPOSURE"):
            del hdus[1].header[key]
        del hdus[0].header["DATA_REL"]

    result = read_ffi(_variant(real_ffi, tmp_path, edit))
    assert result.sector == 7  # the header wins over the file name
    assert result.cadenceno == 4711
    assert result.quality == 32
    assert result.barycorr is None
    assert result.exposure is None
    assert result.data_rel is None


def test_quality_defaults_to_zero(real_ffi: Path, tmp_path: Path):
    def edit(hdus):
        del hdus[1].header["DQUALITY"]

    assert read_ffi(_variant(real_ffi, tmp_path, edit)).quality == 0


# ------------------------------------------------------------------------------------------
# Errors


def _assert_ffi_error(path: Path, match: str) -> FFIError:
    with pytest.raises(FFIError, match=match) as info:
        read_ffi(path)
    assert path.name in str(info.value)
    assert str(info.value).startswith(f"{path}: ")
    return info.value


def test_error_is_tessphot_error_and_pickles(tmp_path: Path):
    error = FFIError(tmp_path / "x.fits", "broken")
    assert isinstance(error, TessphotError)
    assert str(error) == f"{tmp_path / 'x.fits'}: broken"
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error)
    assert copy.problem == "broken"


def test_missing_file(tmp_path: Path):
    _assert_ffi_error(tmp_path / "tess2018206192942-s0001-1-4-0120-s_ffic.fits", "not found")


def test_folder_instead_of_file(tmp_path: Path):
    _assert_ffi_error(tmp_path, "folder")


@pytest.mark.parametrize("fraction", [0.5, 0.02, 0.9, 0.999])
def test_truncated_file(real_ffi: Path, tmp_path: Path, fraction: float):
    raw = real_ffi.read_bytes()
    path = tmp_path / real_ffi.name
    path.write_bytes(raw[: int(len(raw) * fraction)])
    _assert_ffi_error(path, "truncated or corrupt")


def test_file_cut_between_hdus(real_ffi: Path, tmp_path: Path):
    with fits.open(real_ffi) as hdul:
        end_of_image_hdu = hdul.fileinfo(1)["datLoc"] + hdul.fileinfo(1)["datSpan"]
    path = tmp_path / real_ffi.name
    path.write_bytes(real_ffi.read_bytes()[:end_of_image_hdu])
    _assert_ffi_error(path, "NEXTEND")


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.01])
def test_truncated_gzip(real_ffi: Path, tmp_path: Path, fraction: float):
    compressed = gzip.compress(real_ffi.read_bytes())
    path = tmp_path / (real_ffi.name + ".gz")
    path.write_bytes(compressed[: int(len(compressed) * fraction)])
    _assert_ffi_error(path, "truncated or corrupt")


def test_corrupt_gzip(real_ffi: Path, tmp_path: Path):
    compressed = bytearray(gzip.compress(real_ffi.read_bytes()))
    compressed[len(compressed) // 2 :] = b"\0" * (len(compressed) - len(compressed) // 2)
    path = tmp_path / (real_ffi.name + ".gz")
    path.write_bytes(bytes(compressed))
    _assert_ffi_error(path, "corrupt")


def test_garbled_gzip_stream(real_ffi: Path, tmp_path: Path):
    # Flipped bits inside the deflate stream: ISA-L raises an error of its own.
    compressed = bytearray(gzip.compress(real_ffi.read_bytes()))
    middle = len(compressed) // 2
    compressed[middle : middle + 64] = bytes(b ^ 0x55 for b in compressed[middle : middle + 64])
    path = tmp_path / (real_ffi.name + ".gz")
    path.write_bytes(bytes(compressed))
    _assert_ffi_error(path, "corrupt")


def test_text_file(tmp_path: Path):
    path = tmp_path / "notes_ffic.fits"
    path.write_text("this is not a FITS file\n" * 200)
    _assert_ffi_error(path, "not a valid FITS file")


def test_empty_file(tmp_path: Path):
    path = tmp_path / "empty_ffic.fits"
    path.write_bytes(b"")
    _assert_ffi_error(path, "not a valid FITS file")


def test_primary_hdu_only(real_ffi: Path, tmp_path: Path):
    def edit(hdus):
        del hdus[1:]
        hdus[0].header["NEXTEND"] = 0

    _assert_ffi_error(_variant(real_ffi, tmp_path, edit), "no image extension")


def test_primary_hdu_only_read_header(real_ffi: Path, tmp_path: Path):
    path = _variant(real_ffi, tmp_path, lambda hdus: hdus.__delitem__(slice(1, None)))
    with pytest.raises(FFIError, match="no image extension"):
        read_ffi_header(path)


@pytest.mark.parametrize("keyword", ["TSTART", "TSTOP"])
def test_missing_time_keyword(real_ffi: Path, tmp_path: Path, keyword: str):
    # Only the image HDU's value counts: the primary's is spacecraft time, not BTJD.
    def edit(hdus):
        del hdus[1].header[keyword]

    assert keyword in fits.getheader(real_ffi, 0)
    _assert_ffi_error(_variant(real_ffi, tmp_path, edit), keyword)


@pytest.mark.parametrize("keyword", ["CAMERA", "CCD"])
def test_missing_camera_or_ccd(real_ffi: Path, tmp_path: Path, keyword: str):
    def edit(hdus):
        for hdu in hdus:
            hdu.header.remove(keyword, ignore_missing=True)

    _assert_ffi_error(_variant(real_ffi, tmp_path, edit), keyword)


def test_no_wcs(real_ffi: Path, tmp_path: Path):
    def edit(hdus):
        for key in ("CTYPE1", "CTYPE2"):
            del hdus[1].header[key]

    _assert_ffi_error(_variant(real_ffi, tmp_path, edit), "WCS")


def test_linear_wcs_is_not_celestial(real_ffi: Path, tmp_path: Path):
    def edit(hdus):
        header = hdus[1].header
        header["CTYPE1"] = "LINEAR"
        header["CTYPE2"] = "LINEAR"
        for key in list(header.keys()):
            if key.startswith(("A_", "B_", "AP_", "BP_")):
                del header[key]

    _assert_ffi_error(_variant(real_ffi, tmp_path, edit), "no celestial WCS")


def test_image_not_2d(real_ffi: Path, tmp_path: Path):
    def edit(hdus):
        hdus[1].data = np.stack([hdus[1].data, hdus[1].data])

    _assert_ffi_error(_variant(real_ffi, tmp_path, edit), "not a 2-D image")


def test_image_outside_science_area(real_ffi: Path, tmp_path: Path):
    def edit(hdus):
        hdus[1].header["CRVAL2P"] = 2049  # buffer/smear/virtual rows only

    _assert_ffi_error(_variant(real_ffi, tmp_path, edit), "science area")


def test_collateral_columns_only(real_ffi: Path, tmp_path: Path):
    path = _variant(
        real_ffi, tmp_path, lambda h: _crop(h, slice(0, 50), slice(0, SCIENCE_COLUMN_OFFSET))
    )
    _assert_ffi_error(path, "science area")


def test_no_sector_anywhere(real_ffi: Path, tmp_path: Path):
    path = _rewrite(real_ffi, tmp_path / "renamed.fits", lambda hdus: None)
    _assert_ffi_error(path, "SECTOR")


def test_copy_of_real_file_reads_identically(image: FFIImage, real_ffi: Path, tmp_path: Path):
    path = tmp_path / "sub" / real_ffi.name
    path.parent.mkdir()
    shutil.copy(real_ffi, path)
    copy = read_ffi(path)
    np.testing.assert_array_equal(copy.data, image.data)
    assert copy.path == path


def test_only_astropy_remarks_count_as_header_remarks(tmp_path, caplog):
    """A warning raised while a file is read but not about it (the garbage collector closing
    another file, a numpy remark) is not reported as the header's."""
    import logging

    from astropy.io.fits.verify import VerifyWarning

    from tessphot.io.ffi_load import _report_warnings

    def caught(category, text):
        return warnings.WarningMessage(text, category, "x.py", 1)

    path = tmp_path / "frame.fits"
    with caplog.at_level(logging.WARNING, logger="tessphot"):
        _report_warnings(path, [caught(ResourceWarning, "unclosed file <_io.BufferedReader>")])
        _report_warnings(path, [caught(RuntimeWarning, "invalid value")])
        assert not caplog.records
        _report_warnings(path, [caught(VerifyWarning, "Card 'X' is not FITS standard")])
    assert len(caplog.records) == 1 and "not FITS standard" in caplog.records[0].getMessage()


def test_read_gzipped_streams_exactly(tmp_path: Path):
    """One pass into a buffer of the trailer's size; several members read on; a stream cut
    short raises a gzip error."""
    import gzip

    from tessphot.io.fits_headers import GZIP_ERRORS, read_gzipped

    content = np.random.default_rng(1).bytes(300_000)
    one = tmp_path / "one.gz"
    one.write_bytes(gzip.compress(content))
    assert read_gzipped(one) == content
    two = tmp_path / "two.gz"
    two.write_bytes(gzip.compress(content) + gzip.compress(b"more"))
    assert read_gzipped(two) == content + b"more"
    cut = tmp_path / "cut.gz"
    cut.write_bytes(one.read_bytes()[:-1000])
    with pytest.raises(GZIP_ERRORS):
        read_gzipped(cut)
    tiny = tmp_path / "tiny.gz"
    tiny.write_bytes(b"\x1f\x8b")
    with pytest.raises(GZIP_ERRORS):
        read_gzipped(tiny)


def test_merged_header_is_astropys_update_card_by_card():
    """Each keyword where it first appears with its last value; commentary cards after."""
    from tessphot.io.ffi_load import merge_headers

    primary = fits.Header()
    primary["SIMPLE"] = True
    primary["TELESCOP"] = ("TESS", "telescope")
    primary["HISTORY"] = "made"
    primary["TSTART"] = (1.0, "spacecraft time")
    image = fits.Header()
    image["XTENSION"] = "IMAGE"
    image["NAXIS"] = 2
    image["COMMENT"] = "image"
    image["TSTART"] = (2.0, "BTJD")
    image["BARYCORR"] = 0.5
    merged = merge_headers(primary, image, path=Path("x.fits"))
    expected = fits.Header()
    for source in (primary, image):
        for card in source.cards:
            if card.keyword in ("SIMPLE", "XTENSION", "NAXIS"):
                continue
            if card.keyword in ("HISTORY", "COMMENT"):
                expected.append((card.keyword, card.value), useblanks=False, bottom=True)
            else:
                expected[card.keyword] = (card.value, card.comment)
    assert merged.tostring() == expected.tostring()
    assert list(merged) == ["TELESCOP", "TSTART", "BARYCORR", "HISTORY", "COMMENT"]
    assert merged.comments["TSTART"] == "BTJD" and merged["TSTART"] == 2.0
