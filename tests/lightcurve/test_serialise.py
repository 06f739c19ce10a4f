"""The direct FITS serialisation of light curves agrees with astropy's own writer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits

from tessphot.lightcurve import (
    LightCurveColumns,
    ObservationInfo,
    StampImages,
    TargetInfo,
    aperture_image,
    write_lightcurve,
)
from tessphot.lightcurve.serialise import _card_image, _encode_checksum, _ones_complement_sum
from tessphot.photometry.weightmap import WeightMap


def _write(path, weightmap=None):
    rng = np.random.default_rng(3)
    n = 50
    time = np.linspace(1325.0, 1326.0, n)
    time[7] = np.nan
    columns = LightCurveColumns(
        time=time,
        flux=1000 + rng.normal(size=n),
        flux_err=np.full(n, 0.5),
        cadenceno=np.arange(n),
        quality=np.where(np.arange(n) % 9 == 0, 256, 0),
    )
    images = StampImages(
        sumimage=rng.random((9, 11)),
        aperture=aperture_image((9, 11), (100, 500), photometric=rng.random((9, 11)) > 0.5),
        stamp_origin=(100, 500),
        extensions=() if weightmap is None else (weightmap.extension(),),
    )
    return write_lightcurve(
        path,
        columns,
        images,
        target=TargetInfo(123, 10.5, -20.25, 11.2, pm_ra=None, teff=5800.0, ticver="8.2"),
        observation=ObservationInfo(1, 1, 4, 1800, 30),
        method="aperture",
        version=2,
        header_cards={"AP_CONT": (0.01, "AP contamination")},
        settings={"photometry": {"a": 1, "b": [1, 2]}},
    )


def test_same_content_as_astropy(tmp_path):
    """The fast path (no weight map) and astropy's path (with one) hold the same HDUs."""
    fast = _write(tmp_path / "fast.fits")
    slow = _write(
        tmp_path / "slow.fits",
        WeightMap([0], [49], [0], np.ones((1, 9, 11))),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checksum mismatch is a warning in astropy
        with fits.open(fast, checksum=True) as a, fits.open(slow, checksum=True) as b:
            a.verify("exception")
            assert [h.name for h in a] == ["PRIMARY", "LIGHTCURVE", "SUMIMAGE", "APERTURE"]
            for k in range(4):
                ha, hb = a[k].header, b[k].header
                skip = {"CHECKSUM", "DATASUM", "DATE", "NEXTEND"}
                assert [c for c in ha if c not in skip] == [c for c in hb if c not in skip]
                for key in ha:
                    if key not in skip and key not in ("HISTORY", "COMMENT"):
                        assert ha[key] == hb[key], key
                if k == 0:
                    assert list(ha["HISTORY"]) == list(hb["HISTORY"])
            for name in a[1].columns.names:
                np.testing.assert_array_equal(a[1].data[name], b[1].data[name])
            np.testing.assert_array_equal(a[2].data, b[2].data)
            np.testing.assert_array_equal(a[3].data, b[3].data)


def test_checksum_helpers_match_astropy():
    hdu = fits.PrimaryHDU()
    for value in (0, 1, 0x12345678, 0xFFFFFFFF, *np.random.default_rng(1).integers(0, 2**32, 50)):
        assert _encode_checksum(int(value)) == hdu._char_encode(np.uint32(value))
    data = np.arange(720, dtype=">u4").tobytes()
    assert _ones_complement_sum(data) == int(np.arange(720).sum())
    big = np.full(4, 0xFFFFFFFF, dtype=">u4").tobytes()
    assert _ones_complement_sum(big) == 0xFFFFFFFF  # end-around carry


def test_card_images_keep_the_value_type():
    """The cache of card images tells True, 1 and 1.0 apart (they compare equal)."""
    images = [_card_image("SAMEKEY", value, "same comment") for value in (True, 1, 1.0)]
    assert [image[29] for image in images] == ["T", "1", "0"]


@pytest.mark.filterwarnings("ignore:Card is too long")
def test_card_images_as_astropy_makes_them():
    """The plain cards put together directly are astropy's images, character for character."""
    rng = np.random.default_rng(3)
    values = [
        True, False, np.bool_(True), 0, -7, 2**62, np.int32(-5), np.int64(12345678901),
        np.uint8(200), 0.0, -0.0, 1.0, 1e-300, -2.5e250, 1 / 3, 123456789.123, np.float32(0.1),
        np.float64(-3.75), "", "a", "O'Brien", "x" * 60, "x" * 67, "x" * 70, "  padded  ",
        *rng.normal(0, 1e5, 20), *(10 ** rng.uniform(-30, 30, 20)), *rng.integers(-1e9, 1e9, 10),
    ]  # fmt: skip
    comments = ["", "a comment", "with 'quotes' / and slashes", "c" * 60, None]
    for key in ("SIMPLE", "TSTART", "CROWDSAP", "X", "DATE-OBS", "TTYPE12", "A_B"):
        for value in values:
            for comment in comments:
                _card_image.cache_clear()
                expected = fits.Card(key, value, comment or "").image
                assert _card_image(key, value, comment) == expected
    # What a Card refuses is refused the same way.
    for bad in (float("nan"), float("inf"), "caf\u00e9"):
        with pytest.raises(ValueError):
            _card_image("BADVAL", bad, "")
