"""Reader for TESScut (astrocut) cutouts: a small region of a sector's calibrated FFIs.

A cutout file ``tess-sSSSS-C-D_<RA>_<Dec>_<W>x<H>_astrocut.fits`` holds a primary header
(sector, camera, CCD, data release, the requested position ``RA_OBJ``/``DEC_OBJ``), the
``PIXELS`` table with one row per FFI (``TIME`` [BTJD], ``TIMECORR`` (the FFI's
``BARYCORR``, for the CCD centre), ``CADENCENO``, the calibrated ``FLUX`` [e-/s] -- not
background-subtracted -- and ``FLUX_ERR``, ``QUALITY``) and the ``APERTURE`` image, whose
header carries the cutout's WCS and its CCD position (``CRVAL1P``/``CRVAL2P``).

:func:`read_cutout` returns the whole cube; :meth:`Cutout.frame` gives one cadence as an
:class:`~tessphot.io.ffi.FFIImage`, so the prepare stage treats the cutout as a sequence of
small FFIs.

Geometry is checked, not trusted: astrocut centres a cutout on the requested position, so
the cutout's WCS must put ``RA_OBJ``/``DEC_OBJ`` near the middle pixel, and its CCD position
must agree with the CCD's WCS model (tesswcs). Early astrocut versions (2018) wrote a broken
WCS and physical WCS (the 5x5 test cutout maps its middle pixel 5 degrees from the requested
position, with ``CRVAL2P = -856``); such a cutout is placed with the model and a warning.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyError, VerifyWarning
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS, FITSFixedWarning

from tessphot.constants import (
    FFI_CADENCE_BY_SECTOR,
    FFIINDEX_SECTOR1_FIRST,
    FFIINDEX_SECTOR1_TSTART_TJD,
    FIRST_SCIENCE_CCD_COLUMN,
    FIRST_SCIENCE_CCD_ROW,
    FRAME_TIME,
    INTEGRATION_TIME,
    SCIENCE_SIZE,
)
from tessphot.geometry import sector_geometry, shift_wcs
from tessphot.io.errors import FileProblem
from tessphot.io.ffi import FFIImage
from tessphot.io.names import CUTOUT_NAME_PATTERN, CutoutName, parse_cutout_name
from tessphot.io.recognise import Kind, find_cutouts, require

log = logging.getLogger(__name__)

__all__ = [
    "CUTOUT_NAME_PATTERN",
    "Cutout",
    "CutoutName",
    "TESScutError",
    "find_cutouts",
    "parse_cutout_name",
    "read_cutout",
]

#: The cutout's WCS must put the requested position within this of the middle pixel [px].
WCS_TOLERANCE_PX = 1.5
#: The CCD position from the physical WCS must agree with the model within this [px].
ORIGIN_TOLERANCE_PX = 3.0
#: Seconds per day.
SECONDS_PER_DAY = 86400.0
#: Fraction of the frames kept by the on-board cosmic-ray mitigation (2 of 10 dropped).
CR_KEPT_FRACTION = 0.8
#: FFI cadences [s].
FFI_CADENCES = tuple(sorted({c for *_, c in FFI_CADENCE_BY_SECTOR}))


class TESScutError(FileProblem):
    """A file cannot be read as a TESScut cutout."""


@dataclass(frozen=True, eq=False)
class Cutout:
    """A TESScut cube.

    Attributes
    ----------
    path : pathlib.Path
    name : CutoutName
        Sector, camera, CCD, position and tag, from the headers (the tag from the file name
        when it agrees with them).
    header : astropy.io.fits.Header
        Primary header updated with the PIXELS table's non-column keywords.
    time, timecorr : ndarray, shape (N,)
        Mid-exposure times [BTJD] and the FFIs' barycentric correction [d].
    cadenceno : ndarray of int, shape (N,)
        FFI cadence numbers (``FFIINDEX``; synthesised from the times as for early FFIs
        when the file has none).
    quality : ndarray of int, shape (N,)
    flux, flux_err : ndarray of float32, shape (N, rows, cols)
        Calibrated flux (with background) and its uncertainty [e-/s].
    cadence : float
        Time between FFIs [s] (1800, 600 or 200).
    origin : (int, int)
        Science-area ``(row, column)`` of pixel ``[0, 0]``.
    wcs : astropy.wcs.WCS
        WCS of the cutout's pixels (0-based).
    geometry_source : str
        ``'file'`` or ``'model'`` (the file's WCS or physical WCS was unusable).
    """

    path: Path
    name: CutoutName
    header: fits.Header
    time: np.ndarray
    timecorr: np.ndarray
    cadenceno: np.ndarray
    quality: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray
    cadence: float
    origin: tuple[int, int]
    wcs: WCS
    geometry_source: str

    @property
    def shape(self) -> tuple[int, int]:
        """Shape ``(ny, nx)`` of one frame."""
        return self.flux.shape[1:]

    def frame(self, index: int) -> FFIImage:
        """Cadence ``index`` as a small FFI (header with that frame's keywords)."""
        half = self.cadence / SECONDS_PER_DAY / 2
        header = self.header.copy()
        header["TSTART"] = float(self.time[index] - half)
        header["TSTOP"] = float(self.time[index] + half)
        header["BARYCORR"] = float(self.timecorr[index])
        header["DQUALITY"] = int(self.quality[index])
        header["FFIINDEX"] = int(self.cadenceno[index])
        data_rel = header.get("DATA_REL")
        procver = header.get("PROCVER")
        return FFIImage(
            path=self.path,
            data=np.array(self.flux[index], dtype=np.float32),
            uncertainty=np.array(self.flux_err[index], dtype=np.float32),
            header=header,
            wcs=self.wcs,
            origin=self.origin,
            sector=self.name.sector,
            camera=self.name.camera,
            ccd=self.name.ccd,
            tstart=header["TSTART"],
            tstop=header["TSTOP"],
            barycorr=header["BARYCORR"],
            cadenceno=header["FFIINDEX"],
            quality=header["DQUALITY"],
            exposure=float(header["EXPOSURE"]),
            data_rel=int(data_rel) if isinstance(data_rel, int | np.integer) else None,
            procver=str(procver).strip() if procver else None,
        )


def read_cutout(path: str | os.PathLike[str]) -> Cutout:
    """Read a TESScut cube (see the module notes for the geometry checks).

    The file is recognised by its headers, whatever its name
    (:func:`tessphot.io.recognise.require`); sector, camera, CCD and position come from them.

    Raises
    ------
    TESScutError
        For a missing, truncated or corrupt file, one that is not a TESScut cutout, no PIXELS
        table or APERTURE image, columns missing, or no usable geometry.
    """
    path = Path(path)
    if not path.is_file():
        raise TESScutError(path, "file not found")
    name = require(path, Kind.CUTOUT, TESScutError).cutout_name
    raw = _read_hdus(path)
    time, timecorr, quality = raw.time, raw.timecorr, raw.quality
    flux, flux_err = raw.flux, raw.flux_err
    if flux.ndim != 3 or flux.shape != flux_err.shape:
        raise TESScutError(path, f"FLUX of shape {flux.shape} is not a cube like FLUX_ERR")
    good = np.isfinite(time)
    if not good.any():
        raise TESScutError(path, "no cadence has a time")
    time, timecorr, quality = time[good], timecorr[good], quality[good]
    flux, flux_err = flux[good], flux_err[good]
    cadence = _cadence(time, name.sector)
    header = raw.header
    _complete_header(header, name, cadence)
    cadenceno = _cadence_numbers(header, time - timecorr, cadence)
    origin, wcs, source = _geometry(
        path, name, header, raw.aperture_header, raw.physical, flux.shape[1:]
    )
    return Cutout(
        path=path,
        name=name,
        header=header,
        time=time,
        timecorr=timecorr,
        cadenceno=cadenceno,
        quality=quality,
        flux=flux,
        flux_err=flux_err,
        cadence=cadence,
        origin=origin,
        wcs=wcs,
        geometry_source=source,
    )


@dataclass
class _RawCutout:
    """What :func:`_read_hdus` copied out of a TESScut file."""

    header: fits.Header
    aperture_header: fits.Header
    physical: tuple[int, int] | None
    time: np.ndarray
    timecorr: np.ndarray
    quality: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray


def _read_hdus(path: Path) -> _RawCutout:
    """Copy the headers and the PIXELS columns out of the file; damage is a TESScutError."""
    try:
        with warnings.catch_warnings():
            for category in (FITSFixedWarning, VerifyWarning, AstropyUserWarning):
                warnings.simplefilter("ignore", category)  # damage was diagnosed by require()
            with fits.open(path, memmap=False) as hdul:
                return _copy_hdus(path, hdul)
    except TESScutError:
        raise
    except VerifyError as err:  # a card that cannot be parsed
        raise TESScutError(path, f"corrupt header: {' '.join(str(err).split())}") from None
    except (OSError, EOFError, ValueError, TypeError, KeyError, IndexError) as err:
        message = " ".join(str(err).split())
        problem = f"truncated or corrupt file ({type(err).__name__}: {message})"
        raise TESScutError(path, problem) from None


def _copy_hdus(path: Path, hdul: fits.HDUList) -> _RawCutout:
    """The merged header, the aperture's header and the PIXELS columns of an open file."""
    names = [hdu.name for hdu in hdul]
    if "PIXELS" not in names or "APERTURE" not in names:
        raise TESScutError(path, "not a TESScut cube: no PIXELS table or APERTURE")
    table = hdul["PIXELS"]
    data = table.data
    missing = [
        c
        for c in ("TIME", "TIMECORR", "FLUX", "FLUX_ERR", "QUALITY")
        if c not in table.columns.names
    ]
    if missing:
        raise TESScutError(path, f"PIXELS table without column(s) {missing}")
    header = hdul[0].header.copy()
    for card in table.header.cards:
        if card.keyword and not _TABLE_KEYWORD.match(card.keyword):
            header[card.keyword] = (card.value, card.comment)
    aperture_header = hdul["APERTURE"].header.copy()
    physical = _physical_origin(aperture_header) or _table_physical_origin(
        table.header, table.columns.names
    )
    return _RawCutout(
        header=header,
        aperture_header=aperture_header,
        physical=physical,
        time=np.asarray(data["TIME"], dtype=np.float64),
        timecorr=np.asarray(data["TIMECORR"], dtype=np.float64),
        quality=np.asarray(data["QUALITY"], dtype=np.int32),
        flux=np.asarray(data["FLUX"], dtype=np.float32),
        flux_err=np.asarray(data["FLUX_ERR"], dtype=np.float32),
    )


def _complete_header(header: fits.Header, name: CutoutName, cadence: float) -> None:
    """Add the readout keywords and the sector, camera and CCD where the header lacks them."""
    header.setdefault("NUM_FRM", int(round(cadence / FRAME_TIME)))
    kept = CR_KEPT_FRACTION if header.get("CRMITEN", True) else 1.0
    header.setdefault("NREADOUT", int(round(header["NUM_FRM"] * kept)))
    header.setdefault("EXPOSURE", header["NREADOUT"] * INTEGRATION_TIME / SECONDS_PER_DAY)
    for key, value in (("SECTOR", name.sector), ("CAMERA", name.camera), ("CCD", name.ccd)):
        if not isinstance(header.get(key), int | np.integer):
            header[key] = value


#: Keywords of the PIXELS table's structure and columns.
_TABLE_KEYWORD = re.compile(
    r"^(XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|TFIELDS|EXTNAME|EXTVER|INHERIT|CHECKSUM|DATASUM"
    r"|(TTYPE|TFORM|TUNIT|TDISP|TDIM|TNULL|TSCAL|TZERO)\d+|(WCSN|WCAX)\d+P?|\d+[A-Z]+\d+P?)$"
)


def _cadence(time: np.ndarray, sector: int) -> float:
    """The FFI cadence [s]: the known cadence closest to the median time step."""
    if time.size > 1:
        step = float(np.median(np.diff(time))) * SECONDS_PER_DAY
        return float(min(FFI_CADENCES, key=lambda c: abs(c - step)))
    for first, last, cadence in FFI_CADENCE_BY_SECTOR:
        if first <= sector <= last:
            return float(cadence)
    return float(FFI_CADENCES[-1])


def _cadence_numbers(header: fits.Header, spacecraft: np.ndarray, cadence: float) -> np.ndarray:
    """FFI cadence numbers, from the header's FFIINDEX of the first FFI.

    Without FFIINDEX (early FFIs) they are counted from sector 1's first FFI, as the
    original did.
    """
    step = cadence / SECONDS_PER_DAY
    first = header.get("FFIINDEX")
    if isinstance(first, int | np.integer):
        return (int(first) + np.rint((spacecraft - spacecraft[0]) / step)).astype(np.int32)
    start = spacecraft - step / 2
    counted = FFIINDEX_SECTOR1_FIRST + np.rint((start - FFIINDEX_SECTOR1_TSTART_TJD) / step)
    return counted.astype(np.int32)


def _physical_origin(header: fits.Header) -> tuple[int, int] | None:
    """Science (row, column) of pixel [0, 0] from a physical WCS; None when absent."""
    try:
        col = int(header["CRVAL1P"]) + 1 - int(header.get("CRPIX1P", 1))
        row = int(header["CRVAL2P"]) + 1 - int(header.get("CRPIX2P", 1))
    except (KeyError, ValueError, TypeError):
        return None
    return row - FIRST_SCIENCE_CCD_ROW, col - FIRST_SCIENCE_CCD_COLUMN


def _table_physical_origin(header: fits.Header, columns: list[str]) -> tuple[int, int] | None:
    """Science (row, column) of pixel [0, 0] from the FLUX column's physical WCS."""
    if "FLUX" not in columns:
        return None
    n = columns.index("FLUX") + 1
    cards = {f"CRVAL{a}P": header.get(f"{a}CRV{n}P") for a in (1, 2)}
    cards.update({f"CRPIX{a}P": header.get(f"{a}CRP{n}P", 1) for a in (1, 2)})
    if None in cards.values():
        return None
    return _physical_origin(fits.Header(list(cards.items())))


@lru_cache(maxsize=16)
def _model_wcs(sector: int, camera: int, ccd: int) -> WCS | None:
    """The CCD's science-area WCS model (tesswcs), None for a sector it does not know."""
    try:
        return sector_geometry(sector, camera, ccd).science_wcs
    except ValueError:
        return None


def _geometry(
    path: Path,
    name: CutoutName,
    header: fits.Header,
    aperture_header: fits.Header,
    physical: tuple[int, int] | None,
    shape: tuple[int, int],
) -> tuple[tuple[int, int], WCS, str]:
    """The cutout's science origin and WCS.

    Both are checked against the requested position and the CCD's WCS model (see the module
    notes).
    """
    ny, nx = shape
    middle = ((nx - 1) / 2, (ny - 1) / 2)
    ra = float(header.get("RA_OBJ", name.ra))
    dec = float(header.get("DEC_OBJ", name.dec))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = WCS(aperture_header, relax=True).celestial
            x, y = wcs.all_world2pix(ra, dec, 0, quiet=True)
        wcs_ok = bool(
            wcs.has_celestial
            and abs(x - middle[0]) <= WCS_TOLERANCE_PX
            and abs(y - middle[1]) <= WCS_TOLERANCE_PX
        )
    except (ValueError, KeyError, MemoryError):
        wcs, wcs_ok = None, False
    model = _model_wcs(name.sector, name.camera, name.ccd)
    if model is None:
        if not wcs_ok or physical is None:
            raise TESScutError(path, "no usable WCS and no WCS model of the CCD to place it")
        return physical, wcs, "file"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if wcs_ok:
            ra, dec = wcs.all_pix2world([[middle[0], middle[1]]], 0)[0]
        col, row = model.all_world2pix([[ra, dec]], 0, quiet=True)[0]
    modelled = (int(round(row - middle[1])), int(round(col - middle[0])))
    source = "file"
    if physical is None or max(abs(a - b) for a, b in zip(physical, modelled, strict=True)) > (
        ORIGIN_TOLERANCE_PX
    ):
        log.warning(
            "%s: the physical WCS puts the cutout at science pixel %s, the CCD's WCS model at "
            "%s: using the model",
            path.name,
            physical,
            modelled,
        )
        origin = modelled
        source = "model"
    else:
        origin = physical
    if not (-ny < origin[0] < SCIENCE_SIZE and -nx < origin[1] < SCIENCE_SIZE):
        raise TESScutError(path, f"cutout at science pixel {origin} is not on the CCD")
    if not wcs_ok:
        log.warning(
            "%s: the cutout's WCS does not put its position (%.5f, %.5f) at the middle pixel "
            "(an early astrocut version): using the CCD's WCS model",
            path.name,
            ra,
            dec,
        )
        wcs = shift_wcs(model, -origin[0], -origin[1])
        source = "model"
    return origin, wcs, source
