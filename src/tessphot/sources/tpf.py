"""Target pixel files as a pixel source (tasks ``tpf`` and ``tpf:<TIC>``).

The photometry methods run on a TPF exactly as on prepared FFI data (the same aperture
code): :class:`TPFSource` offers the interface of :class:`tessphot.sources.base.PixelSource`
from the TPF's own content:

* pixels, uncertainties and background: SPOC's ``FLUX`` (already background-subtracted),
  ``FLUX_ERR`` and ``FLUX_BKG``, or our own background and uncertainties where SPOC's are
  NaN or when asked (:mod:`tessphot.sources.tpf_background`); pixels SPOC did not collect
  are NaN;
* pixel flags: ``ManualExclude`` where SPOC collected nothing, ``NotUsedForBackground``
  where SPOC did not use the pixel for its background (no FFI file is needed);
* times: ``TIME`` with the early releases' time-stamp offset removed (section 5.15 of the
  notes; ``TIMECORR`` is SPOC's per-target correction, replaced per star by
  :meth:`~tessphot.sources.base.PixelSource.barycentric_times`), cadence numbers, quality;
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
from tessphot.config.timing import TimingSettings
from tessphot.constants import BTJD_OFFSET, FRAME_TIME
from tessphot.geometry import shift_wcs
from tessphot.io.tpf import TPFError, find_tpfs, read_tpf
from tessphot.lightcurve import ApertureBits, ObservationInfo
from tessphot.lightcurve.diagnostics import DEFAULT_QUALITY_BITMASK
from tessphot.prepare.flags import PixelFlags
from tessphot.prepare.motion import IDENTITY, MotionModel
from tessphot.sources.base import PixelSource
from tessphot.sources.blocks import Box
from tessphot.sources.cache import cached_source
from tessphot.sources.errors import SourceError
from tessphot.sources.stars import project_catalog
from tessphot.sources.tpf_background import TPFBackground, choose_cubes
from tessphot.timefix import stamp_error

logger = logging.getLogger(__name__)

#: Seconds per day.
SECONDS_PER_DAY = 86400.0
#: Catalog stars within this distance of the TPF's centre are projected [deg] (a TPF is at
#: most a few arcminutes wide; its WCS is a local TAN fit).
CATALOG_RADIUS_DEG = 0.5
#: SPOC aperture bits replaced by the method's (photometric and centroid masks).
METHOD_BITS = ApertureBits.PHOTOMETRIC | ApertureBits.CENTROID


class TPFSource(PixelSource):
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
    background : TPFBackground, optional
        SPOC's background or ours (:mod:`tessphot.sources.tpf_background`; default SPOC's).

    Raises
    ------
    SourceError
        For an unreadable TPF, a missing catalog, or a background that cannot be estimated.
    """

    full_stamp = True

    def __init__(
        self,
        path: str | os.PathLike,
        input_folder: str | os.PathLike,
        contaminant_tmag_max: float,
        timing: TimingSettings | None = None,
        background: TPFBackground | None = None,
    ) -> None:
        self.path = Path(path)
        try:
            tpf = read_tpf(self.path)
        except TPFError as err:
            raise SourceError(str(err)) from None
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
        folder = Path(input_folder)
        centre = self.wcs.all_pix2world(
            [[self.origin[1] + (self.shape[1] - 1) / 2, self.origin[0] + (self.shape[0] - 1) / 2]],
            0,
        )[0]
        self._set_catalog(
            project_catalog(
                catalog_path(folder, self.sector, self.camera, self.ccd),
                self.wcs,
                contaminant_tmag_max,
                near=(float(centre[0]), float(centre[1]), CATALOG_RADIUS_DEG),
            )
        )
        self._set_cubes(tpf, keep, background or TPFBackground())
        self.motion = self._motion(
            np.asarray(tpf.pos_corr_row[keep], dtype=float),
            np.asarray(tpf.pos_corr_column[keep], dtype=float),
        )
        self.mtime = self.path.stat().st_mtime_ns

    def _set_cubes(self, tpf, keep: np.ndarray, background: TPFBackground) -> None:
        """The pixel cubes (after the background choice), flags and the average image."""
        cubes = choose_cubes(tpf, keep, self.time, self.stars, background)
        self.background = cubes.record
        flags = np.zeros(self.shape, dtype=np.uint8)
        flags[~tpf.collected] |= PixelFlags.ManualExclude
        not_used = ~tpf.background_pixels if cubes.not_used is None else cubes.not_used
        flags[not_used] |= PixelFlags.NotUsedForBackground
        self.cubes = {
            "images": cubes.images,
            "images_err": cubes.errors,
            "backgrounds": cubes.backgrounds,
            "pixel_flags": np.broadcast_to(flags, cubes.images.shape),
        }
        good = self.good if self.good.any() else np.ones(self.time.size, dtype=bool)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
            self.sumimage = np.nanmean(cubes.images[good], axis=0).astype(np.float64)

    @property
    def background_record(self) -> dict:
        """SPOC's background or ours, and where the uncertainties came from."""
        return dict(self.background)

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

    def read(self, name: str, t0: int, t1: int, box: Box) -> np.ndarray:
        """Cadences ``t0:t1`` of a cube over a box (science coordinates, half-open)."""
        r0, r1, c0, c1 = box
        orow, ocol = self.origin
        return self.cubes[name][t0:t1, r0 - orow : r1 - orow, c0 - ocol : c1 - ocol]

    def close(self) -> None:
        """Nothing to release: the TPF was read whole."""

    def merge_aperture(self, aperture: np.ndarray, stamp: Box) -> np.ndarray:
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
    SourceError
        When there is none, or more than one.
    """
    found = find_tpfs(input_folder, sector=sector, starid=starid, cadence=cadence)
    what = f"TIC {starid} sector {sector}" + (f" at {cadence} s" if cadence else "")
    if not found:
        raise SourceError(f"no target pixel file of {what} below {input_folder}")
    if len(found) > 1:
        names = ", ".join(str(p) for p in found)
        raise SourceError(f"{len(found)} target pixel files of {what}: {names}")
    return found[0]


def tpf_source(
    input_folder: str | os.PathLike,
    primary: int,
    sector: int,
    camera: int,
    ccd: int,
    cadence: int | None,
    contaminant_tmag_max: float,
    timing: TimingSettings | None = None,
    background: TPFBackground | None = None,
) -> TPFSource:
    """The (cached) :class:`TPFSource` of a primary target's TPF.

    Raises
    ------
    SourceError
        When the TPF is missing, ambiguous, unreadable or of another camera or CCD.
    """
    path = find_tpf(input_folder, primary, sector, cadence).resolve()
    key = ("tpf", str(path), float(contaminant_tmag_max), timing, background)
    data = cached_source(
        key,
        path,
        lambda: TPFSource(path, input_folder, contaminant_tmag_max, timing, background),
    )
    if (data.camera, data.ccd) != (camera, ccd):
        raise SourceError(
            f"{path}: camera {data.camera} CCD {data.ccd}, but the task is for camera "
            f"{camera} CCD {ccd}"
        )
    return data
