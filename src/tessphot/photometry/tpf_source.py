"""Target pixel files as a data source of the photometry (tasks ``tpf`` and ``tpf:<TIC>``).

The photometry methods run on a TPF exactly as on prepared FFI data (the same aperture
code): :class:`TPFData` offers the interface of :class:`tessphot.photometry.base.PixelData`
from the TPF's own content:

* pixels, uncertainties and background: SPOC's ``FLUX`` (already background-subtracted),
  ``FLUX_ERR`` and ``FLUX_BKG``; pixels SPOC did not collect are NaN;
* pixel flags: ``ManualExclude`` where SPOC collected nothing, ``NotUsedForBackground``
  where SPOC did not use the pixel for its background (no FFI file is needed);
* times: ``TIME`` with the early releases' time-stamp offset removed (section 5.15 of the
  notes; ``TIMECORR`` is SPOC's per-target correction, replaced per star by
  :meth:`~tessphot.photometry.base.PixelData.barycentric_times`), cadence numbers, quality;
  cadences without a time are left out;
* jitter: SPOC's ``POS_CORR1/2`` as a translation, zero at the cadence nearest the sector's
  reference time (the original's choice);
* average image: the mean over the cadences without a flag of the default bitmask;
* WCS: the APERTURE image's, in science coordinates; the catalog of the CCD projected
  through it;
* the stamp of every target is the whole TPF, and the light curve's ``APERTURE`` image keeps
  SPOC's bits, with SPOC's photometric (2) and centroid (8) bits replaced by the method's.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np

from tessphot.catalog.make import catalog_path
from tessphot.constants import BTJD_OFFSET, FRAME_TIME, INTEGRATION_TIME
from tessphot.geometry import shift_wcs
from tessphot.io.tpf import TPFError, find_tpfs, read_tpf
from tessphot.lightcurve import ApertureBits, ObservationInfo
from tessphot.lightcurve.diagnostics import DEFAULT_QUALITY_BITMASK
from tessphot.photometry.base import PhotometryError, PixelData, cached_source
from tessphot.prepare.flags import PixelFlags
from tessphot.prepare.motion import IDENTITY, MotionModel
from tessphot.timefix import stamp_error
from tessphot.timing import TimingSettings

logger = logging.getLogger(__name__)

#: Seconds per day.
SECONDS_PER_DAY = 86400.0
#: Catalog stars within this distance of the TPF's centre are projected [deg] (a TPF is at
#: most a few arcminutes wide; its WCS is a local TAN fit).
CATALOG_RADIUS_DEG = 0.5
#: SPOC aperture bits replaced by the method's (photometric and centroid masks).
METHOD_BITS = ApertureBits.PHOTOMETRIC | ApertureBits.CENTROID


class ArrayCube:
    """In-memory cubes with the interface of :class:`tessphot.prepare.cube.PreparedCube`:
    ``h5[name][t, rows, cols]``, :meth:`stamp` (science coordinates) and ``attrs`` (no
    prepare-stage attributes: a TPF is not prepared)."""

    def __init__(self, cubes: dict[str, np.ndarray], origin: tuple[int, int]) -> None:
        self.h5 = cubes
        self.origin = origin
        self.attrs: dict[str, object] = {}

    def stamp(self, name: str, row_min: int, row_max: int, col_min: int, col_max: int):
        """A stamp of a cube over all cadences, shape (N, rows, cols)."""
        r0, c0 = row_min - self.origin[0], col_min - self.origin[1]
        r1, c1 = row_max - self.origin[0], col_max - self.origin[1]
        ny, nx = self.h5[name].shape[1:]
        if r0 < 0 or c0 < 0 or r1 > ny or c1 > nx or r1 <= r0 or c1 <= c0:
            raise ValueError(
                f"stamp rows {row_min}:{row_max}, columns {col_min}:{col_max} is not on the "
                f"pixels (origin {self.origin}, shape {(ny, nx)})"
            )
        return self.h5[name][:, r0:r1, c0:c1]

    def close(self) -> None:
        """Nothing to close."""


class TPFData(PixelData):
    """A target pixel file as a data source (see the module notes).

    Parameters
    ----------
    path : path-like
        The TPF.
    input_folder : path-like
        Folder with the catalog of the TPF's CCD.
    contaminant_tmag_max : float
        Catalog stars fainter than this are left out.
    timing : TimingSettings, optional

    Raises
    ------
    PhotometryError
        For an unreadable TPF or a missing catalog.
    """

    full_stamp = True

    def __init__(
        self,
        path: str | os.PathLike,
        input_folder: str | os.PathLike,
        contaminant_tmag_max: float,
        timing: TimingSettings | None = None,
    ) -> None:
        self.path = Path(path)
        try:
            tpf = read_tpf(self.path)
        except TPFError as err:
            raise PhotometryError(str(err)) from None
        self.tpf = tpf
        self.timing = timing or TimingSettings()
        self.sector, self.camera, self.ccd = tpf.sector, tpf.camera, tpf.ccd
        self.cadence = float(tpf.cadence)
        self.data_rel = tpf.data_rel if tpf.data_rel is not None else 0
        self.simulated = bool(tpf.header.get("SIMDATA", False))
        keep = np.isfinite(tpf.time)
        if tpf.data_rel is None:
            logger.warning("%s: no DATA_REL: time stamps used as they are", self.path.name)
            offset = 0.0
        else:
            offset = stamp_error(
                tpf.data_rel, tpf.procver, tpf.camera, tpf.ccd, "mid", datatype="tpf"
            )
        self.time_offset = offset
        self.time = tpf.time[keep] - offset / SECONDS_PER_DAY
        self.timecorr = tpf.timecorr[keep]
        self.cadenceno = tpf.cadenceno[keep]
        self.quality = tpf.quality[keep]
        self.good = (self.quality & DEFAULT_QUALITY_BITMASK) == 0
        self.origin = tpf.origin
        self.shape = tpf.shape
        # The WCS of science coordinates: TPF pixel + origin.
        self.wcs = shift_wcs(tpf.wcs, tpf.origin[0], tpf.origin[1])
        collected = tpf.collected
        images = np.where(collected, tpf.flux[keep], np.float32(np.nan))
        flags = np.zeros(self.shape, dtype=np.uint8)
        flags[~collected] |= PixelFlags.ManualExclude
        flags[~tpf.background_pixels] |= PixelFlags.NotUsedForBackground
        self.cube = ArrayCube(
            {
                "images": images,
                "images_err": np.where(collected, tpf.flux_err[keep], np.float32(np.nan)),
                "backgrounds": np.where(collected, tpf.flux_bkg[keep], np.float32(np.nan)),
                "pixel_flags": np.broadcast_to(flags, images.shape),
            },
            self.origin,
        )
        good = self.good if self.good.any() else np.ones(self.time.size, dtype=bool)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
            self.sumimage = np.nanmean(images[good], axis=0).astype(np.float64)
        self.read_noise = np.array(
            [tpf.header.get(f"READNOI{o}", np.nan) for o in "ABCD"], dtype=float
        )
        header = tpf.header
        num_frm = int(header.get("NUM_FRM", round(self.cadence / FRAME_TIME)))
        self.observation = ObservationInfo(
            sector=self.sector,
            camera=self.camera,
            ccd=self.ccd,
            cadence=self.cadence,
            data_rel=self.data_rel,
            crmiten=bool(header.get("CRMITEN", True)),
            crblksz=int(header.get("CRBLKSZ", 10)),
            crspoc=bool(header.get("CRSPOC", False)),
            num_frm=num_frm,
            nreadout=int(header["NREADOUT"]) if "NREADOUT" in header else None,
        )
        self.exposure_time = INTEGRATION_TIME * self.observation.readouts
        folder = Path(input_folder)
        centre = self.wcs.all_pix2world(
            [[self.origin[1] + (self.shape[1] - 1) / 2, self.origin[0] + (self.shape[0] - 1) / 2]],
            0,
        )[0]
        self._load_catalog(
            catalog_path(folder, self.sector, self.camera, self.ccd),
            contaminant_tmag_max,
            near=(float(centre[0]), float(centre[1]), CATALOG_RADIUS_DEG),
        )
        self.motion = self._motion(
            np.asarray(tpf.pos_corr_row[keep], dtype=float),
            np.asarray(tpf.pos_corr_column[keep], dtype=float),
        )
        self.mtime = self.path.stat().st_mtime_ns

    def _motion(self, pos_row: np.ndarray, pos_col: np.ndarray) -> MotionModel:
        """SPOC's POS_CORR as a translation, zero at the cadence nearest the reference time."""
        params = np.tile(IDENTITY, (self.time.size, 1))
        params[:, 4] = pos_row
        params[:, 5] = pos_col
        finite = np.isfinite(pos_row) & np.isfinite(pos_col)
        if finite.any():
            reference = self.catalog_settings.reference_time - BTJD_OFFSET
            usable = np.flatnonzero(finite)
            ref = usable[np.argmin(np.abs(self.time[usable] - reference))]
            params[:, 4] -= pos_row[ref]
            params[:, 5] -= pos_col[ref]
        else:
            params[:, 4:] = 0.0
        centre = (
            self.origin[0] + (self.shape[0] - 1) / 2,
            self.origin[1] + (self.shape[1] - 1) / 2,
        )
        return MotionModel(params, self.time, centre)

    def merge_aperture(self, aperture: np.ndarray, stamp: tuple[int, int, int, int]) -> np.ndarray:
        """SPOC's aperture bits with the method's photometric and centroid bits."""
        r0, r1, c0, c1 = stamp
        o = self.origin
        spoc = self.tpf.aperture[r0 - o[0] : r1 - o[0], c0 - o[1] : c1 - o[1]]
        return (spoc & ~METHOD_BITS) | (np.asarray(aperture, dtype=np.int32) & METHOD_BITS)


def find_tpf(
    input_folder: str | os.PathLike, starid: int, sector: int, cadence: int | None
) -> Path:
    """The one TPF of a star, sector and cadence below the input folder.

    Raises
    ------
    PhotometryError
        When there is none, or more than one.
    """
    found = find_tpfs(input_folder, sector=sector, starid=starid, cadence=cadence)
    what = f"TIC {starid} sector {sector}" + (f" at {cadence} s" if cadence else "")
    if not found:
        raise PhotometryError(f"no target pixel file of {what} below {input_folder}")
    if len(found) > 1:
        names = ", ".join(str(p) for p in found)
        raise PhotometryError(f"{len(found)} target pixel files of {what}: {names}")
    return found[0]


def tpf_data(
    input_folder: str | os.PathLike,
    primary: int,
    sector: int,
    camera: int,
    ccd: int,
    cadence: int | None,
    contaminant_tmag_max: float,
    timing: TimingSettings | None = None,
) -> TPFData:
    """The (cached) :class:`TPFData` of a primary target's TPF.

    Raises
    ------
    PhotometryError
        When the TPF is missing, ambiguous, unreadable or of another camera or CCD.
    """
    path = find_tpf(input_folder, primary, sector, cadence).resolve()
    key = ("tpf", str(path), float(contaminant_tmag_max), timing)
    data = cached_source(
        key, path, lambda: TPFData(path, input_folder, contaminant_tmag_max, timing)
    )
    if (data.camera, data.ccd) != (camera, ccd):
        raise PhotometryError(
            f"{path}: camera {data.camera} CCD {data.ccd}, but the task is for camera "
            f"{camera} CCD {ccd}"
        )
    return data
