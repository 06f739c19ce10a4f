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

import io
import os
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyError
from astropy.wcs import WCS, FITSFixedWarning

try:  # ISA-L decompresses gzip about twice as fast as zlib
    from isal.igzip import decompress as gunzip
except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
    from gzip import decompress as gunzip

from tessphot.constants import (
    FIRST_SCIENCE_CCD_COLUMN,
    FIRST_SCIENCE_CCD_ROW,
    SCIENCE_SIZE,
)
from tessphot.io.errors import FFIError
from tessphot.io.files import parse_ffi_name

__all__ = ["FFIImage", "read_ffi", "read_ffi_header"]

#: Index of the calibrated image HDU.
IMAGE_HDU = 1
#: Index of the uncertainty image HDU.
UNCERTAINTY_HDU = 2

#: FITS pixel indices are 1-based: the first HDU pixel is FITS pixel 1 (CRPIXnP default).
_FITS_FIRST_PIXEL = 1
#: Default CRVAL1P/CRVAL2P when absent: the HDU starts at CCD column 1, row 1.
_DEFAULT_CCD_START = 1
#: Step of the physical WCS of an unbinned image [CCD pixels per HDU pixel].
_UNBINNED_STEP = 1.0
#: First byte pair of a gzip stream.
_GZIP_MAGIC = b"\x1f\x8b"
#: Number of axes of an image HDU.
_IMAGE_NDIM = 2

#: Header keywords that describe an HDU's layout or integrity rather than the observation;
#: they are left out of the merged header.
_STRUCTURAL_KEYWORDS = frozenset(
    {
        "SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND",
        "NEXTEND", "PCOUNT", "GCOUNT", "BSCALE", "BZERO", "BLANK", "CHECKSUM", "DATASUM",
        "INHERIT",
    }
)  # fmt: skip

#: Commentary keywords: all cards of both headers are kept.
_COMMENTARY_KEYWORDS = ("COMMENT", "HISTORY")

#: Fragments of astropy warnings that mean the file is truncated or its structure is broken
#: (astropy then returns short arrays or silently drops the HDUs after the damage).
_FATAL_WARNING_FRAGMENTS = ("truncated", "Error validating header", "not a multiple of 2880")

#: Errors raised by astropy / gzip / zlib when a file is not FITS, truncated or corrupt.
_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    zlib.error,
    VerifyError,
)

# Science area in 1-based CCD coordinates: [start, stop) per axis.
_SCIENCE_ROWS = (FIRST_SCIENCE_CCD_ROW, FIRST_SCIENCE_CCD_ROW + SCIENCE_SIZE)
_SCIENCE_COLUMNS = (FIRST_SCIENCE_CCD_COLUMN, FIRST_SCIENCE_CCD_COLUMN + SCIENCE_SIZE)


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
    raw = _load(path, with_data=True)
    image_header, image = raw.image_header, raw.image_data
    header = _merge_headers(raw.primary_header, image_header)
    if image is None or image.ndim != _IMAGE_NDIM:
        ndim = 0 if image is None else image.ndim
        raise FFIError(path, f"image HDU {IMAGE_HDU} is not a 2-D image (it has {ndim} axes)")

    hdu_start = _ccd_start(image_header, path, f"image HDU {IMAGE_HDU}")
    rows = _overlap(hdu_start[0], image.shape[0], *_SCIENCE_ROWS)
    cols = _overlap(hdu_start[1], image.shape[1], *_SCIENCE_COLUMNS)
    if rows is None or cols is None:
        raise FFIError(
            path,
            f"image HDU {IMAGE_HDU} covers CCD rows {hdu_start[0]}-"
            f"{hdu_start[0] + image.shape[0] - 1}, columns {hdu_start[1]}-"
            f"{hdu_start[1] + image.shape[1] - 1}: nothing in the science area (rows "
            f"{_SCIENCE_ROWS[0]}-{_SCIENCE_ROWS[1] - 1}, columns {_SCIENCE_COLUMNS[0]}-"
            f"{_SCIENCE_COLUMNS[1] - 1})",
        )
    # Slices of the science region in the image HDU's array.
    row_slice = slice(rows[0] - hdu_start[0], rows[1] - hdu_start[0])
    col_slice = slice(cols[0] - hdu_start[1], cols[1] - hdu_start[1])
    data = np.array(image[row_slice, col_slice], dtype=np.float32)
    region_start = (rows[0], cols[0])

    uncertainty = _place_uncertainty(path, raw, image.shape, hdu_start, region_start, data.shape)
    wcs = _science_wcs(path, image_header, image.shape, row_slice, col_slice)

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
    raw = _load(path, with_data=False)
    return _merge_headers(raw.primary_header, raw.image_header)


# --------------------------------------------------------------------------------------------
# Reading


@dataclass
class _RawFFI:
    """What `_load` copied out of the file."""

    primary_header: fits.Header
    image_header: fits.Header
    image_data: np.ndarray | None = None
    uncertainty_header: fits.Header | None = None
    uncertainty_data: np.ndarray | None = None


def _load(path: Path, *, with_data: bool) -> _RawFFI:
    """Copy headers (and pixel arrays) out of a FITS file, turning every failure into FFIError.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    with_data : bool
        Also read the image and uncertainty arrays, check that the file is complete and
        decompress gzipped files in full (so that truncation is detected).
    """
    if not path.exists():
        raise FFIError(path, "file not found")
    if path.is_dir():
        raise FFIError(path, "is a folder, not a file")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hdul = _open_fits(path, full=with_data)
        try:
            with hdul:
                raw, n_hdus, n_extensions = _copy_hdus(hdul, with_data=with_data)
        except _READ_ERRORS as exc:
            reason = _fatal_warning(caught) or _describe(exc)
            raise FFIError(path, f"truncated or corrupt FITS file ({reason})") from exc
    reason = _fatal_warning(caught)
    if reason is not None:
        raise FFIError(path, f"truncated or corrupt FITS file ({reason})")
    _reemit(caught)

    if with_data and n_extensions is not None and n_hdus - 1 < n_extensions:
        raise FFIError(
            path,
            f"truncated or corrupt FITS file (NEXTEND = {n_extensions} but only "
            f"{n_hdus - 1} extensions found)",
        )
    if raw is None:
        raise FFIError(
            path,
            f"not an FFI: the file has only a primary HDU, no image extension (HDU {IMAGE_HDU})",
        )
    return raw


def _open_fits(path: Path, *, full: bool) -> fits.HDUList:
    """Open a FITS file with no memory map, turning failures into FFIError.

    With ``full``, gzip streams are decompressed here in full: astropy's own gzip reading
    silently returns fewer HDUs for a truncated ``.gz``, while a full decompression raises.
    """
    source: Path | io.BytesIO = path
    try:
        if full:
            with open(path, "rb") as stream:
                is_gzip = stream.read(len(_GZIP_MAGIC)) == _GZIP_MAGIC
            if is_gzip:
                source = io.BytesIO(gunzip(path.read_bytes()))
    except (OSError, EOFError, zlib.error) as exc:
        raise FFIError(path, f"truncated or corrupt gzip file ({_describe(exc)})") from exc
    try:
        return fits.open(source, memmap=False)
    except _READ_ERRORS as exc:
        raise FFIError(path, f"not a valid FITS file ({_describe(exc)})") from exc


def _describe(exc: BaseException) -> str:
    """One-line description of an exception for an error message."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _copy_hdus(hdul: fits.HDUList, *, with_data: bool) -> tuple[_RawFFI | None, int, int | None]:
    """Copy what is needed out of an open HDU list.

    Returns
    -------
    raw : _RawFFI or None
        The copied headers/arrays; None when there is no image extension.
    n_hdus : int
        Number of HDUs read (all of them with ``with_data``, otherwise at most 2).
    n_extensions : int or None
        NEXTEND of the primary header, if present and an integer.
    """
    primary_header = hdul[0].header.copy()
    n_extensions = primary_header.get("NEXTEND")
    if not isinstance(n_extensions, int) or isinstance(n_extensions, bool):
        n_extensions = None
    try:
        image_hdu = hdul[IMAGE_HDU]
    except IndexError:
        return None, 1, n_extensions
    raw = _RawFFI(primary_header=primary_header, image_header=image_hdu.header.copy())
    if not with_data:
        return raw, IMAGE_HDU + 1, n_extensions

    n_hdus = len(hdul)  # reads all headers: detects damage after the HDUs we use
    raw.image_data = _copy_array(image_hdu)
    if n_hdus > UNCERTAINTY_HDU:
        uncertainty_hdu = hdul[UNCERTAINTY_HDU]
        raw.uncertainty_header = uncertainty_hdu.header.copy()
        raw.uncertainty_data = _copy_array(uncertainty_hdu)
    return raw, n_hdus, n_extensions


def _copy_array(hdu) -> np.ndarray | None:
    """Copy the data of an image HDU into memory (None for non-image HDUs or no data)."""
    if not isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU):
        return None
    data = hdu.data
    if data is None:
        return None
    naxis = hdu.header["NAXIS"]
    expected = tuple(hdu.header[f"NAXIS{axis}"] for axis in range(naxis, 0, -1))
    if data.shape != expected:  # safety net: astropy normally raises on short data itself
        raise ValueError(f"HDU {hdu.name!r} has data of shape {data.shape}, not {expected}")
    return np.array(data)


def _fatal_warning(caught: list[warnings.WarningMessage]) -> str | None:
    """The message of the first warning meaning the file is truncated or broken, if any."""
    for warning in caught:
        message = str(warning.message)
        if any(fragment in message for fragment in _FATAL_WARNING_FRAGMENTS):
            return " ".join(message.split())
    return None


def _reemit(caught: list[warnings.WarningMessage]) -> None:
    """Re-issue warnings recorded while reading, under the caller's warning filters."""
    for warning in caught:
        if issubclass(warning.category, FITSFixedWarning):
            continue
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def _merge_headers(primary: fits.Header, image: fits.Header) -> fits.Header:
    """Primary header updated with the image header, without structural keywords."""
    merged = fits.Header()
    for source in (primary, image):
        for card in source.cards:
            keyword = card.keyword
            if keyword in _STRUCTURAL_KEYWORDS:
                continue
            if keyword in _COMMENTARY_KEYWORDS:
                merged.append((keyword, card.value), useblanks=False, bottom=True)
            elif keyword:  # blank cards are layout only
                merged[keyword] = (card.value, card.comment)
    return merged


# --------------------------------------------------------------------------------------------
# Geometry


def _ccd_start(header: fits.Header, path: Path, what: str) -> tuple[int, int]:
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


def _overlap(start: int, length: int, lo: int, hi: int) -> tuple[int, int] | None:
    """Intersection ``[a, b)`` of ``[start, start + length)`` with ``[lo, hi)``, or None."""
    a, b = max(start, lo), min(start + length, hi)
    return (a, b) if b > a else None


def _place_uncertainty(
    path: Path,
    raw: _RawFFI,
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
    if header is None or data is None or data.ndim != _IMAGE_NDIM:
        warnings.warn(
            f"{path}: no uncertainty image (HDU {UNCERTAINTY_HDU}); uncertainty set to NaN",
            stacklevel=3,
        )
        return full

    start: tuple[int, int] | None = None
    if data.shape == tuple(image_shape):
        start = image_start
    elif "CRVAL1P" in header and "CRVAL2P" in header:
        own = _ccd_start(header, path, f"uncertainty HDU {UNCERTAINTY_HDU}")
        if all(
            _overlap(own[i], data.shape[i], region_start[i], region_start[i] + region_shape[i])
            for i in range(_IMAGE_NDIM)
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
        _overlap(start[i], data.shape[i], region_start[i], region_start[i] + region_shape[i])
        for i in range(_IMAGE_NDIM)
    ]
    if overlap[0] is None or overlap[1] is None:
        return full
    source = tuple(slice(lo - start[i], hi - start[i]) for i, (lo, hi) in enumerate(overlap))
    target = tuple(
        slice(lo - region_start[i], hi - region_start[i]) for i, (lo, hi) in enumerate(overlap)
    )
    full[target] = data[source]
    return full


def _science_wcs(
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
            if wcs.naxis != _IMAGE_NDIM:
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
