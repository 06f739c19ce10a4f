"""Reader for SPOC target pixel files (TPFs).

A SPOC TPF holds the pixels of one target at 120-s (``*-s_tp.fits``) or 20-s
(``*_fast-tp.fits``) cadence: a primary header (target, sector, camera, CCD, data
release), the ``PIXELS`` table (per cadence ``TIME`` [BTJD], ``TIMECORR`` [d],
``CADENCENO``, the calibrated and background-subtracted ``FLUX`` [e-/s] with ``FLUX_ERR``,
the subtracted ``FLUX_BKG``, ``QUALITY`` and the local image motion ``POS_CORR1/2`` [px])
and the ``APERTURE`` image (SPOC's pixel bitmask, with the WCS of the pixels and their CCD
position in ``CRVAL1P``/``CRVAL2P``). Early data-alert TPFs
(``hlsp_tess-data-alerts_*_tp.fits``) have the same layout.

Pixel positions follow tessphot's convention (:mod:`tessphot.constants`): 0-based
science-area ``(row, column)``. SPOC's aperture bits: 1 collected, 2 in the optimal
(photometric) aperture, 4 used for the background, 8 in the centroid aperture, 32-256
CCD output A-D.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyError, VerifyWarning
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS, FITSFixedWarning

from tessphot.constants import FIRST_SCIENCE_CCD_COLUMN, FIRST_SCIENCE_CCD_ROW
from tessphot.io.errors import FileProblem
from tessphot.io.fits_headers import GZIP_ERRORS, gunzip
from tessphot.io.names import TPF_NAME_PATTERN, TPFName, parse_tpf_name
from tessphot.io.recognise import Kind, find_tpfs, require

__all__ = [
    "TPF_CADENCES",
    "TPF_NAME_PATTERN",
    "TPFError",
    "TPFName",
    "TargetPixelFile",
    "find_tpfs",
    "parse_tpf_name",
    "read_tpf",
]

#: Cadences of target pixel data [s].
TPF_CADENCES = (20, 120)
#: First byte pair of a gzip stream.
GZIP_MAGIC = b"\x1f\x8b"
#: Seconds per day.
SECONDS_PER_DAY = 86400.0
#: Keywords describing the PIXELS table's structure and columns (left out of the header).
TABLE_KEYWORD_PATTERN = re.compile(
    r"^(XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|TFIELDS|EXTNAME|EXTVER|INHERIT|CHECKSUM|DATASUM"
    r"|(TTYPE|TFORM|TUNIT|TDISP|TDIM|TNULL|TSCAL|TZERO)\d+|(WCSN|WCAX)\d+P?|\d+[A-Z]+\d+P?)$"
)
#: Columns of the PIXELS table that photometry needs.
REQUIRED_COLUMNS = ("TIME", "TIMECORR", "CADENCENO", "FLUX", "FLUX_ERR", "FLUX_BKG", "QUALITY")


#: The pixel cubes of the PIXELS table that are read.
PIXEL_CUBES = ("FLUX", "FLUX_ERR", "FLUX_BKG")


class TPFError(FileProblem):
    """A file cannot be read as a TESS target pixel file."""


@dataclass(frozen=True, eq=False)
class TargetPixelFile:
    """The content of a TPF that photometry uses.

    Attributes
    ----------
    path : pathlib.Path
    starid, sector, camera, ccd : int
    cadence : int
        Cadence [s] (``TIMEDEL``): 120 or 20.
    data_rel : int or None
    procver : str or None
    header : astropy.io.fits.Header
        Primary header updated with the PIXELS table's keywords (column keywords left out).
    time, timecorr : ndarray, shape (N,)
        Mid-cadence time [BTJD] as delivered, and the barycentric correction applied to it [d].
    cadenceno, quality : ndarray of int, shape (N,)
    flux, flux_err, flux_bkg : ndarray of float32, shape (N, rows, cols)
        Background-subtracted flux, its uncertainty and the subtracted background [e-/s];
        None when read without pixels.
    pos_corr_column, pos_corr_row : ndarray, shape (N,)
        SPOC's local image motion (``POS_CORR1``, ``POS_CORR2``) [px].
    aperture : ndarray of int32, shape (rows, cols)
        SPOC's aperture bitmask.
    aperture_header : astropy.io.fits.Header
        Header of the APERTURE image.
    origin : (int, int)
        Science-area ``(row, column)`` of pixel ``[0, 0]`` (may be negative for pixels in
        the collateral columns).
    wcs : astropy.wcs.WCS
        WCS of the pixels: array pixel ``[y, x]`` is WCS pixel ``(x, y)`` (0-based).
    """

    path: Path
    starid: int
    sector: int
    camera: int
    ccd: int
    cadence: int
    data_rel: int | None
    procver: str | None
    header: fits.Header
    time: np.ndarray
    timecorr: np.ndarray
    cadenceno: np.ndarray
    quality: np.ndarray
    flux: np.ndarray | None
    flux_err: np.ndarray | None
    flux_bkg: np.ndarray | None
    pos_corr_column: np.ndarray
    pos_corr_row: np.ndarray
    aperture: np.ndarray
    aperture_header: fits.Header
    origin: tuple[int, int]
    wcs: WCS

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the pixels."""
        return self.aperture.shape

    @property
    def collected(self) -> np.ndarray:
        """Pixels SPOC collected (aperture bit 1)."""
        return (self.aperture & 1) > 0

    @property
    def optimal_aperture(self) -> np.ndarray:
        """SPOC's optimal (photometric) aperture (bit 2)."""
        return (self.aperture & 2) > 0

    @property
    def background_pixels(self) -> np.ndarray:
        """Pixels SPOC used for the background (bit 4)."""
        return (self.aperture & 4) > 0


def read_tpf(path: str | os.PathLike[str], pixels: bool = True) -> TargetPixelFile:
    """Read a SPOC target pixel file.

    Parameters
    ----------
    path : str or os.PathLike
        The file (``.fits`` or ``.fits.gz``).
    pixels : bool
        Read the pixel cubes (False: only headers, times, quality and the aperture, e.g.
        for building the task list).

    Raises
    ------
    TPFError
        For a missing, truncated or corrupt file (diagnosed from its headers first:
        :func:`tessphot.io.recognise.require`), or one that is not a TPF (no PIXELS
        table or columns missing, no APERTURE image, no CAMERA/CCD, a cadence other than
        20 or 120 s, pixel cubes not matching the aperture). The message names the file
        and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise TPFError(path, "file not found")
    require(path, Kind.TPF, TPFError)
    raw = path.read_bytes()
    if raw[: len(GZIP_MAGIC)] == GZIP_MAGIC:
        # Decompressed in full here: astropy silently drops the HDUs of a truncated .gz.
        try:
            raw = gunzip(raw)
        except GZIP_ERRORS as err:
            raise TPFError(path, f"truncated or corrupt gzip file ({err})") from None
    try:
        with warnings.catch_warnings():
            # Damage was diagnosed by require(); what astropy still has to say about single
            # cards or the WCS is not for the user's terminal.
            for category in (FITSFixedWarning, VerifyWarning, AstropyUserWarning):
                warnings.simplefilter("ignore", category)
            with fits.open(io.BytesIO(raw), memmap=False) as hdul:
                return _read(path, hdul, pixels)
    except TPFError:
        raise
    except VerifyError as err:  # a card that cannot be parsed
        raise TPFError(path, f"corrupt header: {' '.join(str(err).split())}") from None
    except (OSError, EOFError, ValueError, TypeError, KeyError, IndexError) as err:
        message = " ".join(str(err).split())
        raise TPFError(
            path, f"truncated or corrupt FITS file ({type(err).__name__}: {message})"
        ) from None


def _read(path: Path, hdul: fits.HDUList, pixels: bool) -> TargetPixelFile:
    """The target pixel file from an open HDU list (every check in the documented order)."""
    table, columns = _pixels_table(path, hdul)
    header = _merged_header(path, hdul[0].header, table)
    cadence = _cadence(path, header)
    data = table.data
    aperture_hdu = hdul["APERTURE"]
    aperture = np.asarray(aperture_hdu.data)
    if aperture.ndim != 2:
        raise TPFError(path, f"APERTURE is not a 2-D image ({aperture.ndim} axes)")
    aperture = aperture.astype(np.int32)
    cubes = _cubes(path, data, aperture.shape) if pixels else dict.fromkeys(PIXEL_CUBES)
    aperture_header = aperture_hdu.header.copy()
    origin = _origin(path, aperture_header)
    wcs = _wcs(path, aperture_header)
    n = len(data)

    def column(name: str, dtype) -> np.ndarray:
        if name.upper() in columns:
            return np.asarray(data[name], dtype=dtype)
        return np.full(n, np.nan, dtype=dtype)

    procver = header.get("PROCVER")
    data_rel = header.get("DATA_REL")
    return TargetPixelFile(
        path=path,
        starid=int(header["TICID"]),
        sector=int(header["SECTOR"]),
        camera=int(header["CAMERA"]),
        ccd=int(header["CCD"]),
        cadence=cadence,
        data_rel=int(data_rel) if isinstance(data_rel, int | np.integer) else None,
        procver=str(procver).strip() if procver else None,
        header=header,
        time=column("TIME", np.float64),
        timecorr=column("TIMECORR", np.float64),
        cadenceno=np.asarray(data["CADENCENO"], dtype=np.int32),
        quality=np.asarray(data["QUALITY"], dtype=np.int32),
        flux=cubes["FLUX"],
        flux_err=cubes["FLUX_ERR"],
        flux_bkg=cubes["FLUX_BKG"],
        pos_corr_column=column("POS_CORR1", np.float64),
        pos_corr_row=column("POS_CORR2", np.float64),
        aperture=aperture,
        aperture_header=aperture_header,
        origin=origin,
        wcs=wcs,
    )


def _pixels_table(path: Path, hdul: fits.HDUList) -> tuple[fits.BinTableHDU, list[str]]:
    """The PIXELS table and its column names (upper case), checked."""
    names = [hdu.name for hdu in hdul]
    if "PIXELS" not in names:
        raise TPFError(path, "not a target pixel file: no PIXELS table")
    if "APERTURE" not in names:
        raise TPFError(path, "not a target pixel file: no APERTURE image")
    table = hdul["PIXELS"]
    columns = [c.upper() for c in table.columns.names]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise TPFError(path, f"PIXELS table without column(s) {', '.join(missing)}")
    return table, columns


def _merged_header(path: Path, primary: fits.Header, table: fits.BinTableHDU) -> fits.Header:
    """The primary header with the PIXELS table's keywords; CAMERA, CCD, SECTOR, TICID checked."""
    header = primary.copy()
    for card in table.header.cards:
        if card.keyword and not TABLE_KEYWORD_PATTERN.match(card.keyword):
            header[card.keyword] = (card.value, card.comment)
    for keyword in ("CAMERA", "CCD", "SECTOR", "TICID"):
        if not isinstance(header.get(keyword), int | np.integer):
            raise TPFError(path, f"not a target pixel file: keyword {keyword} missing or invalid")
    return header


def _cadence(path: Path, header: fits.Header) -> int:
    """The cadence [s] from TIMEDEL: 20 or 120."""
    timedel = header.get("TIMEDEL")
    if not isinstance(timedel, float | int):
        raise TPFError(path, "keyword TIMEDEL (the cadence) missing")
    cadence = int(round(float(timedel) * SECONDS_PER_DAY))
    if cadence not in TPF_CADENCES:
        raise TPFError(path, f"invalid cadence {cadence} s: must be either 20 or 120")
    return cadence


def _cubes(path: Path, data, shape: tuple[int, ...]) -> dict[str, np.ndarray | None]:
    """The pixel cubes (:data:`PIXEL_CUBES`), each checked against the aperture's shape."""
    cubes: dict[str, np.ndarray | None] = {}
    for name in PIXEL_CUBES:
        cube = np.asarray(data[name], dtype=np.float32)
        if cube.shape[1:] != shape:
            raise TPFError(
                path,
                f"{name} pixels of shape {cube.shape[1:]} do not match the APERTURE image {shape}",
            )
        cubes[name] = cube
    return cubes


def _wcs(path: Path, aperture_header: fits.Header) -> WCS:
    """The celestial WCS of the APERTURE image."""
    try:
        wcs = WCS(aperture_header, relax=True).celestial
    except (ValueError, KeyError) as err:
        raise TPFError(path, f"no usable WCS in the APERTURE header ({err})") from None
    if not wcs.has_celestial:
        raise TPFError(path, "no celestial WCS in the APERTURE header")
    return wcs


def _origin(path: Path, header: fits.Header) -> tuple[int, int]:
    """Science (row, column) of the first pixel, from the physical WCS of the APERTURE."""
    try:
        col = int(header["CRVAL1P"]) + 1 - int(header.get("CRPIX1P", 1))
        row = int(header["CRVAL2P"]) + 1 - int(header.get("CRPIX2P", 1))
    except (KeyError, ValueError, TypeError):
        raise TPFError(path, "APERTURE header without the CCD position (CRVAL1P/CRVAL2P)") from None
    return row - FIRST_SCIENCE_CCD_ROW, col - FIRST_SCIENCE_CCD_COLUMN
