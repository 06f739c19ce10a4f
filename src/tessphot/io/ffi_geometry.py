"""Where an FFI's image and uncertainty HDUs lie on the CCD, and their science-area WCS.

The CCD position of an HDU is read from its physical WCS (CRVAL1P/CRVAL2P = 1-based CCD
column/row of the HDU pixel at CRPIX1P/CRPIX2P), so cropped FFIs are placed correctly.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from tessphot.constants import (
    FIRST_SCIENCE_CCD_COLUMN,
    FIRST_SCIENCE_CCD_ROW,
    SCIENCE_SIZE,
)
from tessphot.io.errors import FFIError
from tessphot.io.ffi_load import IMAGE_HDU, UNCERTAINTY_HDU, RawFFI

#: FITS pixel indices are 1-based: the first HDU pixel is FITS pixel 1 (CRPIXnP default).
_FITS_FIRST_PIXEL = 1
#: Default CRVAL1P/CRVAL2P when absent: the HDU starts at CCD column 1, row 1.
_DEFAULT_CCD_START = 1
#: Step of the physical WCS of an unbinned image [CCD pixels per HDU pixel].
_UNBINNED_STEP = 1.0
#: Number of axes of an image HDU.
IMAGE_NDIM = 2

#: The science area in 1-based CCD rows and columns: [start, stop) per axis.
SCIENCE_ROWS = (FIRST_SCIENCE_CCD_ROW, FIRST_SCIENCE_CCD_ROW + SCIENCE_SIZE)
SCIENCE_COLUMNS = (FIRST_SCIENCE_CCD_COLUMN, FIRST_SCIENCE_CCD_COLUMN + SCIENCE_SIZE)


def ccd_start(header: fits.Header, path: Path, what: str) -> tuple[int, int]:
    """1-based CCD ``(row, column)`` of the HDU pixel ``[0, 0]``, from the physical WCS.

    CRVALnP is the CCD coordinate of HDU pixel CRPIXnP (1-based, default 1); without
    CRVALnP the HDU is taken to start at CCD row 1, column 1 (a full FFI).
    """
    start = []
    for axis, name in ((2, "row"), (1, "column")):
        crval = header.get(f"CRVAL{axis}P", _DEFAULT_CCD_START)
        crpix = header.get(f"CRPIX{axis}P", _FITS_FIRST_PIXEL)
        cdelt = header.get(f"CDELT{axis}P", _UNBINNED_STEP)
        try:
            crval, crpix, cdelt = float(crval), float(crpix), float(cdelt)
        except (TypeError, ValueError) as exc:
            raise FFIError(path, f"{what}: invalid physical WCS for the CCD {name}") from exc
        if cdelt != _UNBINNED_STEP:
            raise FFIError(path, f"{what}: CDELT{axis}P = {cdelt}, binned images are not supported")
        value = crval + (_FITS_FIRST_PIXEL - crpix) * cdelt
        if value != round(value):
            raise FFIError(
                path, f"{what}: CCD {name} of the first pixel is not an integer ({value})"
            )
        start.append(round(value))
    return start[0], start[1]


def overlap_of(start: int, length: int, lo: int, hi: int) -> tuple[int, int] | None:
    """Intersection ``[a, b)`` of ``[start, start + length)`` with ``[lo, hi)``, or None."""
    a, b = max(start, lo), min(start + length, hi)
    return (a, b) if b > a else None


def place_uncertainty(
    path: Path,
    raw: RawFFI,
    image_shape: tuple[int, int],
    image_start: tuple[int, int],
    region_start: tuple[int, int],
    region_shape: tuple[int, int],
) -> np.ndarray:
    """Uncertainty of the returned science region, NaN where the file has none.

    The uncertainty HDU is placed on the CCD by, in this order:

    1. the image HDU's placement, if it has the image HDU's shape;
    2. its own physical WCS (CRVAL1P/CRVAL2P), if present and overlapping the region;
    3. the science region's placement, if it has the region's shape.

    What the real data show: the cropped sector-1 test FFI has an image HDU of 128x173
    (CCD columns 1-173) and an uncertainty HDU of 128x128 with CRVAL1P = CRVAL2P = 1. The
    uncertainty HDU is *not* the science columns 45-172: it is CCD columns 1-128 with the
    same layout as the image HDU, exactly as its physical WCS says. Its columns 0-43 hold
    tiny collateral uncertainties (~0.03 e-/s against ~0.39 in the science area), and its
    columns 44-127 match sqrt(flux * 1425.6 s + 720 * (10 e-)^2) / 1425.6 s of image HDU
    columns 44-127 with correlation 1.000 (ratio 1.036 +- 0.007), while against image
    columns 44-171 the correlation is -0.03. So the physical WCS is trusted, and there the
    science columns 129-173 have no uncertainty (NaN).
    """
    full = np.full(region_shape, np.nan, dtype=np.float32)
    header, data = raw.uncertainty_header, raw.uncertainty_data
    if header is None or data is None or data.ndim != IMAGE_NDIM:
        warnings.warn(
            f"{path}: no uncertainty image (HDU {UNCERTAINTY_HDU}); uncertainty set to NaN",
            stacklevel=3,
        )
        return full

    start: tuple[int, int] | None = None
    if data.shape == tuple(image_shape):
        start = image_start
    elif "CRVAL1P" in header and "CRVAL2P" in header:
        own = ccd_start(header, path, f"uncertainty HDU {UNCERTAINTY_HDU}")
        if all(
            overlap_of(own[i], data.shape[i], region_start[i], region_start[i] + region_shape[i])
            for i in range(IMAGE_NDIM)
        ):
            start = own
    if start is None and data.shape == tuple(region_shape):
        start = region_start
    if start is None:
        warnings.warn(
            f"{path}: cannot place the uncertainty image (HDU {UNCERTAINTY_HDU}, shape "
            f"{data.shape}) on the science pixels; uncertainty set to NaN",
            stacklevel=3,
        )
        return full

    overlap = [
        overlap_of(start[i], data.shape[i], region_start[i], region_start[i] + region_shape[i])
        for i in range(IMAGE_NDIM)
    ]
    if overlap[0] is None or overlap[1] is None:
        return full
    source = tuple(slice(lo - start[i], hi - start[i]) for i, (lo, hi) in enumerate(overlap))
    target = tuple(
        slice(lo - region_start[i], hi - region_start[i]) for i, (lo, hi) in enumerate(overlap)
    )
    full[target] = data[source]
    return full


def science_wcs(
    path: Path,
    image_header: fits.Header,
    image_shape: tuple[int, int],
    row_slice: slice,
    col_slice: slice,
) -> WCS:
    """Celestial WCS of the image HDU, sliced to the science region (SIP kept)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(image_header)
            if not wcs.has_celestial:
                raise FFIError(path, f"no celestial WCS in image HDU {IMAGE_HDU}")
            if wcs.naxis != IMAGE_NDIM:
                wcs = wcs.celestial
            wcs.pixel_shape = (image_shape[1], image_shape[0])
            # WCS.slice shifts CRPIX and the SIP reference pixel together.
            return wcs.slice((row_slice, col_slice))
    except FFIError:
        raise
    except (ValueError, TypeError, KeyError, MemoryError) as exc:
        raise FFIError(
            path, f"no usable WCS in image HDU {IMAGE_HDU} ({type(exc).__name__}: {exc})"
        ) from exc
