"""Reader for SPOC calibrated full-frame images (FFIs).

A SPOC calibrated FFI (``*_ffic.fits``) holds a primary HDU with header only, the
calibrated image (HDU 1, ``IMAGTYPE = 'cal'``, [e-/s]) and its 1-sigma uncertainty (HDU 2,
``IMAGTYPE = 'uncert'``). A full image HDU is 2136x2078 pixels including collateral
pixels; `read_ffi` returns only the science pixels, together with a WCS for them and their
position in tessphot's 0-based science-area ``(row, column)`` convention (see
`tessphot.constants`).

Cropped FFIs are supported: the CCD position of an image HDU is read from its physical WCS
(CRVAL1P/CRVAL2P = 1-based CCD column/row of the HDU pixel at CRPIX1P/CRPIX2P).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from tessphot.constants import FIRST_SCIENCE_CCD_COLUMN, FIRST_SCIENCE_CCD_ROW
from tessphot.io.errors import FFIError
from tessphot.io.ffi_geometry import (
    IMAGE_NDIM,
    SCIENCE_COLUMNS,
    SCIENCE_ROWS,
    ccd_start,
    overlap_of,
    place_uncertainty,
    science_wcs,
)
from tessphot.io.ffi_load import IMAGE_HDU, load_ffi, merge_headers
from tessphot.io.files import parse_ffi_name

__all__ = ["FFIImage", "read_ffi", "read_ffi_header"]


@dataclass(frozen=True, eq=False)
class FFIImage:
    """The science pixels of one calibrated FFI and what is needed to use them.

    Attributes
    ----------
    path : pathlib.Path
        File the image was read from.
    data : numpy.ndarray
        Calibrated flux [e-/s], float32, shape ``(ny, nx)``: the science-area pixels present
        in the file (collateral pixels removed).
    uncertainty : numpy.ndarray
        1-sigma uncertainty of `data` [e-/s], float32, same shape; NaN where the file has no
        uncertainty for a pixel.
    header : astropy.io.fits.Header
        Primary header merged with the image HDU header (image HDU values win), without the
        structural keywords (NAXIS*, BITPIX, CHECKSUM, ...). Its WCS keywords refer to the
        image HDU's pixel grid, not to `data`: use `wcs` and `origin` instead.
    wcs : astropy.wcs.WCS
        Celestial WCS (with SIP distortion when the file has it) of `data`: array pixel
        ``data[y, x]`` is WCS pixel ``(x, y)`` (0-based).
    origin : tuple of int
        0-based science-area ``(row, column)`` of ``data[0, 0]``.
    sector, camera, ccd : int
        Sector (header SECTOR, else from the file name), camera and CCD.
    tstart, tstop : float
        Start and end of the exposure [BTJD, barycentric], from the image HDU header.
    barycorr : float or None
        Barycentric correction applied to the times [d] (BARYCORR), None if absent.
    cadenceno : int or None
        FFI cadence number (FFIINDEX), None if absent (early sectors).
    quality : int
        Quality flags (DQUALITY), 0 if absent.
    exposure : float or None
        Time on source [d] (EXPOSURE), None if absent.
    data_rel : int or None
        Data release (DATA_REL), None if absent.
    procver : str or None
        SPOC software version (PROCVER), None if absent.
    """

    path: Path
    data: np.ndarray
    uncertainty: np.ndarray
    header: fits.Header
    wcs: WCS
    origin: tuple[int, int]
    sector: int
    camera: int
    ccd: int
    tstart: float
    tstop: float
    barycorr: float | None = None
    cadenceno: int | None = None
    quality: int = 0
    exposure: float | None = None
    data_rel: int | None = None
    procver: str | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """Shape ``(ny, nx)`` of `data`."""
        return self.data.shape

    @property
    def ccd_origin(self) -> tuple[int, int]:
        """1-based CCD ``(row, column)`` of ``data[0, 0]``."""
        return (
            self.origin[0] + FIRST_SCIENCE_CCD_ROW,
            self.origin[1] + FIRST_SCIENCE_CCD_COLUMN,
        )

    @property
    def time_mid(self) -> float:
        """Mid-exposure time [BTJD]: ``0.5 * (tstart + tstop)``."""
        return 0.5 * (self.tstart + self.tstop)


def read_ffi(path: str | os.PathLike[str]) -> FFIImage:
    """Read the science pixels, uncertainties, header and WCS of a calibrated SPOC FFI.

    Full and cropped FFIs, plain or gzip-compressed, are read. Of the image HDU, the part
    inside the CCD science area is returned.

    Parameters
    ----------
    path : str or os.PathLike
        The FFI file (``.fits`` or ``.fits.gz``).

    Returns
    -------
    FFIImage
        The image; see `FFIImage`.

    Raises
    ------
    FFIError
        If the file is missing, not FITS, truncated or corrupt, or not an FFI (no image
        extension, no CAMERA/CCD, no celestial WCS, image not 2-D or outside the science
        area, missing TSTART/TSTOP ...). The message names the file and the problem.

    Warns
    -----
    UserWarning
        If the file has no uncertainty image that can be placed on the science pixels; the
        uncertainty is then NaN.
    """
    path = Path(path)
    raw = load_ffi(path, with_data=True)
    image_header, image = raw.image_header, raw.image_data
    header = merge_headers(raw.primary_header, image_header, path=path)
    if image is None or image.ndim != IMAGE_NDIM:
        ndim = 0 if image is None else image.ndim
        raise FFIError(path, f"image HDU {IMAGE_HDU} is not a 2-D image (it has {ndim} axes)")

    hdu_start = ccd_start(image_header, path, f"image HDU {IMAGE_HDU}")
    rows = overlap_of(hdu_start[0], image.shape[0], *SCIENCE_ROWS)
    cols = overlap_of(hdu_start[1], image.shape[1], *SCIENCE_COLUMNS)
    if rows is None or cols is None:
        raise FFIError(
            path,
            f"image HDU {IMAGE_HDU} covers CCD rows {hdu_start[0]}-"
            f"{hdu_start[0] + image.shape[0] - 1}, columns {hdu_start[1]}-"
            f"{hdu_start[1] + image.shape[1] - 1}: nothing in the science area (rows "
            f"{SCIENCE_ROWS[0]}-{SCIENCE_ROWS[1] - 1}, columns {SCIENCE_COLUMNS[0]}-"
            f"{SCIENCE_COLUMNS[1] - 1})",
        )
    # Slices of the science region in the image HDU's array.
    row_slice = slice(rows[0] - hdu_start[0], rows[1] - hdu_start[0])
    col_slice = slice(cols[0] - hdu_start[1], cols[1] - hdu_start[1])
    data = np.array(image[row_slice, col_slice], dtype=np.float32)
    region_start = (rows[0], cols[0])

    uncertainty = place_uncertainty(path, raw, image.shape, hdu_start, region_start, data.shape)
    wcs = science_wcs(path, image_header, image.shape, row_slice, col_slice)

    return FFIImage(
        path=path,
        data=data,
        uncertainty=uncertainty,
        header=header,
        wcs=wcs,
        origin=(rows[0] - FIRST_SCIENCE_CCD_ROW, cols[0] - FIRST_SCIENCE_CCD_COLUMN),
        sector=_sector(path, header),
        camera=_required_int(header, "CAMERA", path),
        ccd=_required_int(header, "CCD", path),
        # The primary header's TSTART/TSTOP are spacecraft TJD; the image HDU's are BTJD.
        tstart=_required_float(image_header, "TSTART", path, f"image HDU {IMAGE_HDU}"),
        tstop=_required_float(image_header, "TSTOP", path, f"image HDU {IMAGE_HDU}"),
        barycorr=_optional(header, "BARYCORR", float, path),
        cadenceno=_optional(header, "FFIINDEX", int, path),
        quality=_optional(header, "DQUALITY", int, path) or 0,
        exposure=_optional(header, "EXPOSURE", float, path),
        data_rel=_optional(header, "DATA_REL", int, path),
        procver=_optional(header, "PROCVER", str, path),
    )


def read_ffi_header(path: str | os.PathLike[str]) -> fits.Header:
    """Read the merged header of an FFI without reading its pixel data.

    Only the headers of the primary and the image HDU are read, so this is fast for sorting
    or checking many files. A damaged data section is not detected (use `read_ffi`).

    Parameters
    ----------
    path : str or os.PathLike
        The FFI file (``.fits`` or ``.fits.gz``).

    Returns
    -------
    astropy.io.fits.Header
        Primary header merged with the image HDU header (image HDU values win), as
        `FFIImage.header`.

    Raises
    ------
    FFIError
        If the file is missing, not FITS, or has no image extension.
    """
    path = Path(path)
    raw = load_ffi(path, with_data=False)
    return merge_headers(raw.primary_header, raw.image_header, path=path)


# --------------------------------------------------------------------------------------------
# Keywords


def _sector(path: Path, header: fits.Header) -> int:
    """Sector from the SECTOR keyword, else from the file name."""
    if "SECTOR" in header:
        return _required_int(header, "SECTOR", path)
    parsed = parse_ffi_name(path.name)
    if parsed is None:
        raise FFIError(
            path, "no SECTOR keyword and the file name is not a SPOC FFI name to take it from"
        )
    return parsed.sector


def _convert(value, kind: type, keyword: str, path: Path):
    """Convert a keyword value to int, float or str, or raise FFIError."""
    if isinstance(value, bool) or value is None:
        raise FFIError(path, f"keyword {keyword} has an invalid value {value!r}")
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int | np.integer):
            return int(value)
        raise FFIError(path, f"keyword {keyword} is not an integer: {value!r}")
    if kind is float:
        if isinstance(value, int | float | np.number):
            return float(value)
        raise FFIError(path, f"keyword {keyword} is not a number: {value!r}")
    return str(value).strip()


def _required_int(header: fits.Header, keyword: str, path: Path) -> int:
    if keyword not in header:
        raise FFIError(path, f"not an FFI: required keyword {keyword} is missing")
    return _convert(header[keyword], int, keyword, path)


def _required_float(header: fits.Header, keyword: str, path: Path, where: str) -> float:
    if keyword not in header:
        raise FFIError(path, f"required keyword {keyword} is missing from the {where} header")
    return _convert(header[keyword], float, keyword, path)


def _optional(header: fits.Header, keyword: str, kind: type, path: Path):
    """Keyword value converted to ``kind``, or None if absent or undefined."""
    value = header.get(keyword)
    if value is None or isinstance(value, fits.card.Undefined):
        return None
    return _convert(value, kind, keyword, path)
