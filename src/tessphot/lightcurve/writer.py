"""Writing light curves in the TASOC light-curve FITS format (``FILEVER = '1.5'``).

The layout is the original TASOC pipeline's (§4.5 of the notes; the reference is a TASOC
file published at MAST), so that tools reading TASOC light curves (lightkurve, the TASOC
corrections and data-validation pipelines) read ours:

* ``PRIMARY``: no data; target, observation and processing keywords, the method's settings
  as keywords (e.g. ``KP_*``) and every tunable setting used as ``HISTORY`` cards.
* ``LIGHTCURVE``: one row per time stamp with the original's columns, formats and units.
* ``SUMIMAGE`` (mean image of the stamp) and ``APERTURE`` (bitmask), with the stamp's WCS.
* ``WEIGHTMAP`` (Halo photometry only).

Differences from the original, all deliberate: ``ORIGIN`` and ``PROCVER`` name tessphot;
rows with a non-finite time are dropped from *every* column (the original built ``QUALITY``
before dropping them); the exposure keywords (``DEADC`` and what follows from it) use the
formula of §4.5, not the underestimated values of TASOC's data release 5; the stamp images
also carry SPOC's physical WCS keywords (``CRVAL1P``/``CRVAL2P``: 1-based CCD column and row
of the first stamp pixel); the file is written under a temporary name and renamed into place.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS

from tessphot.constants import (
    BTJD_OFFSET,
    CR_BLOCK_SIZE,
    FIRST_SCIENCE_CCD_COLUMN,
    FIRST_SCIENCE_CCD_ROW,
    FRAME_TIME,
    INTEGRATION_TIME,
    OUTPUT_WIDTH,
    READOUT_TIME,
)
from tessphot.geometry import shift_wcs
from tessphot.lightcurve.products import LightCurveColumns, StampImages, TableExtension
from tessphot.paths import atomic_path
from tessphot.version import PIPELINE_NAME, __version__

#: Version of the file layout.
FILEVER = "1.5"
#: Value of ``ORIGIN``.
ORIGIN = PIPELINE_NAME
#: Value of ``PROCVER``.
PROCVER = f"{PIPELINE_NAME}-{__version__}"
#: Seconds per day.
SECONDS_PER_DAY = 86400.0
#: Integer part of the BTJD reference date (BJD - BTJD) [d].
BJDREFI = int(BTJD_OFFSET)
#: Offset between JD and MJD [d].
MJD_OFFSET = 2400000.5
#: Frames discarded per cosmic-ray mitigation block (the highest and the lowest).
CR_DISCARDED_PER_BLOCK = 2
#: Prefix of the HISTORY cards recording the settings.
SETTINGS_HISTORY_PREFIX = "tessphot setting "
#: Prefix of the HISTORY cards continuing a long setting.
SETTINGS_CONTINUATION_PREFIX = "tessphot setting+ "
#: Longest text of one HISTORY card.
_HISTORY_LENGTH = 72

#: The LIGHTCURVE columns: (name, TFORM, TDISP, TUNIT), exactly as in TASOC's files.
LIGHTCURVE_COLUMNS = (
    ("TIME", "D", "D14.7", "BJD - 2457000, days"),
    ("TIMECORR", "E", "E13.6", "d"),
    ("CADENCENO", "J", "I10", None),
    ("FLUX_RAW", "D", "E26.17", "e-/s"),
    ("FLUX_RAW_ERR", "D", "E26.17", "e-/s"),
    ("FLUX_BKG", "D", "E26.17", "e-/s"),
    ("FLUX_CORR", "D", "E26.17", "ppm"),
    ("FLUX_CORR_ERR", "D", "E26.17", "ppm"),
    ("QUALITY", "J", "B16.16", None),
    ("PIXEL_QUALITY", "J", "B16.16", None),
    ("MOM_CENTR1", "D", "F10.5", "pixels"),
    ("MOM_CENTR2", "D", "F10.5", "pixels"),
    ("POS_CORR1", "D", "F14.7", "pixels"),
    ("POS_CORR2", "D", "F14.7", "pixels"),
)


class ApertureBits:
    """Bits of the ``APERTURE`` image (§4.5 of the notes)."""

    #: Pixel collected (FFI: finite sum image).
    COLLECTED = 1
    #: Pixel in the photometric mask.
    PHOTOMETRIC = 2
    #: Pixel used for the background estimate.
    BACKGROUND = 4
    #: Pixel in the position (centroid) mask.
    CENTROID = 8
    #: CCD outputs A, B, C, D (by science column, :data:`OUTPUT_WIDTH` columns each).
    OUTPUTS = (32, 64, 128, 256)


@dataclass(frozen=True)
class TargetInfo:
    """The target, from the catalog.

    Attributes
    ----------
    starid : int
        TIC number.
    ra, dec : float
        J2000 (catalog epoch) right ascension and declination [deg].
    tmag : float
        TESS magnitude.
    pm_ra, pm_dec : float or None
        Proper motion [mas/yr]; ``pm_ra`` includes cos(dec).
    teff : float or None
        Effective temperature [K].
    ticver : str, int or None
        Version of the TESS Input Catalog.
    """

    starid: int
    ra: float
    dec: float
    tmag: float
    pm_ra: float | None = None
    pm_dec: float | None = None
    teff: float | None = None
    ticver: str | int | None = None


@dataclass(frozen=True)
class ObservationInfo:
    """Sector, detector and exposure structure of the data.

    Attributes
    ----------
    sector, camera, ccd : int
    cadence : float
        Time between two cadences [s] (1800, 600, 200 for FFIs; 120, 20 for TPFs).
    data_rel : int
        SPOC data release of the input data.
    crmiten : bool
        Spacecraft cosmic-ray mitigation enabled.
    crblksz : int
        Cosmic-ray mitigation block size [frames].
    crspoc : bool
        SPOC cosmic-ray cleaning enabled.
    num_frm : int or None
        Frames per cadence; None: ``cadence / FRAME_TIME``.
    nreadout : int or None
        Frames co-added per cadence; None: ``num_frm`` less the frames dropped by the
        cosmic-ray mitigation.
    """

    sector: int
    camera: int
    ccd: int
    cadence: float
    data_rel: int
    crmiten: bool = True
    crblksz: int = CR_BLOCK_SIZE
    crspoc: bool = False
    num_frm: int | None = None
    nreadout: int | None = None

    @property
    def frames(self) -> int:
        """Frames per cadence (``NUM_FRM``)."""
        if self.num_frm is not None:
            return int(self.num_frm)
        return round(self.cadence / FRAME_TIME)

    @property
    def readouts(self) -> int:
        """Frames co-added per cadence (``NREADOUT``)."""
        if self.nreadout is not None:
            return int(self.nreadout)
        return round(self.frames * self.kept_fraction)

    @property
    def kept_fraction(self) -> float:
        """Fraction of the frames kept by the cosmic-ray mitigation."""
        if not self.crmiten:
            return 1.0
        return (self.crblksz - CR_DISCARDED_PER_BLOCK) / self.crblksz

    @property
    def deadc(self) -> float:
        """Dead-time correction: fraction of the time that photons are collected and kept."""
        return INTEGRATION_TIME / FRAME_TIME * self.kept_fraction


def lightcurve_path(
    output_folder: str | os.PathLike[str],
    starid: int,
    sector: int,
    camera: int,
    ccd: int,
    cadence: int,
    datarel: int,
    version: int,
) -> Path:
    """Where a light curve goes: the original's folders and file name (§4.1 of the notes).

    ``<output>/c{cadence:04d}/{TIC:011d}[:5]/tess{TIC:011d}-s{sector:03d}-{camera}-{ccd}-
    c{cadence:04d}-dr{datarel:02d}-v{version:02d}-tasoc_lc.fits.gz``
    """
    tic = f"{int(starid):011d}"
    name = (
        f"tess{tic}-s{int(sector):03d}-{int(camera)}-{int(ccd)}-c{int(cadence):04d}"
        f"-dr{int(datarel):02d}-v{int(version):02d}-tasoc_lc.fits.gz"
    )
    return Path(output_folder) / f"c{int(cadence):04d}" / tic[:5] / name


def stamp_wcs(wcs: WCS, stamp_origin: tuple[int, int], shape: tuple[int, int]) -> WCS:
    """The WCS of a stamp cut from the science area.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        WCS of the science area (0-based science pixel coordinates).
    stamp_origin : (int, int)
        Science (row, column) of the stamp's first pixel.
    shape : (int, int)
        (rows, columns) of the stamp.
    """
    out = shift_wcs(wcs, -stamp_origin[0], -stamp_origin[1])
    out.pixel_shape = (shape[1], shape[0])
    return out


def aperture_image(
    shape: tuple[int, int],
    stamp_origin: tuple[int, int],
    *,
    collected=None,
    photometric=None,
    background=None,
    centroid=None,
) -> np.ndarray:
    """The ``APERTURE`` bitmask of a stamp (bits in :class:`ApertureBits`).

    Parameters
    ----------
    shape : (int, int)
        (rows, columns) of the stamp.
    stamp_origin : (int, int)
        Science (row, column) of the stamp's first pixel; sets the CCD-output bits.
    collected, photometric, background, centroid : array_like of bool, optional
        Pixels collected, in the photometric mask, used for the background, and in the
        position mask.

    Returns
    -------
    numpy.ndarray of int32
    """
    image = np.zeros(shape, dtype=np.int32)
    for bit, mask in (
        (ApertureBits.COLLECTED, collected),
        (ApertureBits.PHOTOMETRIC, photometric),
        (ApertureBits.BACKGROUND, background),
        (ApertureBits.CENTROID, centroid),
    ):
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != tuple(shape):
                raise ValueError(f"aperture mask of shape {mask.shape}, stamp is {shape}")
            image[mask] |= bit
    columns = stamp_origin[1] + np.arange(shape[1])
    output = np.clip(columns // OUTPUT_WIDTH, 0, len(ApertureBits.OUTPUTS) - 1)
    image |= np.asarray(ApertureBits.OUTPUTS, dtype=np.int32)[output][np.newaxis, :]
    return image


def write_lightcurve(
    path: str | os.PathLike[str],
    columns: LightCurveColumns,
    images: StampImages,
    *,
    target: TargetInfo,
    observation: ObservationInfo,
    method: str,
    version: int,
    header_cards: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    overwrite: bool = True,
    compresslevel: int | None = None,
) -> Path:
    """Write a light curve in the TASOC FITS format, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file; gzip-compressed if it ends in ``.gz`` (see :func:`lightcurve_path`).
    columns : LightCurveColumns
        The light curve. ``time``: barycentric mid-exposure times of the target, BTJD (TDB)
        [d] (rows where it is not finite are left out of the file, all columns alike);
        ``flux``, ``flux_err``, ``flux_bkg`` [e-/s]; ``timecorr``: barycentric correction
        applied [d]; ``quality``: TASOC corrector flags; ``pixel_quality``: TESS flags;
        ``centroid_row``/``centroid_column``: in tessphot's 0-based science-area
        coordinates, written as ``MOM_CENTR2``/``MOM_CENTR1`` in 1-based CCD coordinates;
        ``pos_corr_row``/``pos_corr_column``: image motion at the target [px].
    images : StampImages
        The average image, the ``APERTURE`` bitmask (see :func:`aperture_image`), the
        stamp's origin, the WCS of the science area (a WCS, its ``to_header(relax=True)``
        or that header's cards as ``(key, value, comment)``, the fastest when many light
        curves share it; written shifted to the stamp) and extra extensions.
    target : TargetInfo
    observation : ObservationInfo
    method : str
        Photometric method used (``PHOTMET``): ``aperture``, ``halo``, ``psf``, ``linpsf``.
    version : int
        Version of the processing (``VERSION``).
    header_cards : mapping, optional
        The method's primary-header keywords (at most 8 characters), ``{key: value}`` or
        ``{key: (value, comment)}``, e.g. the ``KP_*`` settings and ``AP_CONT``.
    settings : mapping, optional
        Every tunable setting used (nested mappings are flattened with dots), written as
        ``HISTORY`` cards; read back with :func:`settings_from_header`.
    overwrite : bool
        Replace an existing file (the default: failed targets are re-run).
    compresslevel : int, optional
        gzip level (1 fastest to 9 smallest) of a ``.gz`` file; default astropy's (9).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        For columns of different lengths, images of the wrong shape, no finite time, or an
        invalid or clashing method keyword.
    FileExistsError
        If the file exists and ``overwrite`` is false.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: light curve exists")
    sumimage = np.asarray(images.sumimage, dtype=np.float64)
    aperture = np.asarray(images.aperture)
    stamp_origin = images.stamp_origin
    if sumimage.ndim != 2 or aperture.shape != sumimage.shape:
        raise ValueError(
            f"sumimage {sumimage.shape} and aperture {aperture.shape} must be the same 2-D shape"
        )
    if not np.issubdtype(aperture.dtype, np.integer):
        raise ValueError(f"aperture must be an integer bitmask, not {aperture.dtype}")

    table = _columns(**columns.as_dict())
    wcs = images.wcs
    method_keywords = header_cards
    images_wcs = None if wcs is None else _stamp_wcs_header(wcs, stamp_origin, sumimage.shape)
    if not images.extensions:
        content = _serialise(
            _primary_cards(target, observation, method, version, method_keywords, settings, 3),
            table,
            _lightcurve_cards(table, observation),
            sumimage,
            aperture.astype(np.int32),
            _stamp_cards("SUMIMAGE", images_wcs, stamp_origin),
            _stamp_cards("APERTURE", images_wcs, stamp_origin),
        )
        _write_atomically(path, content, compresslevel)
        return path
    hdus = [
        fits.PrimaryHDU(
            header=_primary_header(
                target,
                observation,
                method,
                version,
                method_keywords,
                settings,
                nextend=3 + len(images.extensions),
            )
        ),
        _lightcurve_hdu(table, observation),
        _image_hdu("SUMIMAGE", sumimage, images_wcs, stamp_origin),
        _image_hdu("APERTURE", aperture.astype(np.int32), images_wcs, stamp_origin),
    ]
    hdus.extend(_table_hdu(ext, images_wcs, stamp_origin) for ext in images.extensions)

    _remove_stale_temporaries(path)
    suffix = ".fits.gz" if path.name.endswith(".gz") else ".fits"
    with atomic_path(path, suffix=f".tmp{suffix}") as tmp:
        if suffix == ".fits.gz" and compresslevel is not None:
            buffer = io.BytesIO()
            # The cards were built by astropy itself: verifying them again only costs time.
            fits.HDUList(hdus).writeto(buffer, checksum=True, output_verify="ignore")
            with (
                open(tmp, "wb") as raw,
                gzip.GzipFile(
                    filename=path.name[: -len(".gz")],
                    mode="wb",
                    fileobj=raw,
                    compresslevel=int(compresslevel),
                ) as out,
            ):
                out.write(buffer.getbuffer())
        else:
            fits.HDUList(hdus).writeto(tmp, checksum=True, overwrite=True)
    return path


def _remove_stale_temporaries(path: Path) -> None:
    """Remove the temporary files of this light curve left by an earlier attempt that was
    killed (a task runs in one process at a time)."""
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp*"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


def _write_atomically(path: Path, content: bytes, compresslevel: int | None) -> None:
    """Write bytes (gzip-compressed for a ``.gz`` name) under a temporary name, then rename."""
    _remove_stale_temporaries(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        if path.name.endswith(".gz"):
            level = DEFAULT_GZIP_LEVEL if compresslevel is None else int(compresslevel)
            with gzip.GzipFile(
                filename=path.name[: -len(".gz")], mode="wb", fileobj=raw, compresslevel=level
            ) as out:
                out.write(content)
        else:
            raw.write(content)


def settings_from_header(header: fits.Header) -> dict[str, Any]:
    """The settings recorded in the ``HISTORY`` cards of a light curve's primary header."""
    entries: list[str] = []
    for card in header.get("HISTORY", []):
        text = str(card)
        if text.startswith(SETTINGS_HISTORY_PREFIX):
            entries.append(text[len(SETTINGS_HISTORY_PREFIX) :])
        elif entries and text.startswith(SETTINGS_CONTINUATION_PREFIX):
            entries[-1] += text[len(SETTINGS_CONTINUATION_PREFIX) :]
    settings = {}
    for entry in entries:
        key, _, value = entry.partition(" = ")
        settings[key] = json.loads(value)
    return settings


# --------------------------------------------------------------------------------------------
# Direct serialisation: the same file astropy writes, without its per-card machinery (which
# cost most of the time of a light curve).

#: Bytes per FITS block and per header card.
FITS_BLOCK = 2880
FITS_CARD = 80
#: gzip level when none is given (astropy's).
DEFAULT_GZIP_LEVEL = 9
#: Characters the ASCII checksum encoding must avoid (FITS checksum convention, A.7.2).
_CHECKSUM_EXCLUDE = frozenset(range(0x3A, 0x41)) | frozenset(range(0x5B, 0x61))
#: numpy dtypes (big-endian) of the binary-table formats used.
_TFORM_DTYPES = {"D": ">f8", "E": ">f4", "J": ">i4"}


@lru_cache(maxsize=8192)
def _card_image(key: str, value: Any = None, comment: str | None = None) -> str:
    """The 80-character image of a card (astropy's formatting, cached: most cards repeat)."""
    if key in ("HISTORY", "COMMENT"):
        return fits.Card(key, value).image
    return fits.Card(key, value, comment or "").image


def _ones_complement_sum(data: bytes, start: int = 0) -> int:
    """32-bit ones'-complement sum of big-endian words (FITS checksum convention)."""
    total = int(start) + int(np.frombuffer(data, dtype=">u4").sum(dtype=np.uint64))
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


def _encode_checksum(value: int) -> str:
    """The 16-character ASCII encoding of a checksum (FITS checksum convention, A.7.2)."""
    asc = [0] * 16
    for i in range(4):
        byte = (value >> (24 - 8 * i)) & 0xFF
        quotient, remainder = byte // 4 + ord("0"), byte % 4
        ch = [quotient + remainder, quotient, quotient, quotient]
        changed = True
        while changed:
            changed = False
            for j in (0, 2):
                if ch[j] in _CHECKSUM_EXCLUDE or ch[j + 1] in _CHECKSUM_EXCLUDE:
                    ch[j] += 1
                    ch[j + 1] -= 1
                    changed = True
        for j in range(4):
            asc[4 * j + i] = ch[j]
    text = bytes(asc).decode("ascii")
    return text[-1] + text[:-1]


def _hdu(cards: list[tuple], data: bytes, when: str) -> bytes:
    """One HDU: header (with CHECKSUM and DATASUM) and data, padded to FITS blocks."""
    padded = data + b"\0" * (-len(data) % FITS_BLOCK)
    datasum = _ones_complement_sum(padded)
    images = [_card_image(*card) for card in cards]
    images.append(_card_image("CHECKSUM", "0" * 16, f"HDU checksum updated {when}"))
    images.append(_card_image("DATASUM", str(datasum), f"data unit checksum updated {when}"))
    images.append("END".ljust(FITS_CARD))
    header = "".join(images)
    header += " " * (-len(header) % FITS_BLOCK)
    raw = header.encode("ascii")
    checksum = _encode_checksum(~_ones_complement_sum(raw, datasum) & 0xFFFFFFFF)
    at = raw.index(b"CHECKSUM= '") + len("CHECKSUM= '")
    raw = raw[:at] + checksum.encode("ascii") + raw[at + 16 :]
    return raw + padded


def _serialise(
    primary: list[tuple],
    columns: dict[str, np.ndarray],
    lightcurve: list[tuple],
    sumimage: np.ndarray,
    aperture: np.ndarray,
    sumimage_cards: list[tuple],
    aperture_cards: list[tuple],
) -> bytes:
    """The light-curve file (primary, LIGHTCURVE, SUMIMAGE, APERTURE) as bytes."""
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    parts = [
        _hdu(
            [
                ("SIMPLE", True, "conforms to FITS standard"),
                ("BITPIX", 8, "array data type"),
                ("NAXIS", 0, "number of array dimensions"),
                ("EXTEND", True, ""),
                *primary,
            ],
            b"",
            when,
        )
    ]
    dtype = np.dtype([(name, _TFORM_DTYPES[tform]) for name, tform, _, _ in LIGHTCURVE_COLUMNS])
    table = np.empty(len(columns["TIME"]), dtype=dtype)
    structure: list[tuple] = [
        ("XTENSION", "BINTABLE", "binary table extension"),
        ("BITPIX", 8, "array data type"),
        ("NAXIS", 2, "number of array dimensions"),
        ("NAXIS1", dtype.itemsize, "length of dimension 1"),
        ("NAXIS2", table.size, "length of dimension 2"),
        ("PCOUNT", 0, "number of group parameters"),
        ("GCOUNT", 1, "number of groups"),
        ("TFIELDS", len(LIGHTCURVE_COLUMNS), "number of table fields"),
    ]
    for k, (name, tform, tdisp, unit) in enumerate(LIGHTCURVE_COLUMNS, start=1):
        table[name] = columns[name]
        structure.append((f"TTYPE{k}", name, ""))
        structure.append((f"TFORM{k}", tform, ""))
        if unit is not None:
            structure.append((f"TUNIT{k}", unit, ""))
        structure.append((f"TDISP{k}", tdisp, ""))
    structure.append(("EXTNAME", "LIGHTCURVE", "extension name"))
    parts.append(
        _hdu(structure + [c for c in lightcurve if c[0] != "EXTNAME"], table.tobytes(), when)
    )
    for image, cards, bitpix, dtype_ in (
        (sumimage, sumimage_cards, -64, ">f8"),
        (aperture, aperture_cards, 32, ">i4"),
    ):
        rows, cols = image.shape
        parts.append(
            _hdu(
                [
                    ("XTENSION", "IMAGE", "Image extension"),
                    ("BITPIX", bitpix, "array data type"),
                    ("NAXIS", 2, "number of array dimensions"),
                    ("NAXIS1", cols, ""),
                    ("NAXIS2", rows, ""),
                    ("PCOUNT", 0, "number of parameters"),
                    ("GCOUNT", 1, "number of groups"),
                    *cards,
                ],
                np.ascontiguousarray(image, dtype=dtype_).tobytes(),
                when,
            )
        )
    return b"".join(parts)


# --------------------------------------------------------------------------------------------
# Building blocks


def _columns(**given) -> dict[str, np.ndarray]:
    """The table columns, validated, with the non-finite-time rows removed."""
    time = np.asarray(given["time"], dtype=np.float64)
    if time.ndim != 1:
        raise ValueError(f"time must be 1-D, not of shape {time.shape}")
    n = time.size

    def column(name: str, dtype, default) -> np.ndarray:
        value = given[name]
        if value is None:
            return np.full(n, default, dtype=dtype)
        array = np.asarray(value)
        if array.shape != (n,):
            raise ValueError(f"column {name} has shape {array.shape}, time has ({n},)")
        if np.issubdtype(np.dtype(dtype), np.integer) and not (
            np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.bool_)
        ):
            raise ValueError(f"column {name} must be integer, not {array.dtype}")
        return array.astype(dtype)

    centroid_row = column("centroid_row", np.float64, np.nan)
    centroid_column = column("centroid_column", np.float64, np.nan)
    table = {
        "TIME": time,
        "TIMECORR": column("timecorr", np.float32, 0.0),
        "CADENCENO": column("cadenceno", np.int32, 0),
        "FLUX_RAW": column("flux", np.float64, np.nan),
        "FLUX_RAW_ERR": column("flux_err", np.float64, np.nan),
        "FLUX_BKG": column("flux_bkg", np.float64, np.nan),
        "FLUX_CORR": np.full(n, np.nan),
        "FLUX_CORR_ERR": np.full(n, np.nan),
        "QUALITY": column("quality", np.int32, 0),
        "PIXEL_QUALITY": column("pixel_quality", np.int32, 0),
        "MOM_CENTR1": centroid_column + FIRST_SCIENCE_CCD_COLUMN,
        "MOM_CENTR2": centroid_row + FIRST_SCIENCE_CCD_ROW,
        "POS_CORR1": column("pos_corr_column", np.float64, np.nan),
        "POS_CORR2": column("pos_corr_row", np.float64, np.nan),
    }
    keep = np.isfinite(time)
    if not keep.any():
        raise ValueError("no finite time stamps: nothing to write")
    return {name: values[keep] for name, values in table.items()}


def _value(value: Any) -> Any:
    """A header value: numpy scalars to Python, None and NaN to an undefined value."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


def _primary_header(*args: Any, **kwargs: Any) -> fits.Header:
    """The primary header (see :func:`_primary_cards`)."""
    return fits.Header([fits.Card(*card) for card in _primary_cards(*args, **kwargs)])


def _primary_cards(
    target: TargetInfo,
    obs: ObservationInfo,
    method: str,
    version: int,
    method_keywords: Mapping[str, Any] | None,
    settings: Mapping[str, Any] | None,
    nextend: int,
) -> list[tuple]:
    """The cards of the primary header after the mandatory ones, as (key, value[, comment])."""
    pm_ra, pm_dec = _value(target.pm_ra), _value(target.pm_dec)
    pm_total = None if pm_ra is None or pm_dec is None else math.hypot(pm_ra, pm_dec)
    cards = [
        ("NEXTEND", nextend, "number of standard extensions"),
        ("EXTNAME", "PRIMARY", "name of extension"),
        ("ORIGIN", ORIGIN, "institution responsible for creating this file"),
        ("DATE", datetime.now(UTC).strftime("%Y-%m-%d"), "date the file was created"),
        ("TELESCOP", "TESS", "telescope"),
        ("INSTRUME", "TESS Photometer", "detector type"),
        ("FILTER", "TESS", "Photometric bandpass filter"),
        ("OBJECT", f"TIC {int(target.starid)}", "string version of TICID"),
        ("TICID", int(target.starid), "unique TESS target identifier"),
        ("CAMERA", int(obs.camera), "Camera number"),
        ("CCD", int(obs.ccd), "CCD number"),
        ("SECTOR", int(obs.sector), "Observing sector"),
        ("PROCVER", PROCVER, "Version of photometry pipeline"),
        ("FILEVER", FILEVER, "File format version"),
        ("DATA_REL", int(obs.data_rel), "Data release number"),
        ("VERSION", int(version), "Version of the processing"),
        ("PHOTMET", str(method), "Photometric method used"),
        ("RADESYS", "ICRS", "reference frame of celestial coordinates"),
        ("EQUINOX", 2000.0, "equinox of celestial coordinate system"),
        ("RA_OBJ", _value(target.ra), "[deg] Right ascension"),
        ("DEC_OBJ", _value(target.dec), "[deg] Declination"),
        ("PMRA", pm_ra, "[mas/yr] RA proper motion"),
        ("PMDEC", pm_dec, "[mas/yr] Dec proper motion"),
        ("PMTOTAL", pm_total, "[mas/yr] total proper motion"),
        ("TESSMAG", _value(target.tmag), "[mag] TESS magnitude"),
        ("TEFF", _value(target.teff), "[K] Effective temperature"),
        ("TICVER", _value(target.ticver), "TESS Input Catalog version"),
        ("CRMITEN", bool(obs.crmiten), "spacecraft cosmic ray mitigation enabled"),
        ("CRBLKSZ", int(obs.crblksz), "[exposures] s/c cosmic ray mitigation block siz"),
        ("CRSPOC", bool(obs.crspoc), "SPOC cosmic ray cleaning enabled"),
    ]
    # The header is built from a list of cards in one go: assigning keywords one by one
    # costs astropy a re-index per card (most of the time of writing a light curve).
    keys = {key for key, _, _ in cards}
    for key, entry in (method_keywords or {}).items():
        value, comment = entry if isinstance(entry, tuple) else (entry, "")
        key = str(key).upper()
        if len(key) > 8 or not key.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"invalid method keyword {key!r}: at most 8 letters, digits, _ or -")
        if key in keys or key == "DATAVAL":
            raise ValueError(f"method keyword {key!r} clashes with a standard keyword")
        keys.add(key)
        cards.append((key, _value(value), comment))
    cards.append(("DATAVAL", 0, "Data validation flags"))
    history: list[str] = []
    for key, value in _flatten(settings or {}).items():
        _add_setting(history, f"{key} = {json.dumps(value)}")
    return cards + [("HISTORY", text) for text in history]


def _add_setting(history: list[str], text: str) -> None:
    """Record one setting as HISTORY texts, split over continuation cards if long.

    FITS pads cards with spaces, so no card may end in a space: the text is split before
    spaces.
    """
    prefix = SETTINGS_HISTORY_PREFIX
    while text:
        room = _HISTORY_LENGTH - len(prefix)
        cut = len(text) if len(text) <= room else room
        while cut < len(text) and cut > 1 and text[cut - 1] == " ":
            cut -= 1
        history.append(prefix + text[:cut])
        text = text[cut:]
        prefix = SETTINGS_CONTINUATION_PREFIX


def _flatten(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            if isinstance(value, np.generic):
                value = value.item()
            elif isinstance(value, tuple | np.ndarray):
                value = np.asarray(value).tolist()
            flat[name] = value
    return flat


def _lightcurve_hdu(columns: dict[str, np.ndarray], obs: ObservationInfo) -> fits.BinTableHDU:
    cols = [
        fits.Column(name=name, format=tform, disp=tdisp, unit=unit, array=columns[name])
        for name, tform, tdisp, unit in LIGHTCURVE_COLUMNS
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="LIGHTCURVE")
    hdu.header["EXTNAME"] = ("LIGHTCURVE", "extension name")
    cards = _lightcurve_cards(columns, obs)
    hdu.header.extend([fits.Card(*card) for card in cards if card[0] != "EXTNAME"])
    return hdu


def _lightcurve_cards(columns: dict[str, np.ndarray], obs: ObservationInfo) -> list[tuple]:
    """The LIGHTCURVE header cards after the table structure (time and exposure)."""
    time = columns["TIME"]
    half = obs.cadence / SECONDS_PER_DAY / 2
    tstart = float(np.min(time) - half)
    tstop = float(np.max(time) + half)
    start, stop = Time(BJDREFI, [tstart, tstop], format="jd", scale="tdb")
    telapse = tstop - tstart
    deadc = obs.deadc
    cards = [
        ("INHERIT", True, "inherit the primary header"),
        ("EXTNAME", "LIGHTCURVE", "extension name"),
        ("TIMEREF", "SOLARSYSTEM", "barycentric correction applied to times"),
        ("TIMESYS", "TDB", "time system is Barycentric Dynamical Time (TDB)"),
        ("BJDREFI", BJDREFI, "integer part of BTJD reference date"),
        ("BJDREFF", 0.0, "fraction of the day in BTJD reference date"),
        ("TIMEUNIT", "d", "time unit for TIME, TSTART and TSTOP"),
        ("TSTART", tstart, "observation start time in BTJD"),
        ("TSTOP", tstop, "observation stop time in BTJD"),
        ("DATE-OBS", start.utc.isot, "TSTART as UTC calendar date"),
        ("DATE-END", stop.utc.isot, "TSTOP as UTC calendar date"),
        ("MJD-BEG", tstart + BJDREFI - MJD_OFFSET, "observation start time in MJD"),
        ("MJD-END", tstop + BJDREFI - MJD_OFFSET, "observation stop time in MJD"),
        ("TELAPSE", telapse, "[d] TSTOP - TSTART"),
        ("LIVETIME", telapse * deadc, "[d] TELAPSE multiplied by DEADC"),
        ("DEADC", deadc, "deadtime correction"),
        ("EXPOSURE", telapse * deadc, "[d] time on source"),
        ("XPOSURE", FRAME_TIME * deadc * obs.frames, "[s] Duration of exposure"),
        ("TIMEPIXR", 0.5, "bin time beginning=0 middle=0.5 end=1"),
        ("TIMEDEL", obs.cadence / SECONDS_PER_DAY, "[d] time resolution of data"),
        ("INT_TIME", INTEGRATION_TIME, "[s] photon accumulation time per frame"),
        ("READTIME", READOUT_TIME, "[s] readout time per frame"),
        ("FRAMETIM", FRAME_TIME, "[s] frame time (INT_TIME + READTIME)"),
        ("NUM_FRM", obs.frames, "number of frames per time stamp"),
        ("NREADOUT", obs.readouts, "number of read per cadence"),
    ]
    return cards


def _stamp_wcs_header(
    wcs: WCS | fits.Header | Sequence[tuple], stamp_origin: tuple[int, int], shape
) -> list[tuple]:
    """The WCS cards ``(key, value, comment)`` of a stamp, from a science-area WCS, its
    header, or that header's cards as tuples.

    A header (``WCS.to_header(relax=True)`` of the science area, e.g. computed once per
    CCD) is shifted by changing ``CRPIX1``/``CRPIX2`` only, which is exact (SIP
    distortions are relative to CRPIX) and much faster than building a WCS per stamp.
    """
    if isinstance(wcs, WCS):
        header = stamp_wcs(wcs, stamp_origin, shape).to_header(relax=True)
        return [(card.keyword, card.value, card.comment) for card in header.cards]
    if isinstance(wcs, fits.Header):
        wcs = [(card.keyword, card.value, card.comment) for card in wcs.cards]
    shift = {"CRPIX1": int(stamp_origin[1]), "CRPIX2": int(stamp_origin[0])}
    return [
        (key, float(value) - shift[key], comment) if key in shift else (key, value, comment)
        for key, value, comment in wcs
    ]


def _stamp_header(name: str, wcs: list | None, stamp_origin: tuple[int, int]) -> fits.Header:
    return fits.Header([fits.Card(*card) for card in _stamp_cards(name, wcs, stamp_origin)])


def _stamp_cards(name: str, wcs: list | None, stamp_origin: tuple[int, int]) -> list:
    """The cards of a stamp image (WCS cards, SPOC's physical WCS, EXTNAME)."""
    cards: list[tuple] = [("INHERIT", True, "inherit the primary header")]
    if wcs is not None:
        cards.extend(card for card in wcs if card[0] not in ("INHERIT", "EXTNAME"))
    # SPOC's physical WCS: 1-based CCD column/row of the stamp pixels.
    physical = [
        ("WCSNAMEP", "PHYSICAL", "name of world coordinate system alt. P"),
        ("WCSAXESP", 2, "number of WCS physical axes"),
        ("CTYPE1P", "RAWX", "physical WCS axis 1 type CCD col"),
        ("CUNIT1P", "PIXEL", "physical WCS axis 1 unit"),
        ("CRPIX1P", 1, "reference CCD column"),
        (
            "CRVAL1P",
            int(stamp_origin[1]) + FIRST_SCIENCE_CCD_COLUMN,
            "value at reference CCD column",
        ),
        ("CDELT1P", 1.0, "physical WCS axis 1 step"),
        ("CTYPE2P", "RAWY", "physical WCS axis 2 type CCD row"),
        ("CUNIT2P", "PIXEL", "physical WCS axis 2 units"),
        ("CRPIX2P", 1, "reference CCD row"),
        ("CRVAL2P", int(stamp_origin[0]) + FIRST_SCIENCE_CCD_ROW, "value at reference CCD row"),
        ("CDELT2P", 1.0, "physical WCS axis 2 step"),
    ]
    cards.extend(physical)
    cards.append(("EXTNAME", name, "extension name"))
    return cards


def _image_hdu(
    name: str, data: np.ndarray, wcs: list | None, stamp_origin: tuple[int, int]
) -> fits.ImageHDU:
    return fits.ImageHDU(data=data, header=_stamp_header(name, wcs, stamp_origin), name=name)


def _table_hdu(
    extension: TableExtension, wcs: list | None, stamp_origin: tuple[int, int]
) -> fits.BinTableHDU:
    header = _stamp_header(extension.name, wcs, stamp_origin)
    return fits.BinTableHDU.from_columns(
        list(extension.columns), header=header, name=extension.name
    )
