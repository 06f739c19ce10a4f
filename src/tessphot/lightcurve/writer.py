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
import gzip
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

try:
    from isal import igzip
except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
    igzip = None

from tessphot.constants import (
    FIRST_SCIENCE_CCD_COLUMN,
    FIRST_SCIENCE_CCD_ROW,
    OUTPUT_WIDTH,
)
from tessphot.lightcurve.format import (
    SETTINGS_CONTINUATION_PREFIX,
    SETTINGS_HISTORY_PREFIX,
    ApertureBits,
    ObservationInfo,
    TargetInfo,
)
from tessphot.lightcurve.header import (
    _image_hdu,
    _lightcurve_cards,
    _lightcurve_hdu,
    _primary_cards,
    _primary_header,
    _stamp_cards,
    _stamp_wcs_header,
    _table_hdu,
)
from tessphot.lightcurve.products import LightCurveColumns, StampImages
from tessphot.lightcurve.serialise import DEFAULT_GZIP_LEVEL, _serialise
from tessphot.lightcurve.update import read_lightcurve_file, updated_bytes
from tessphot.paths import atomic_path

#: Highest gzip level written with ISA-L (its levels run 0-3; higher levels use zlib).
FAST_GZIP_MAX_LEVEL = 3


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
                _gzip_file(path, raw, int(compresslevel)) as out,
            ):
                out.write(buffer.getbuffer())
        else:
            fits.HDUList(hdus).writeto(tmp, checksum=True, overwrite=True)
    return path


def _remove_stale_temporaries(path: Path) -> None:
    """Remove the temporary files of this light curve left by an earlier, killed attempt.

    A task runs in one process at a time, so no other process is writing them.
    """
    prefix = f".{path.name}."
    try:
        entries = os.scandir(path.parent)
    except (FileNotFoundError, NotADirectoryError):
        return
    with entries:
        stale = [
            e.path for e in entries if e.name.startswith(prefix) and ".tmp" in e.name[len(prefix) :]
        ]
    for name in stale:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def _gzip_file(path: Path, raw: Any, level: int) -> gzip.GzipFile:
    """A gzip stream into ``raw`` for the file ``path`` (a ``.gz`` name) at a level (0-9).

    Levels 1 to :data:`FAST_GZIP_MAX_LEVEL` are compressed with ISA-L's deflate (the same
    gzip format, several times faster than zlib's at a similar size), the others with zlib.
    """
    fast = igzip is not None and 1 <= level <= FAST_GZIP_MAX_LEVEL
    return (igzip.IGzipFile if fast else gzip.GzipFile)(
        filename=path.name[: -len(".gz")], mode="wb", fileobj=raw, compresslevel=level
    )


def _write_atomically(path: Path, content: bytes, compresslevel: int | None) -> None:
    """Write bytes (gzip-compressed for a ``.gz`` name) under a temporary name, then rename."""
    _remove_stale_temporaries(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        if path.name.endswith(".gz"):
            level = DEFAULT_GZIP_LEVEL if compresslevel is None else int(compresslevel)
            with _gzip_file(path, raw, level) as out:
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


def set_dataval(path: str | Path, value: int, *, compresslevel: int | None = None) -> bool:
    """Set the data-validation flags (``DATAVAL``) in the primary header of a light curve.

    The file is rewritten atomically with fresh checksums, only when the value changes.

    Parameters
    ----------
    path : str or pathlib.Path
        The light-curve file (``.fits`` or ``.fits.gz``).
    value : int
        The flags (a :class:`tessphot.report.validation.DataVal` value).
    compresslevel : int, optional
        Gzip level of the rewritten file (default that of the writer).

    Returns
    -------
    bool
        Whether the file was rewritten.
    """
    path = Path(path)
    with fits.open(path) as hdus:
        if int(hdus[0].header.get("DATAVAL", 0)) == int(value):
            return False
        hdus[0].header["DATAVAL"] = int(value)
        buffer = io.BytesIO()
        hdus.writeto(buffer, checksum=True, output_verify="ignore")
    _write_atomically(path, buffer.getvalue(), compresslevel)
    return True


def set_corrected_flux(
    path: str | Path,
    flux_corr: np.ndarray,
    flux_corr_err: np.ndarray,
    *,
    quality: np.ndarray | None = None,
    clear: int = 0,
    cards: Sequence[tuple[str, Any, str]] = (),
    compresslevel: int | None = None,
) -> None:
    """Write the corrected flux of a light curve (``FLUX_CORR``, ``FLUX_CORR_ERR`` [ppm]).

    The file is rewritten atomically with fresh checksums; ``FLUX_RAW`` and every other
    column are kept as they are.

    Parameters
    ----------
    path : str or pathlib.Path
        The light-curve file (``.fits`` or ``.fits.gz``).
    flux_corr, flux_corr_err : ndarray
        One value per row of the ``LIGHTCURVE`` table [ppm].
    quality : ndarray of int, optional
        Bits to set in ``QUALITY`` (the corrections' flags; the bits already set stay,
        but for those of ``clear``).
    clear : int
        Bits of ``QUALITY`` cleared on every row before ``quality`` is set (a correction's
        own flags, so that one made again keeps none of the earlier one's); only with
        ``quality``.
    cards : list of (key, value, comment)
        Cards set in the primary header (the corrector and its parameters); cards of an
        earlier correction with keys not given again are removed when they start with one
        of the given keys' prefixes up to a digit (e.g. ``CBV_C1``... for ``CBV_C1``).
    compresslevel : int, optional
        Gzip level of the rewritten file (default that of the writer).

    Raises
    ------
    ValueError
        When the arrays do not match the table's length.
    tessphot.io.errors.FileProblem
        When the file is not a readable light curve.
    """
    lc = read_lightcurve_file(path)
    n = lc.table.size
    columns = {}
    for name, values in (("FLUX_CORR", flux_corr), ("FLUX_CORR_ERR", flux_corr_err)):
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (n,):
            raise ValueError(f"{name} has shape {values.shape}, the light curve {n} rows")
        columns[name] = values
    if quality is not None:
        quality = np.asarray(quality, dtype=np.int32)
        if quality.shape != (n,):
            raise ValueError(f"QUALITY has shape {quality.shape}, the light curve {n} rows")
        kept = lc.column("QUALITY", np.int32) & np.int32(~clear)
        columns["QUALITY"] = kept | quality
    given = {key for key, _, _ in cards}
    stems = {key.rstrip("0123456789") for key in given if key[-1].isdigit()}
    stale = [
        key
        for key in lc.headers[0]
        if key not in given and key[-1:].isdigit() and key.rstrip("0123456789") in stems
    ]
    content = updated_bytes(lc, columns, cards, remove=stale)
    _write_atomically(Path(path), content, compresslevel)
