"""Our light curves carry the TASOC layout (the reference file) and are read by lightkurve."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS

from tessphot.io import read_ffi
from tessphot.lightcurve import (
    ApertureBits,
    LightCurveColumns,
    ObservationInfo,
    StampImages,
    TargetInfo,
    aperture_image,
    lightcurve_path,
    settings_from_header,
    stamp_wcs,
    write_lightcurve,
)
from tessphot.lightcurve.writer import set_corrected_flux
from tessphot.photometry.weightmap import WeightMap
from tessphot.version import __version__

REFERENCE = (
    "lightcurves/hlsp_tasoc_tess_ffi_tic00261136679-s0001-cam4-ccd2-c1800_tess_v05_ens-lc.fits"
)
#: Keywords the TASOC corrections pipeline adds to LIGHTCURVE (not ours to write).
CORRECTION_KEYWORDS = {
    "CORRMET",
    "CORRVER",
    "ENS_MED",
    "ENS_NUM",
    "ENS_DLIM",
    "ENS_DREL",
    "ENS_RLIM",
}
#: Time-reference keywords an older astropy added to the reference's image WCS (with values that
#: misread SPOC's TSTART as days since MJD 0); they belong to no TASOC format.
WCS_TIME_REFERENCE = {"DATEREF", "MJDREFI", "MJDREFF"}
KP_KEYWORDS = {
    "KP_THRES": (0.8, "K2P2 sum-image threshold"),
    "KP_MIPIX": (4, "K2P2 min pixels in mask"),
    "KP_MICLS": (4, "K2P2 min pix. for cluster"),
    "KP_CLSRA": (2**0.5, "K2P2 cluster radius"),
    "KP_WS": (True, "K2P2 watershed segmentation"),
    "KP_WSBLR": (0.5, "K2P2 watershed blur"),
    "KP_WSTHR": (0, "K2P2 watershed threshold"),
    "KP_WSFOT": (3, "K2P2 watershed footprint"),
    "KP_EX": (True, "K2P2 extend overflow"),
    "AP_CONT": (0.0027, "AP contamination"),
}
#: LIGHTCURVE keywords whose values must equal the reference's (same sector and cadence).
SAME_TIME_KEYWORDS = (
    "TIMEREF",
    "TIMESYS",
    "BJDREFI",
    "BJDREFF",
    "TIMEUNIT",
    "TIMEPIXR",
    "TIMEDEL",
    "INT_TIME",
    "READTIME",
    "FRAMETIM",
    "NUM_FRM",
    "NREADOUT",
    "INHERIT",
)
N = 60
SHAPE = (11, 13)
ORIGIN = (40, 1530)  # science (row, column): columns 1530-1535 on output C, 1536- on D


@pytest.fixture
def data():
    rng = np.random.default_rng(5)
    time = 1325.3247 + np.arange(N) * 1800 / 86400
    time[[0, 7, 8]] = np.nan  # non-finite times, also at the start
    time[20] = np.inf
    collected = np.ones(SHAPE, bool)
    collected[0, 0] = False
    mask = np.zeros(SHAPE, bool)
    mask[4:7, 5:8] = True
    return {
        "time": time,
        "timecorr": rng.normal(0.001, 1e-5, N),
        "cadenceno": 4697 + np.arange(N),
        "flux": rng.normal(15000, 30, N),
        "flux_err": np.full(N, 30.0),
        "flux_bkg": rng.normal(500, 5, N),
        "quality": np.where(np.arange(N) % 10 == 3, 256, 0),
        "pixel_quality": np.where(np.arange(N) % 10 == 5, 32, 0),
        "centroid_row": 45.2 + rng.normal(0, 0.01, N),
        "centroid_column": 1536.4 + rng.normal(0, 0.01, N),
        "pos_corr_row": rng.normal(0, 0.02, N),
        "pos_corr_column": rng.normal(0, 0.02, N),
        "sumimage": rng.normal(0, 1, SHAPE),
        "aperture": aperture_image(
            SHAPE,
            ORIGIN,
            collected=collected,
            photometric=mask,
            centroid=mask,
            background=~mask & collected,
        ),
        "stamp_origin": ORIGIN,
    }


TARGET = TargetInfo(
    starid=261136679,
    ra=84.2911879979852,
    dec=-80.46911979699409,
    tmag=5.1054,
    pm_ra=311.187,
    pm_dec=1048.84,
    teff=5992.1,
    ticver="8.2",
)
OBSERVATION = ObservationInfo(sector=1, camera=4, ccd=2, cadence=1800, data_rel=1)


def _typed(given):
    """The writer's typed columns and images from a flat mapping, and the other arguments."""
    given = dict(given)
    weightmap = given.pop("weightmap", None)
    images = StampImages(
        **{k: given.pop(k) for k in ("sumimage", "aperture", "stamp_origin", "wcs") if k in given},
        extensions=() if weightmap is None else (weightmap.extension(),),
    )
    names = LightCurveColumns.__dataclass_fields__
    columns = LightCurveColumns(**{k: given.pop(k) for k in list(given) if k in names})
    if "method_keywords" in given:
        given["header_cards"] = given.pop("method_keywords")
    return columns, images, given


def _write(path, data, **kwargs):
    columns, images, rest = _typed({**data, **kwargs})
    arguments = {
        "target": TARGET,
        "observation": OBSERVATION,
        "method": "aperture",
        "version": 1,
        **rest,
    }
    return write_lightcurve(path, columns, images, **arguments)


@pytest.fixture
def written(tmp_path, data):
    settings = {
        "photometry": {"k2p2": {"thresh": 0.8, "cluster_radius": 2**0.5}},
        "version": 1,
        "note": "x" * 150,
        "window": (1.0, 2.0),
        "spaces": "a  " * 60 + "end",
        "nothing": None,
    }
    path = lightcurve_path(tmp_path, 261136679, 1, 4, 2, 1800, 1, 1)
    return _write(path, data, method_keywords=KP_KEYWORDS, settings=settings), settings


def test_lightcurve_path(tmp_path):
    assert lightcurve_path(tmp_path, 261136679, 1, 4, 2, 1800, 1, 5) == (
        tmp_path / "c1800" / "00261" / "tess00261136679-s001-4-2-c1800-dr01-v05-tasoc_lc.fits.gz"
    )
    assert lightcurve_path("out", 12, 27, 1, 3, 120, 27, 12).as_posix() == (
        "out/c0120/00000/tess00000000012-s027-1-3-c0120-dr27-v12-tasoc_lc.fits.gz"
    )


def test_same_layout_as_reference(written, test_data, real_ffi, data):
    path = _write(written[0], data, method_keywords=KP_KEYWORDS, wcs=read_ffi(real_ffi).wcs)
    with fits.open(test_data / REFERENCE) as ref, fits.open(path) as ours:
        assert [h.name for h in ours] == ["PRIMARY", "LIGHTCURVE", "SUMIMAGE", "APERTURE"]
        assert [h.name for h in ref][:4] == [h.name for h in ours]
        ref_cols = [(c.name, c.format, c.disp, c.unit) for c in ref[1].columns]
        our_cols = [(c.name, c.format, c.disp, c.unit) for c in ours[1].columns]
        assert our_cols == ref_cols
        for extension in range(4):
            ref_keys = set(ref[extension].header) - CORRECTION_KEYWORDS - WCS_TIME_REFERENCE
            missing = ref_keys - set(ours[extension].header)
            assert not missing, f"HDU {extension} lacks {sorted(missing)}"
        for key in (
            "EXTNAME",
            "TELESCOP",
            "INSTRUME",
            "FILTER",
            "OBJECT",
            "TICID",
            "CAMERA",
            "CCD",
            "SECTOR",
            "DATA_REL",
            "PHOTMET",
            "RADESYS",
            "EQUINOX",
            "CRMITEN",
            "CRBLKSZ",
            "CRSPOC",
            "RA_OBJ",
            "DEC_OBJ",
            "PMRA",
            "PMDEC",
            "TESSMAG",
            "TEFF",
            *KP_KEYWORDS.keys() - {"AP_CONT", "KP_CLSRA"},
        ):
            assert ours[0].header[key] == ref[0].header[key], key
            assert type(ours[0].header[key]) is type(ref[0].header[key]), key
        assert ours[0].header["KP_CLSRA"] == pytest.approx(ref[0].header["KP_CLSRA"])
        assert ours[0].header["PMTOTAL"] == pytest.approx(ref[0].header["PMTOTAL"])
        for key in SAME_TIME_KEYWORDS:
            assert ours[1].header[key] == pytest.approx(ref[1].header[key]), key
        assert ours[2].data.dtype == ref[2].data.dtype == np.dtype(">f8")
        assert ours[3].data.dtype == ref[3].data.dtype == np.dtype(">i4")
        for extension in (2, 3):
            assert ours[extension].header["INHERIT"] is True
            assert WCS(ours[extension].header).has_celestial
        assert ours[0].header["ORIGIN"] == "tessphot"
        assert ours[0].header["PROCVER"] == f"tessphot-{__version__}"
        assert ours[0].header["FILEVER"] == "1.5"
        assert ours[0].header["DATAVAL"] == 0
        assert ours[0].header["NEXTEND"] == 3
        assert ours[0].header["TICVER"] == "8.2"


def test_values_and_dropped_rows(written, data):
    path, _ = written
    keep = np.isfinite(data["time"])
    expected = {
        "TIME": data["time"],
        "TIMECORR": data["timecorr"].astype(np.float32),
        "CADENCENO": data["cadenceno"],
        "FLUX_RAW": data["flux"],
        "FLUX_RAW_ERR": data["flux_err"],
        "FLUX_BKG": data["flux_bkg"],
        "QUALITY": data["quality"],
        "PIXEL_QUALITY": data["pixel_quality"],
        "MOM_CENTR1": data["centroid_column"] + 45,  # 1-based CCD column
        "MOM_CENTR2": data["centroid_row"] + 1,  # 1-based CCD row
        "POS_CORR1": data["pos_corr_column"],
        "POS_CORR2": data["pos_corr_row"],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a bad checksum would warn
        with fits.open(path, checksum=True) as hdul:
            table = hdul[1].data
            header = hdul[1].header
            assert len(table) == keep.sum() == N - 4
            for name, values in expected.items():
                np.testing.assert_array_equal(table[name], values[keep], err_msg=name)
            assert np.all(np.isnan(table["FLUX_CORR"])) and np.all(np.isnan(table["FLUX_CORR_ERR"]))
            np.testing.assert_array_equal(hdul[2].data, data["sumimage"])
            np.testing.assert_array_equal(hdul[3].data, data["aperture"])
            for extension in hdul:
                assert "CHECKSUM" in extension.header and "DATASUM" in extension.header
    first, last = data["time"][keep][[0, -1]]
    half = 900 / 86400
    assert header["TSTART"] == pytest.approx(first - half, abs=1e-9)
    assert header["TSTOP"] == pytest.approx(last + half, abs=1e-9)
    assert header["TELAPSE"] == pytest.approx(last - first + 2 * half)
    assert header["MJD-BEG"] == pytest.approx(header["TSTART"] + 56999.5)
    start = Time(header["TSTART"] + 2457000, format="jd", scale="tdb")
    assert header["DATE-OBS"] == start.utc.isot
    # Exposure keywords from §4.5: 1.98 s of 2 s, 8 of 10 frames kept.
    assert header["DEADC"] == pytest.approx(0.792)
    assert header["XPOSURE"] == pytest.approx(1425.6)
    assert header["LIVETIME"] == header["EXPOSURE"] == pytest.approx(header["TELAPSE"] * 0.792)
    assert (header["NUM_FRM"], header["NREADOUT"]) == (900, 720)
    assert header["TIMEDEL"] == pytest.approx(1800 / 86400)


def test_gzip_atomic_and_overwrite(written, data):
    path, _ = written
    assert path.name.endswith(".fits.gz")
    with open(path, "rb") as fh:
        assert fh.read(2) == b"\x1f\x8b"
    with gzip.open(path) as fh:
        assert fh.read(6) == b"SIMPLE"
    assert list(path.parent.iterdir()) == [path]  # no temporary files left
    with pytest.raises(FileExistsError):
        _write(path, data, overwrite=False)
    bad = dict(data, flux=data["flux"][:-1])
    with pytest.raises(ValueError, match="column flux has shape"):
        _write(path, bad)
    with pytest.raises(ValueError, match="no finite time"):
        _write(path, dict(data, time=np.full(N, np.nan)))
    with pytest.raises(ValueError, match="must be integer"):
        _write(path, dict(data, quality=np.zeros(N)))
    with pytest.raises(ValueError, match="same 2-D shape"):
        _write(path, dict(data, sumimage=np.zeros((3, 3))))
    assert list(path.parent.iterdir()) == [path]
    # A killed earlier attempt's temporary file is cleaned up by the next write.
    stale = path.parent / f".{path.name}.k1ll3d.tmp.fits.gz"
    stale.write_bytes(b"\x1f\x8b half written")
    _write(path, data)
    assert list(path.parent.iterdir()) == [path]
    plain = _write(path.parent / "plain.fits", data)
    with open(plain, "rb") as fh:
        assert fh.read(6) == b"SIMPLE"


def test_settings_and_method_keywords(written, data, tmp_path):
    path, settings = written
    header = fits.getheader(path)
    for key, (value, comment) in KP_KEYWORDS.items():
        assert header[key] == pytest.approx(value)
        assert header.comments[key] == comment
    assert settings_from_header(header) == {
        "photometry.k2p2.thresh": 0.8,
        "photometry.k2p2.cluster_radius": 2**0.5,
        "version": 1,
        "note": "x" * 150,
        "window": [1.0, 2.0],
        "spaces": "a  " * 60 + "end",
        "nothing": None,
    }
    for bad in ({"TOOLONGKEY": 1}, {"TICID": 5}, {"BAD KEY": 1}, {"DATAVAL": 1}):
        with pytest.raises(ValueError, match="method keyword"):
            _write(tmp_path / "x.fits", data, method_keywords=bad)


def test_long_method_comments_are_cut_to_the_card(data, tmp_path):
    """A long value leaves less room: the comment is cut, astropy never warns."""
    name = "ePRF SPOC Sectors1_2_3 cam1_ccd4 and more"[:40]
    comment = "the motion correction's PRF, described at some length"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = _write(tmp_path / "long.fits", data, method_keywords={"AP_PRF": (name, comment)})
    card = fits.getheader(path).cards["AP_PRF"]
    assert card.value == name and comment.startswith(card.comment)
    assert len(card.image.rstrip()) <= 80 and len(card.comment) >= 20


def test_stamp_wcs(real_ffi, tmp_path, data):
    ffi = read_ffi(real_ffi)  # a real SPOC FFI: 4th-order SIP WCS in science coordinates
    origin = (60, 70)
    path = _write(
        tmp_path / "wcs.fits",
        data,
        wcs=ffi.wcs,
        stamp_origin=origin,
        aperture=aperture_image(SHAPE, origin),
    )
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    for extension in ("SUMIMAGE", "APERTURE"):
        header = fits.getheader(path, extension)
        wcs = WCS(header)
        assert wcs.sip is not None
        ra, dec = wcs.all_pix2world(cols.ravel(), rows.ravel(), 0)
        ra0, dec0 = ffi.wcs.all_pix2world(cols.ravel() + origin[1], rows.ravel() + origin[0], 0)
        np.testing.assert_allclose(ra, ra0, rtol=0, atol=1e-9)
        np.testing.assert_allclose(dec, dec0, rtol=0, atol=1e-9)
        assert (header["CRVAL1P"], header["CRVAL2P"]) == (origin[1] + 45, origin[0] + 1)
    direct = stamp_wcs(ffi.wcs, origin, SHAPE)
    assert direct.pixel_shape == (SHAPE[1], SHAPE[0])


def test_aperture_bits():
    photometric = np.zeros(SHAPE, bool)
    photometric[5, 5] = True
    image = aperture_image(SHAPE, ORIGIN, collected=np.ones(SHAPE, bool), photometric=photometric)
    assert image.dtype == np.int32
    c_output = ORIGIN[1] + np.arange(SHAPE[1]) < 1536
    np.testing.assert_array_equal(image[0], np.where(c_output, 128, 256) + 1)
    assert image[5, 5] == 128 + ApertureBits.PHOTOMETRIC + ApertureBits.COLLECTED  # column 1535
    assert aperture_image((2, 2), (0, 0))[0, 0] == 32  # output A
    with pytest.raises(ValueError, match="aperture mask of shape"):
        aperture_image(SHAPE, ORIGIN, centroid=np.ones((2, 2), bool))


def test_weightmap(tmp_path, data):
    weights = np.random.default_rng(1).random((2, *SHAPE)).astype(np.float32)
    weightmap = WeightMap(
        cadenceno1=[1, 30], cadenceno2=[29, 60], sat_pixels=[3, 4], weights=weights
    )
    path = _write(tmp_path / "halo.fits", data, method="halo", weightmap=weightmap)
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == [
            "PRIMARY",
            "LIGHTCURVE",
            "SUMIMAGE",
            "APERTURE",
            "WEIGHTMAP",
        ]
        assert hdul[0].header["NEXTEND"] == 4
        assert hdul[0].header["PHOTMET"] == "halo"
        table = hdul["WEIGHTMAP"]
        assert table.header["TDIM4"] == f"({SHAPE[1]},{SHAPE[0]})"
        np.testing.assert_array_equal(table.data["WEIGHTMAP"], weights)
        np.testing.assert_array_equal(table.data["CADENCENO2"], [29, 60])
        assert [c.format for c in table.columns] == ["J", "J", "J", f"{SHAPE[0] * SHAPE[1]}E"]


def test_missing_catalog_values(tmp_path, data):
    target = TargetInfo(starid=5, ra=10.0, dec=-20.0, tmag=np.float32(12.5))
    path = _write(tmp_path / "x.fits", data, target=target, version=2)
    header = fits.getheader(path)
    for key in ("PMRA", "PMDEC", "PMTOTAL", "TEFF", "TICVER"):
        assert key in header and header[key] is None or isinstance(header[key], fits.card.Undefined)
    assert header["TESSMAG"] == 12.5


def test_read_by_lightkurve(written, data):
    lightkurve = pytest.importorskip("lightkurve")
    from lightkurve.io.tasoc import read_tasoc_lightcurve

    path, _ = written
    keep = np.isfinite(data["time"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = read_tasoc_lightcurve(str(path))  # FLUX_CORR by default: NaN until corrected
        raw = read_tasoc_lightcurve(str(path), flux_column="flux_raw")
        generic = lightkurve.read(str(path), flux_column="flux_raw")
    values = default.flux.value
    assert np.all(np.isnan(getattr(values, "unmasked", values)))
    for lc in (raw, generic):
        np.testing.assert_array_equal(lc.flux.value, data["flux"][keep])
        np.testing.assert_array_equal(lc.flux_err.value, data["flux_err"][keep])
        np.testing.assert_array_equal(lc.time.value, data["time"][keep])
        assert lc.time.format == "btjd" and lc.time.scale == "tdb"
        np.testing.assert_array_equal(lc.quality.value, data["quality"][keep])
        np.testing.assert_array_equal(lc.cadenceno.value, data["cadenceno"][keep])
        np.testing.assert_allclose(lc.centroid_col.value, data["centroid_column"][keep] + 45)
        assert str(lc.flux.unit) == "electron / s"
    assert raw.meta["TARGETID"] == 261136679
    assert raw.meta["AUTHOR"] == "TASOC"


def test_paths_are_pathlike(tmp_path, data):
    path = _write(str(tmp_path / "deep" / "er" / "lc.fits"), data)
    assert isinstance(path, Path) and path.is_file()


def test_set_corrected_flux(written):
    path, _ = written
    with fits.open(path) as hdus:
        before = hdus["LIGHTCURVE"].data.copy()
        header = hdus[0].header.copy()
    n = len(before)
    corr = np.linspace(-100.0, 100.0, n)
    err = np.full(n, 12.5)
    clipped = np.zeros(n, dtype=np.int32)
    clipped[3] = 4
    cards = [("CORRMET", "cbv", "corrector"), ("CBV_NUM", 2, "n"), ("CBV_C1", 0.5, "c1")]
    cards.append(("CBV_C2", -0.25, "c2"))
    set_corrected_flux(path, corr, err, quality=clipped, cards=cards)
    with fits.open(path, checksum=True) as hdus:
        table = hdus["LIGHTCURVE"].data
        np.testing.assert_array_equal(table["FLUX_CORR"], corr)
        np.testing.assert_array_equal(table["FLUX_CORR_ERR"], err)
        np.testing.assert_array_equal(table["FLUX_RAW"], before["FLUX_RAW"])
        np.testing.assert_array_equal(table["QUALITY"], before["QUALITY"] | clipped)
        assert hdus[0].header["CBV_C2"] == -0.25 and hdus[0].header["CORRMET"] == "cbv"
        assert hdus[0].header["ORIGIN"] == header["ORIGIN"]
    # A later correction with fewer vectors leaves no stale coefficient behind.
    set_corrected_flux(path, corr, err, cards=[("CBV_NUM", 1, "n"), ("CBV_C1", 0.1, "c1")])
    with fits.open(path) as hdus:
        assert "CBV_C2" not in hdus[0].header and hdus[0].header["CBV_C1"] == 0.1
    # A correction made again clears the bits of ``clear`` (its own) and keeps the others
    # (the photometry's 256).
    jump = np.zeros(n, dtype=np.int32)
    jump[5] = 8
    set_corrected_flux(path, corr, err, quality=jump, clear=4 | 8)
    with fits.open(path) as hdus:
        np.testing.assert_array_equal(hdus["LIGHTCURVE"].data["QUALITY"], before["QUALITY"] | jump)
    with pytest.raises(ValueError, match="FLUX_CORR has shape"):
        set_corrected_flux(path, corr[:-1], err)
