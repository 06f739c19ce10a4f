"""Light curves: the TASOC FITS format and the diagnostics of a light curve."""

from tessphot.lightcurve.diagnostics import (
    expected_noise,
    lightcurve_diagnostics,
    mask_diagnostics,
    ptp,
    rms_timescale,
    variability,
)
from tessphot.lightcurve.header import stamp_wcs
from tessphot.lightcurve.products import LightCurveColumns, StampImages, TableExtension
from tessphot.lightcurve.read import read_lightcurve
from tessphot.lightcurve.writer import (
    ApertureBits,
    ObservationInfo,
    TargetInfo,
    aperture_image,
    lightcurve_path,
    settings_from_header,
    write_lightcurve,
)

__all__ = [
    "ApertureBits",
    "LightCurveColumns",
    "ObservationInfo",
    "StampImages",
    "TableExtension",
    "TargetInfo",
    "aperture_image",
    "expected_noise",
    "lightcurve_diagnostics",
    "lightcurve_path",
    "mask_diagnostics",
    "ptp",
    "read_lightcurve",
    "rms_timescale",
    "settings_from_header",
    "stamp_wcs",
    "variability",
    "write_lightcurve",
]
