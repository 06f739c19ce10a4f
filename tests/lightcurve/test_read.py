"""tessphot.read_lightcurve: our light curves as lightkurve objects."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

import tessphot
from tessphot.io.errors import FileProblem
from tessphot.runner.loop import run_photometry

pytest.importorskip("lightkurve")


@pytest.fixture(scope="module")
def light_curve(small_sector, tmp_path_factory):
    """The light curve of star A of the small sector, made by the pipeline."""
    import shutil
    from pathlib import Path

    folder = tmp_path_factory.mktemp("read_lightcurve")
    for name in ("catalog", "prepared", "todo"):
        shutil.copy2(small_sector[name], folder / Path(small_sector[name]).name)
    run_photometry(folder, constraints={"starid": [small_sector["A"][0]]})
    (path,) = (folder / "lightcurves").rglob("*-tasoc_lc.fits.gz")
    return path


def _columns(path):
    with fits.open(path) as hdus:
        table = hdus["LIGHTCURVE"].data
        keep = np.isfinite(table["TIME"])
        return {name: np.asarray(table[name][keep]) for name in table.names}


def test_raw_flux_as_a_tess_light_curve(light_curve, small_sector):
    from lightkurve import TessLightCurve

    lc = tessphot.read_lightcurve(light_curve, flux="raw")
    columns = _columns(light_curve)
    assert isinstance(lc, TessLightCurve)
    assert np.isfinite(columns["FLUX_RAW"]).sum() > 40  # a real light curve
    np.testing.assert_array_equal(lc.flux.value, columns["FLUX_RAW"])
    np.testing.assert_array_equal(lc.flux_err.value, columns["FLUX_RAW_ERR"])
    np.testing.assert_array_equal(lc.time.value, columns["TIME"])
    np.testing.assert_array_equal(lc.quality.value, columns["QUALITY"])
    assert lc.time.format == "btjd" and lc.time.scale == "tdb"
    assert str(lc.flux.unit) == "electron / s"
    assert lc.meta["TARGETID"] == small_sector["A"][0]
    assert lc.meta["FLUX_ORIGIN"] == "flux_raw" and lc.meta["NORMALIZED"] is False
    assert lc.meta["ORIGIN"] == tessphot.PIPELINE_NAME  # our files keep naming us


def test_corrected_flux_falls_back_to_raw_while_there_is_none(light_curve, tessphot_log):
    columns = _columns(light_curve)
    assert not np.isfinite(columns["FLUX_CORR"]).any()  # no corrections stage yet
    lc = tessphot.read_lightcurve(light_curve)
    np.testing.assert_array_equal(lc.flux.value, columns["FLUX_RAW"])
    assert lc.meta["FLUX_ORIGIN"] == "flux_raw"
    assert "FLUX_CORR holds no value" in tessphot_log.text and str(light_curve) in tessphot_log.text


def test_corrected_flux_when_there_is_one(light_curve, tmp_path, tessphot_log):
    corrected = tmp_path / "corrected.fits"
    with fits.open(light_curve) as hdus:
        table = hdus["LIGHTCURVE"].data
        table["FLUX_CORR"] = 1e6 * (table["FLUX_RAW"] / np.nanmedian(table["FLUX_RAW"]) - 1)
        table["FLUX_CORR_ERR"] = 1e6 * table["FLUX_RAW_ERR"] / np.nanmedian(table["FLUX_RAW"])
        hdus.writeto(corrected)
    lc = tessphot.read_lightcurve(corrected, flux="corr")
    columns = _columns(corrected)
    np.testing.assert_array_equal(lc.flux.value, columns["FLUX_CORR"])
    np.testing.assert_array_equal(lc.flux_err.value, columns["FLUX_CORR_ERR"])
    assert lc.meta["FLUX_ORIGIN"] == "flux_corr" and lc.meta["NORMALIZED"] is True
    assert "FLUX_CORR" not in tessphot_log.text


def test_bad_input_is_one_clear_error(tmp_path, real_ffi):
    with pytest.raises(ValueError, match="flux must be one of"):
        tessphot.read_lightcurve(real_ffi, flux="pdcsap")
    with pytest.raises(FileProblem, match="no such file"):
        tessphot.read_lightcurve(tmp_path / "missing.fits")
    with pytest.raises(FileProblem, match="not a TASOC-format light curve"):
        tessphot.read_lightcurve(real_ffi)
