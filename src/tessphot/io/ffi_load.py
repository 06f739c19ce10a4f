"""Copying an FFI's headers and pixel arrays out of its FITS file.

Every way a file can fail (missing, not FITS, truncated, corrupt gzip, damaged HDUs) becomes
an :class:`~tessphot.io.errors.FFIError` naming the file and the problem; astropy's
warnings that mean damage are turned into errors, the others into one log line.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyError
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import FITSFixedWarning

from tessphot.io.errors import FFIError
from tessphot.io.fits_headers import GZIP_ERRORS, read_gzipped

log = logging.getLogger(__name__)

#: Index of the calibrated image HDU.
IMAGE_HDU = 1
#: Index of the uncertainty image HDU.
UNCERTAINTY_HDU = 2

#: First byte pair of a gzip stream.
_GZIP_MAGIC = b"\x1f\x8b"

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
    *GZIP_ERRORS,
    VerifyError,
)


@dataclass
class RawFFI:
    """What `load_ffi` copied out of the file."""

    primary_header: fits.Header
    image_header: fits.Header
    image_data: np.ndarray | None = None
    uncertainty_header: fits.Header | None = None
    uncertainty_data: np.ndarray | None = None


def load_ffi(path: Path, *, with_data: bool) -> RawFFI:
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
    _report_warnings(path, caught)

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
                source = io.BytesIO(read_gzipped(path))
    except GZIP_ERRORS as exc:
        raise FFIError(path, f"truncated or corrupt gzip file ({_describe(exc)})") from exc
    try:
        return fits.open(source, memmap=False)
    except _READ_ERRORS as exc:
        raise FFIError(path, f"not a valid FITS file ({_describe(exc)})") from exc


def _describe(exc: BaseException) -> str:
    """One-line description of an exception for an error message."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _copy_hdus(hdul: fits.HDUList, *, with_data: bool) -> tuple[RawFFI | None, int, int | None]:
    """Copy what is needed out of an open HDU list.

    Returns
    -------
    raw : RawFFI or None
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
    raw = RawFFI(primary_header=primary_header, image_header=image_hdu.header.copy())
    if not with_data:
        return raw, IMAGE_HDU + 1, n_extensions

    n_hdus = len(hdul)  # reads all headers: detects damage after the HDUs we use
    raw.image_data = _read_array(image_hdu)
    if n_hdus > UNCERTAINTY_HDU:
        uncertainty_hdu = hdul[UNCERTAINTY_HDU]
        raw.uncertainty_header = uncertainty_hdu.header.copy()
        raw.uncertainty_data = _read_array(uncertainty_hdu)
    return raw, n_hdus, n_extensions


def _read_array(hdu) -> np.ndarray | None:
    """The data of an image HDU, read into memory (None for non-image HDUs or no data).

    The file is opened without a memory map: the array is the HDU's own (not a view of the
    file), so it is not copied again.
    """
    if not isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU):
        return None
    data = hdu.data
    if data is None:
        return None
    naxis = hdu.header["NAXIS"]
    expected = tuple(hdu.header[f"NAXIS{axis}"] for axis in range(naxis, 0, -1))
    if data.shape != expected:  # safety net: astropy normally raises on short data itself
        raise ValueError(f"HDU {hdu.name!r} has data of shape {data.shape}, not {expected}")
    return data


def _fatal_warning(caught: list[warnings.WarningMessage]) -> str | None:
    """The message of the first warning meaning the file is truncated or broken, if any."""
    for warning in caught:
        message = str(warning.message)
        if any(fragment in message for fragment in _FATAL_WARNING_FRAGMENTS):
            return " ".join(message.split())
    return None


def _report_warnings(path: Path, caught: list[warnings.WarningMessage]) -> None:
    """One log line for what astropy said while reading a usable file.

    Cards it fixed or could not verify are logged, instead of its warnings on the terminal.
    """
    said = [
        " ".join(str(w.message).split())
        for w in caught
        # astropy's remarks on the file only: not a resource warning of another file
        # closed meanwhile (the garbage collector runs at any time).
        if issubclass(w.category, AstropyWarning) and not issubclass(w.category, FITSFixedWarning)
    ]
    if said:
        more = f" (and {len(said) - 1} more)" if len(said) > 1 else ""
        log.warning("%s: header not quite standard, read as it is: %s%s", path, said[0], more)


def merge_headers(primary: fits.Header, image: fits.Header, *, path: Path) -> fits.Header:
    """Primary header updated with the image header, without structural keywords.

    As astropy's ``header[keyword] = (value, comment)`` for each card in turn would give it:
    each keyword where it first appears, with its last value; the commentary cards (COMMENT,
    HISTORY) after them, in order. Built as one list of cards (half the time).

    Raises
    ------
    FFIError
        ``corrupt header`` when a card cannot be parsed (astropy would raise its VerifyError).
    """
    position: dict[str, int] = {}
    cards: list[fits.Card] = []
    commentary: list[fits.Card] = []
    for source in (primary, image):
        for card in source.cards:
            keyword = card.keyword
            if keyword in _STRUCTURAL_KEYWORDS or not keyword:  # blank cards: layout only
                continue
            try:
                if keyword in _COMMENTARY_KEYWORDS:
                    commentary.append(fits.Card(keyword, card.value))
                    continue
                merged = fits.Card(keyword, card.value, card.comment)
            except VerifyError:
                raise FFIError(
                    path, f"corrupt header: the card of {keyword} cannot be parsed"
                ) from None
            if keyword in position:
                cards[position[keyword]] = merged
            else:
                position[keyword] = len(cards)
                cards.append(merged)
    return fits.Header(cards + commentary)
