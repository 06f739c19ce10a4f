"""What every photometry method shares: the target, its stamp, data access and diagnostics.

A photometry method subclasses :class:`BasePhotometry` and implements
:meth:`BasePhotometry.do_photometry`, which fills :attr:`BasePhotometry.lightcurve` and the
final masks and returns a :class:`tessphot.tasks.STATUS`. :meth:`BasePhotometry.photometry`
runs it and computes the diagnostics the task list stores (§5.8 of the notes);
:meth:`BasePhotometry.save_lightcurve` writes the TASOC-format file.

Coordinates are 0-based science-area ``(row, column)`` (pixel centres on integers). A stamp is
``(row_min, row_max, col_min, col_max)``, half-open like a numpy slice; "stamp coordinates"
are science coordinates minus ``(row_min, col_min)``.

The pixels come from a data source (:class:`PixelData`): a prepared FFI region
(:class:`CCDData`: a CCD, or a TESScut cutout) or a target pixel file
(:class:`tessphot.photometry.tpf_source.TPFData`), chosen by the task's ``datasource``
(``ffi``, ``tpf``, ``tpf:<primary TIC>``). Everything of a source that does not depend on the
target (the open file, times, quality, reference WCS, jitter model, the average image, the
catalog projected onto the pixels, the spacecraft's barycentric position) is read once per
process and cached (:func:`ccd_data`), so a task costs only its own stamp.
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from astropy.wcs import WCS

from tessphot.catalog.errors import CatalogError
from tessphot.catalog.make import catalog_path
from tessphot.catalog.sqlite_catalog import CatalogDB
from tessphot.constants import BTJD_OFFSET, OUTPUT_WIDTH
from tessphot.io.errors import TessphotError
from tessphot.lightcurve import (
    ObservationInfo,
    TargetInfo,
    WeightMap,
    lightcurve_diagnostics,
    lightcurve_path,
    mask_diagnostics,
    write_lightcurve,
)
from tessphot.lightcurve.diagnostics import DEFAULT_QUALITY_BITMASK
from tessphot.photometry.scene import PRF_REACH, ccd_prf
from tessphot.prepare.cube import PreparedCube, hdf5_name, prepared_files
from tessphot.prepare.motion import MotionModel, wcs_from_string
from tessphot.prf import AnalyticPRF, PRFModel
from tessphot.tasks.status import HAS_LIGHTCURVE, STATUS
from tessphot.timing import (
    GeocentreEphemeris,
    ObserverState,
    TimingSettings,
    barycentric_correction,
    observer_state,
    spacecraft_ephemeris,
    unit_vectors,
)
from tessphot.version import PIPELINE_NAME

logger = logging.getLogger(__name__)

#: Data sources (prepared-data files, TPFs) kept open per process (each holds its average
#: image and catalog in memory).
CCD_CACHE_SIZE = 4
#: The original's stamp sizes [px] as a function of Tmag: heights at Tmag 0-10 in 19 steps
#: and at 13; widths equal the heights from Tmag 4.7 on (bright stars bleed along columns).
STAMP_TMAG = (*np.linspace(0.0, 10.0, 20).tolist(), 13.0)
STAMP_HEIGHT = (832, 534, 344, 224, 147, 99, 68, 48, 36, 28, 23, 19.9, 17.8, 16.6, 15.7, 15.2,
                14.9, 14.7, 14.5, 14.5, 14.0)  # fmt: skip
STAMP_WIDTH = (158, 125, 100, 81, 66, 54, 45, 38, 33, *STAMP_HEIGHT[9:])
#: Time keywords astropy writes with a frame's WCS; left out of the stamp images' WCS.
WCS_TIME_KEYWORDS = (
    *("TIMESYS", "TIMEUNIT", "MJDREF", "DATE-OBS", "MJD-OBS", "TSTART", "DATE-END"),
    *("MJD-END", "TSTOP", "TELAPSE", "TIMEDEL", "TIMEPIXR", "DATE-AVG", "MJD-AVG"),
    *("DATEREF", "MJDREFI", "MJDREFF", "TIMEOFFS"),
)
#: Data sources of the tasks: ``ffi``, ``tpf`` or ``tpf:<primary TIC>``.
DATASOURCE_PATTERN = re.compile(r"ffi|tpf(?::(?P<primary>\d+))?")
#: Data source of FFI targets.
FFI_DATASOURCE = "ffi"
#: Most bytes of cubes read at once: larger stamps are processed in blocks of cadences.
STREAM_BYTES = 256 * 2**20
#: Cadences per chunk of the prepared cubes (blocks are multiples of it).
CUBE_CHUNK_CADENCES = 32
#: QUALITY bit of the TASOC corrector flags set where the background is suspect.
QUALITY_BACKGROUND_SHENANIGANS = 256
#: Root of tessphot's loggers: warnings and errors logged below it during a task are the
#: task's ``errors``.
PACKAGE_LOGGER = "tessphot"


#: Most characters of the reason for an automatic switch of method kept in its header card
#: (``HALO_WHY``, ``PSF_WHY``; the card holds its comment too).
SWITCH_REASON_LENGTH = 46


class PhotometryError(TessphotError):
    """A target that cannot be processed (the message says which and why)."""


# --------------------------------------------------------------------------------------------
# Per-CCD data, cached per process


@dataclass(frozen=True)
class StarTable:
    """Catalog stars projected onto the pixels of the reference frame."""

    starid: np.ndarray
    tmag: np.ndarray
    row: np.ndarray
    col: np.ndarray
    #: Index into the catalog array (for the other columns).
    index: np.ndarray

    def __len__(self) -> int:
        return int(self.starid.size)


class PixelData:
    """Target-independent data of one source of pixels: a prepared FFI region (the CCD or a
    TESScut cutout, :class:`CCDData`) or a target pixel file
    (:class:`tessphot.photometry.tpf_source.TPFData`).

    A source provides, over its ``N`` cadences: ``time`` (BTJD, mid-exposure, time-stamp
    offsets corrected), ``timecorr`` (the barycentric correction included in ``time``),
    ``cadenceno``, ``quality`` and ``good``; over its region (``origin``, ``shape``, science
    coordinates): the average image ``sumimage``, the reference ``wcs``, the ``motion``
    model and the cubes (``cube``: ``images``, ``images_err``, ``backgrounds``,
    ``pixel_flags``, shape (N, rows, columns), read through ``cube.h5[name][t, r, c]`` or
    ``cube.stamp``); and the catalog stars projected onto the region (:meth:`star`,
    :meth:`stars_in`).

    Attributes
    ----------
    full_stamp : bool
        The stamp of every target is the whole region (target pixel files).
    simulated : bool
        Simulated data: the observer is the geocentre (as the simulator's ``BARYCORR``).
    time_offset : float
        Correction applied to SPOC's time stamps (section 5.15 of the notes) [s].
    """

    full_stamp = False
    simulated = False
    time_offset = 0.0

    def _load_catalog(
        self,
        catalog_file: Path,
        contaminant_tmag_max: float,
        near: tuple[float, float, float] | None = None,
    ) -> None:
        """Read the catalog and project its stars through :attr:`wcs`.

        ``near`` = (ra, dec, radius) [deg] keeps only the stars within ``radius`` (small
        regions with a local WCS: a TPF's).
        """
        self.catalog_file = catalog_file
        try:
            with CatalogDB(catalog_file) as db:
                self.catalog_settings = db.settings
                stars = db.stars(tmag_max=contaminant_tmag_max)
        except CatalogError as err:
            raise PhotometryError(f"{err} (run 'tessphot catalog' first)") from None
        if near is not None:
            centre = unit_vectors(near[0], near[1])[0]
            cos = unit_vectors(stars["ra"], stars["decl"]) @ centre
            stars = stars[cos >= math.cos(math.radians(near[2]))]
        self.catalog = stars
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            col, row = self.wcs.all_world2pix(stars["ra"], stars["decl"], 0, quiet=True)
        order = np.argsort(row, kind="stable")
        self.stars = StarTable(
            starid=stars["starid"][order],
            tmag=stars["tmag"][order],
            row=np.asarray(row, dtype=float)[order],
            col=np.asarray(col, dtype=float)[order],
            index=order,
        )
        self._by_id = {int(s): i for i, s in enumerate(self.stars.starid)}

    @cached_property
    def wcs_header(self) -> list[tuple]:
        """The reference WCS as header cards ``(key, value, comment)`` (shifted per stamp by
        the light-curve writer),
        without the reference frame's time keywords (they would mislabel the stamp images,
        which average all cadences)."""
        header = self.wcs.to_header(relax=True)
        return [
            (card.keyword, card.value, card.comment)
            for card in header.cards
            if card.keyword not in WCS_TIME_KEYWORDS
        ]

    def close(self) -> None:
        """Release open files."""

    def merge_aperture(self, aperture: np.ndarray, stamp: tuple[int, int, int, int]) -> np.ndarray:
        """The ``APERTURE`` image written for a stamp, from the method's bits (FFI: as is)."""
        return aperture

    # -- stars ---------------------------------------------------------------------------
    def star(self, starid: int) -> int | None:
        """Index of a star in :attr:`stars`, or None when not in the catalog."""
        return self._by_id.get(int(starid))

    def stars_in(self, row_min: float, row_max: float, col_min: float, col_max: float):
        """Indices of :attr:`stars` whose position falls on the stamp rows/cols (half-open)."""
        lo = np.searchsorted(self.stars.row, row_min - 0.5, side="left")
        hi = np.searchsorted(self.stars.row, row_max - 0.5, side="left")
        idx = np.arange(lo, hi)
        col = self.stars.col[idx]
        return idx[(col >= col_min - 0.5) & (col < col_max - 0.5)]

    # -- time ----------------------------------------------------------------------------
    @cached_property
    def observer(self) -> ObserverState:
        """Where the observer is at every cadence (computed once per source).

        Raises
        ------
        tessphot.timing.EphemerisError
            When no ephemeris of TESS covers the data (the message says how to get one).
        """
        spacecraft = self.time - self.timecorr + BTJD_OFFSET
        ok = np.isfinite(spacecraft)
        if self.simulated or not ok.any():
            ephemeris = GeocentreEphemeris()
        else:
            ephemeris = spacecraft_ephemeris(
                float(spacecraft[ok].min()), float(spacecraft[ok].max()), self.timing
            )
        return observer_state(spacecraft, ephemeris)

    def barycentric_times(self, ra: float, dec: float) -> tuple[np.ndarray, np.ndarray]:
        """Barycentric times of a star and the correction they include [BTJD, d].

        SPOC's ``TIMECORR``/``BARYCORR`` (for the CCD centre in FFIs) is removed, and the
        star's own correction from the spacecraft's position is applied
        (:mod:`tessphot.timing`).
        """
        correction = barycentric_correction(self.observer, ra, dec)[0]
        return self.time - self.timecorr + correction, correction

    def time_keywords(self) -> dict[str, tuple[Any, str]]:
        """Light-curve header keywords saying how the times were made."""
        return {
            "TOFFSET": (float(self.time_offset), "[s] SPOC time-stamp offset removed"),
            "BARYSRC": (self.observer.source[:68], "observer position for TIME"),
        }


class CCDData(PixelData):
    """Target-independent data of a prepared FFI region (a CCD or a TESScut cutout).

    Parameters
    ----------
    input_folder : path-like
        Folder with the prepared-data file and its catalog.
    sector, camera, ccd : int
    contaminant_tmag_max : float
        Catalog stars fainter than this are left out.
    timing : TimingSettings, optional
        Where the spacecraft's position comes from.
    path : path-like, optional
        The prepared-data file (default ``sectorNNN_cameraC_ccdD.hdf5`` in the folder).

    Raises
    ------
    PhotometryError
        When the prepared-data file or the catalog is missing or unusable.
    """

    def __init__(
        self,
        input_folder: str | os.PathLike,
        sector: int,
        camera: int,
        ccd: int,
        contaminant_tmag_max: float,
        timing: TimingSettings | None = None,
        path: str | os.PathLike | None = None,
    ) -> None:
        folder = Path(input_folder)
        self.path = Path(path) if path is not None else folder / hdf5_name(sector, camera, ccd)
        if not self.path.is_file():
            raise PhotometryError(
                f"{self.path}: prepared data not found (run 'tessphot prepare' first)"
            )
        try:
            self.cube = PreparedCube(self.path)
        except OSError as err:
            raise PhotometryError(f"{self.path}: cannot read prepared data ({err})") from None
        attrs = self.cube.attrs
        self.timing = timing or TimingSettings()
        self.sector, self.camera, self.ccd = sector, camera, ccd
        self.origin: tuple[int, int] = self.cube.origin
        self.shape: tuple[int, int] = self.cube.shape
        self.cadence = float(attrs["cadence"])
        self.data_rel = int(attrs["data_rel"])
        procver = str(attrs.get("procver", ""))
        self.simulated = bool(attrs.get("simulated", procver.startswith(PIPELINE_NAME)))
        self.time_offset = float(attrs.get("time_offset", 0.0))
        self.time = self.cube.array("time").astype(np.float64)
        self.timecorr = self.cube.array("timecorr").astype(np.float64)
        self.cadenceno = self.cube.array("cadenceno").astype(np.int32)
        self.quality = self.cube.array("quality").astype(np.int32)
        #: Cadences used for averages and diagnostics (no flag of the default bitmask).
        self.good = np.isfinite(self.time) & ((self.quality & DEFAULT_QUALITY_BITMASK) == 0)
        self.reference_frame = int(attrs["reference_frame"])
        text = self.cube.h5["wcs"][self.reference_frame]
        wcs = wcs_from_string(text.decode() if isinstance(text, bytes) else str(text))
        if wcs is None:
            raise PhotometryError(f"{self.path}: no WCS for the reference frame")
        self.wcs: WCS = wcs
        self.motion = MotionModel.from_hdf5(self.cube.h5)
        self.motion_source = str(self.cube.h5["motion"].attrs.get("source", "unknown"))
        self.sumimage = self.cube.array("sumimage").astype(np.float64)
        self.read_noise = np.asarray(attrs["read_noise"], dtype=float)
        self.observation = ObservationInfo(
            sector=sector,
            camera=camera,
            ccd=ccd,
            cadence=self.cadence,
            data_rel=self.data_rel,
            crmiten=bool(attrs["crmiten"]),
            crblksz=int(attrs["crblksz"]),
            crspoc=bool(attrs["crspoc"]),
            num_frm=int(attrs["num_frm"]),
            nreadout=int(attrs["nreadout"]),
        )
        self.exposure_time = float(attrs["exposure_time"])
        self._load_catalog(catalog_path(folder, sector, camera, ccd), contaminant_tmag_max)
        self.mtime = self.path.stat().st_mtime_ns

    def close(self) -> None:
        """Close the prepared-data file."""
        self.cube.close()


_CCD_CACHE: OrderedDict[tuple, PixelData] = OrderedDict()


def cached_source(key: tuple, path: Path, make) -> PixelData:
    """A data source from the per-process cache (LRU), made with ``make()`` when missing or
    when its file changed on disk since it was cached."""
    cached = _CCD_CACHE.get(key)
    if cached is not None:
        try:
            fresh = path.stat().st_mtime_ns == cached.mtime
        except OSError:
            fresh = False
        if fresh:
            _CCD_CACHE.move_to_end(key)
            return cached
        cached.close()
        del _CCD_CACHE[key]
    data = make()
    _CCD_CACHE[key] = data
    while len(_CCD_CACHE) > CCD_CACHE_SIZE:
        _, old = _CCD_CACHE.popitem(last=False)
        old.close()
    return data


def ccd_data(
    input_folder: str | os.PathLike,
    sector: int,
    camera: int,
    ccd: int,
    contaminant_tmag_max: float,
    timing: TimingSettings | None = None,
    path: str | os.PathLike | None = None,
) -> CCDData:
    """The (cached) :class:`CCDData` of a prepared-data file (default: the CCD's).

    A file that changed on disk since it was cached is read again.
    """
    folder = Path(input_folder).resolve()
    path = Path(path).resolve() if path is not None else folder / hdf5_name(sector, camera, ccd)
    key = ("ffi", str(path), float(contaminant_tmag_max), timing)
    return cached_source(
        key,
        path,
        lambda: CCDData(
            input_folder, sector, camera, ccd, contaminant_tmag_max, timing=timing, path=path
        ),
    )


def clear_cache() -> None:
    """Close and forget every cached data source."""
    while _CCD_CACHE:
        _, data = _CCD_CACHE.popitem()
        data.close()


# --------------------------------------------------------------------------------------------
# Stamps


def stamp_size(tmag: float, min_size: int) -> tuple[int, int]:
    """Default stamp (height, width) for a star [px]: the original's table, odd, at least
    ``min_size``."""

    def odd(n: float) -> int:
        n = max(int(math.ceil(n)), int(min_size))
        return 2 * (n // 2) + 1

    tmag = float(tmag) if math.isfinite(float(tmag)) else STAMP_TMAG[-1]
    return odd(np.interp(tmag, STAMP_TMAG, STAMP_HEIGHT)), odd(
        np.interp(tmag, STAMP_TMAG, STAMP_WIDTH)
    )


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The smallest box ``(row_min, row_max, col_min, col_max)`` (half-open) holding the True
    pixels of a non-empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


# --------------------------------------------------------------------------------------------
# Log capture


class _ListHandler(logging.Handler):
    def __init__(self, records: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.levelname}: {record.getMessage()}")


@contextmanager
def capture_warnings(records: list[str]) -> Iterator[list[str]]:
    """Append the WARNING and ERROR messages logged by tessphot inside the block to
    ``records`` (as ``"LEVEL: message"``); the handler is removed afterwards."""
    handler = _ListHandler(records)
    root = logging.getLogger(PACKAGE_LOGGER)
    root.addHandler(handler)
    try:
        yield records
    finally:
        root.removeHandler(handler)


# --------------------------------------------------------------------------------------------
# The base class


class BasePhotometry:
    """A target of the photometry: its data, stamp, catalog and results.

    Parameters
    ----------
    starid : int
        TIC number.
    input_folder : path-like
        Folder with the prepared data and catalogs.
    output_folder : path-like
        Root of the light-curve folders.
    sector, camera, ccd : int
    cadence : int, optional
        Cadence of the task [s]; must match the data.
    datasource : str
        ``'ffi'`` (prepared FFI data: the CCD's, or a TESScut cutout holding the star),
        ``'tpf'`` (the star's own target pixel file) or ``'tpf:<TIC>'`` (a secondary target
        on the target pixel file of TIC ``<TIC>``).
    plot : bool
        Write diagnostic plots with the light curve.
    version : int
        Processing version written into the file name and header.
    settings : mapping, optional
        The ``[photometry]`` settings.
    timing : mapping, optional
        The ``[timing]`` settings (:class:`tessphot.timing.TimingSettings`): where the
        spacecraft's position comes from.

    Raises
    ------
    PhotometryError
        For an unsupported data source, missing data, a star not in the catalog or not on
        the data.
    """

    #: Name of the method (``PHOTMET``).
    method = "base"

    def __init__(
        self,
        starid: int,
        input_folder: str | os.PathLike,
        output_folder: str | os.PathLike,
        sector: int,
        camera: int,
        ccd: int,
        cadence: int | None = None,
        datasource: str = "ffi",
        plot: bool = False,
        version: int = 1,
        settings: Mapping[str, Any] | None = None,
        timing: Mapping[str, Any] | TimingSettings | None = None,
    ) -> None:
        from tessphot.photometry.config import photometry_settings

        match = DATASOURCE_PATTERN.fullmatch(str(datasource))
        if match is None:
            raise PhotometryError(
                f"TIC {starid}: invalid data source {datasource!r} (ffi, tpf or tpf:<TIC>)"
            )
        self.starid = int(starid)
        self.datasource = str(datasource)
        #: The primary target of a secondary TPF target (None otherwise).
        self.primary = int(match["primary"]) if match["primary"] else None
        self.input_folder = Path(input_folder)
        self.output_folder = Path(output_folder)
        self.plot = bool(plot)
        self.version = int(version)
        self.raw_settings = dict(settings or {})
        self.settings = photometry_settings(self.raw_settings)
        self.timing = (
            timing if isinstance(timing, TimingSettings) else TimingSettings.from_mapping(timing)
        )
        tmag_max = self.settings.contaminant_tmag_max
        if self.datasource == FFI_DATASOURCE:
            self.data = self._ffi_source(sector, camera, ccd)
        else:
            from tessphot.photometry.tpf_source import tpf_data

            self.data = tpf_data(
                input_folder,
                self.primary or self.starid,
                sector,
                camera,
                ccd,
                cadence,
                tmag_max,
                timing=self.timing,
            )
        if cadence is not None and int(cadence) != int(round(self.data.cadence)):
            raise PhotometryError(
                f"TIC {starid}: task cadence {cadence} s, but {self.data.path.name} holds "
                f"{self.data.cadence:.0f}-s data"
            )
        index = self.data.star(self.starid)
        if index is None:
            raise PhotometryError(
                f"TIC {starid}: star could not be found in the catalog {self.data.catalog_file}"
            )
        stars = self.data.stars
        self._index = index
        self.tmag = float(stars.tmag[index])
        self.row_ref = float(stars.row[index])
        self.col_ref = float(stars.col[index])
        r0, c0 = self.data.origin
        ny, nx = self.data.shape
        if not (
            r0 - 0.5 <= self.row_ref < r0 + ny - 0.5 and c0 - 0.5 <= self.col_ref < c0 + nx - 0.5
        ):
            raise PhotometryError(
                f"TIC {starid}: star at science pixel (row {self.row_ref:.1f}, column "
                f"{self.col_ref:.1f}) is not on the data of {self.data.path.name} (rows "
                f"{r0}-{r0 + ny - 1}, columns {c0}-{c0 + nx - 1})"
            )
        # Where the star is in every frame, and on average over the good frames (where it
        # sits in the average image).
        self.row_t, self.col_t = (
            v[:, 0]
            for v in self.data.motion.positions([self.row_ref], [self.col_ref], self.data.time)
        )
        good = self.data.good & np.isfinite(self.row_t)
        if not good.any():
            good = np.isfinite(self.row_t)
        self.row_mean = float(np.mean(self.row_t[good])) if good.any() else self.row_ref
        self.col_mean = float(np.mean(self.col_t[good])) if good.any() else self.col_ref
        if not (
            r0 - 0.5 <= self.row_mean < r0 + ny - 0.5 and c0 - 0.5 <= self.col_mean < c0 + nx - 0.5
        ):
            raise PhotometryError(
                f"TIC {starid}: star on average at science pixel (row {self.row_mean:.2f}, "
                f"column {self.col_mean:.2f}) is not on the data of {self.data.path.name} (rows "
                f"{r0}-{r0 + ny - 1}, columns {c0}-{c0 + nx - 1})"
            )
        if self.data.full_stamp:
            self.stamp = self.max_stamp
        else:
            height, width = stamp_size(self.tmag, self.settings.stamp_min_size)
            self.stamp = self._centred_stamp(height, width)
        self.stamp_resizes = 0
        self.errors: list[str] = []
        self.skip_targets: list[int] = []
        self.lightcurve: dict[str, np.ndarray] = {}
        self.final_mask: np.ndarray | None = None
        self.contamination = math.nan
        self.method_keywords: dict[str, Any] = {}
        #: Halo photometry's pixel weights (the ``WEIGHTMAP`` extension).
        self.weightmap: WeightMap | None = None
        self.details: dict[str, Any] = {}
        self.status = STATUS.UNKNOWN
        self.lightcurve_file: Path | None = None
        self.plot_files: list[Path] = []

    # -- context manager ------------------------------------------------------------------
    def __enter__(self) -> BasePhotometry:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release per target (the CCD data stay cached)."""

    def _ffi_source(self, sector: int, camera: int, ccd: int) -> CCDData:
        """The prepared FFI data of the star: the CCD's file, or, among several files of
        the CCD (TESScut cutouts), the one where the star is farthest from the edge."""
        tmag_max = self.settings.contaminant_tmag_max
        paths = prepared_files(self.input_folder, sector, camera, ccd)
        if len(paths) <= 1:
            path = paths[0] if paths else None
            return ccd_data(self.input_folder, sector, camera, ccd, tmag_max, self.timing, path)
        best, best_distance = None, -math.inf
        for path in paths:
            data = ccd_data(self.input_folder, sector, camera, ccd, tmag_max, self.timing, path)
            index = data.star(self.starid)
            if index is None:
                continue
            (r0, c0), (ny, nx) = data.origin, data.shape
            row, col = data.stars.row[index] - r0, data.stars.col[index] - c0
            distance = min(row + 0.5, ny - 0.5 - row, col + 0.5, nx - 0.5 - col)
            if distance > best_distance:
                best, best_distance = data, distance
        if best is None:
            return ccd_data(self.input_folder, sector, camera, ccd, tmag_max, self.timing, paths[0])
        return best

    # -- target ----------------------------------------------------------------------------
    @cached_property
    def catalog_row(self) -> np.void:
        """The target's catalog record."""
        return self.data.catalog[self.data.stars.index[self._index]]

    @property
    def target_info(self) -> TargetInfo:
        """The header information of the target."""
        star = self.catalog_row

        def opt(name: str) -> float | None:
            value = float(star[name])
            return value if math.isfinite(value) else None

        return TargetInfo(
            starid=self.starid,
            ra=float(star["ra_J2000"]),
            dec=float(star["decl_J2000"]),
            tmag=self.tmag,
            pm_ra=opt("pm_ra"),
            pm_dec=opt("pm_decl"),
            teff=opt("teff"),
            ticver=self.data.catalog_settings.ticver,
        )

    # -- stamp -------------------------------------------------------------------------------
    @property
    def max_stamp(self) -> tuple[int, int, int, int]:
        """The region covered by the data (science coordinates, half-open)."""
        r0, c0 = self.data.origin
        return r0, r0 + self.data.shape[0], c0, c0 + self.data.shape[1]

    def _clip(self, stamp: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        lo_r, hi_r, lo_c, hi_c = self.max_stamp
        r0, r1, c0, c1 = stamp
        clipped = (max(r0, lo_r), min(r1, hi_r), max(c0, lo_c), min(c1, hi_c))
        if clipped[1] <= clipped[0] or clipped[3] <= clipped[2]:
            raise PhotometryError(f"TIC {self.starid}: invalid stamp {stamp}")
        return clipped

    def _centred_stamp(self, height: int, width: int) -> tuple[int, int, int, int]:
        row = int(round(self.row_mean))
        col = int(round(self.col_mean))
        return self._clip(
            (row - height // 2, row + height // 2 + 1, col - width // 2, col + width // 2 + 1)
        )

    def resize_stamp(self, down: int = 0, up: int = 0, left: int = 0, right: int = 0) -> bool:
        """Grow (or shrink) the stamp: ``down`` rows before ``row_min``, ``up`` after
        ``row_max``, ``left``/``right`` columns; clipped to the data. Returns whether the
        stamp changed (counted in :attr:`stamp_resizes`)."""
        r0, r1, c0, c1 = self.stamp
        new = self._clip((r0 - down, r1 + up, c0 - left, c1 + right))
        if new == self.stamp:
            return False
        self.stamp = new
        self.stamp_resizes += 1
        for name in ("sumimage", "catalog"):
            self.__dict__.pop(name, None)
        return True

    @property
    def stamp_shape(self) -> tuple[int, int]:
        r0, r1, c0, c1 = self.stamp
        return r1 - r0, c1 - c0

    @property
    def stamp_origin(self) -> tuple[int, int]:
        return self.stamp[0], self.stamp[2]

    @cached_property
    def sumimage(self) -> np.ndarray:
        """Average image of the stamp [e-/s] (NaN where no data)."""
        r0, r1, c0, c1 = self.stamp
        o = self.data.origin
        return self.data.sumimage[r0 - o[0] : r1 - o[0], c0 - o[1] : c1 - o[1]]

    @cached_property
    def catalog(self) -> dict[str, np.ndarray]:
        """Catalog stars on the stamp: ``starid``, ``tmag``, ``row``, ``column`` (stamp
        coordinates at their average position in the data, where they are in
        :attr:`sumimage`), ``row_ref``, ``column_ref`` (science coordinates in the reference
        frame), sorted by Tmag."""
        idx = self.data.stars_in(*self.stamp)
        stars = self.data.stars
        rows, cols = stars.row[idx], stars.col[idx]
        # The image motion at the target applies to the whole small stamp.
        d_row = self.row_mean - self.row_ref
        d_col = self.col_mean - self.col_ref
        order = np.lexsort((stars.starid[idx], stars.tmag[idx]))
        idx = idx[order]
        return {
            "starid": stars.starid[idx],
            "tmag": stars.tmag[idx],
            "row": rows[order] + d_row - self.stamp[0],
            "column": cols[order] + d_col - self.stamp[2],
            "row_ref": rows[order],
            "column_ref": cols[order],
        }

    def stars_reaching(self, origin: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
        """Indices into ``data.stars`` of the catalogued stars whose light can reach a box of
        pixels (science-area ``origin`` of its pixel ``[0, 0]``, ``shape``), the target
        first."""
        r0, c0 = origin
        h, w = shape
        idx = self.data.stars_in(
            r0 - PRF_REACH, r0 + h + PRF_REACH, c0 - PRF_REACH, c0 + w + PRF_REACH
        )
        return np.r_[self._index, idx[idx != self._index]]

    def catalog_attime(self, times: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the stamp's catalog stars per cadence (science coordinates, from the
        jitter model): arrays (n_times, n_stars) of rows and columns."""
        times = self.data.time if times is None else np.asarray(times, dtype=float)
        cat = self.catalog
        return self.data.motion.positions(cat["row_ref"], cat["column_ref"], times)

    @property
    def target_stamp_position(self) -> tuple[float, float]:
        """The target's average position in stamp coordinates."""
        return self.row_mean - self.stamp[0], self.col_mean - self.stamp[2]

    # -- data access ----------------------------------------------------------------------
    def read_cube(self, name: str, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """A cube (``images``, ``images_err``, ``backgrounds``, ``pixel_flags``) over all
        cadences on a box of the stamp (stamp coordinates, half-open; default the whole
        stamp), shape (N, rows, cols)."""
        height, width = self.stamp_shape
        r0, r1, c0, c1 = box if box is not None else (0, height, 0, width)
        sr, sc = self.stamp_origin
        return self.data.cube.stamp(name, sr + r0, sr + r1, sc + c0, sc + c1)

    def time_blocks(self, box: tuple[int, int, int, int]):
        """A function iterating over blocks of cadences of some cubes: ``(t0, t1, {name:
        cube})``; ``pixel_flags`` covers the whole stamp, the others the box (stamp
        coordinates). Cubes that fit in :data:`STREAM_BYTES` are read once and kept."""
        r0, r1, c0, c1 = box
        n = self.data.time.size
        h, w = self.stamp_shape
        per_cadence = 3 * 4 * (r1 - r0) * (c1 - c0) + h * w
        step = n
        if n * per_cadence > STREAM_BYTES:
            step = max(CUBE_CHUNK_CADENCES, STREAM_BYTES // per_cadence)
            step -= step % CUBE_CHUNK_CADENCES
        cache: dict[str, np.ndarray] = {}
        dataset = self.data.cube.h5
        sr, sc = self.stamp_origin
        orow, ocol = self.data.origin

        def read(name: str, t0: int, t1: int) -> np.ndarray:
            if name == "pixel_flags":
                rr, cc = (0, h), (0, w)
            else:
                rr, cc = (r0, r1), (c0, c1)
            return dataset[name][
                t0:t1,
                sr + rr[0] - orow : sr + rr[1] - orow,
                sc + cc[0] - ocol : sc + cc[1] - ocol,
            ]

        def blocks(names):
            for t0 in range(0, n, step):
                t1 = min(t0 + step, n)
                cubes = {}
                for name in names:
                    if step == n:
                        if name not in cache:
                            cache[name] = read(name, 0, n)
                        cubes[name] = cache[name]
                    else:
                        cubes[name] = read(name, t0, t1)
                yield t0, t1, cubes

        return blocks

    @property
    def prf(self) -> PRFModel:
        """The PRF model of the target's CCD (:func:`tessphot.photometry.scene.ccd_prf`)."""
        d = self.data
        s = self.settings
        return ccd_prf(
            d.cube.attrs.get("settings"),
            s.prf_dir,
            d.sector,
            d.camera,
            d.ccd,
            prf_cache=s.prf_cache,
            prf_url=s.prf_url,
        )

    @property
    def prf_trusted(self) -> bool:
        """Whether the PRF describes the stars' wings well enough for what is built on them
        (the motion correction, a fit of a saturated star's wings): a SPOC model, or the
        analytic PRF on data simulated with it (on real stars it is too crude)."""
        return not (isinstance(self.prf, AnalyticPRF) and not self.data.simulated)

    @property
    def read_noise(self) -> float:
        """Read noise of the CCD output the target is on [e- per pixel per frame]."""
        output = int(
            np.clip(round(self.col_mean) // OUTPUT_WIDTH, 0, self.data.read_noise.size - 1)
        )
        return float(self.data.read_noise[output])

    # -- the method ----------------------------------------------------------------------
    def do_photometry(self) -> STATUS:
        """Fill :attr:`lightcurve`, :attr:`final_mask`, :attr:`contamination` and
        :attr:`skip_targets`; return the status. Implemented by the methods."""
        raise NotImplementedError

    def photometry(self) -> STATUS:
        """Run the method and compute the diagnostics (:attr:`details`).

        Returns
        -------
        STATUS
        """
        with capture_warnings(self.errors):
            status = self.do_photometry()
            if status == STATUS.UNKNOWN:
                raise ValueError("the photometry method returned the status UNKNOWN")
            self.status = STATUS(status)
            details: dict[str, Any] = {
                "stamp": self.stamp,
                "stamp_resizes": self.stamp_resizes,
                "contamination": self.contamination,
                "skip_targets": list(self.skip_targets),
            }
            if self.status in HAS_LIGHTCURVE:
                lc = self.lightcurve
                flux = lc["flux"]
                if not np.any(np.isfinite(flux)) or not np.any(np.isfinite(lc["flux_err"])):
                    raise PhotometryError(f"TIC {self.starid}: the light curve is all NaN")
                details.update(
                    lightcurve_diagnostics(
                        lc["time"],
                        flux,
                        lc["flux_err"],
                        lc["pixel_quality"],
                        lc["centroid_row"],
                        lc["centroid_column"],
                    )
                )
            if self.final_mask is not None:
                details.update(mask_diagnostics(self.final_mask, self.sumimage))
        details["errors"] = list(self.errors)
        self.details = details
        return self.status

    # -- output --------------------------------------------------------------------------
    @property
    def output_path(self) -> Path:
        """Where the light curve goes (§4.1 of the notes)."""
        d = self.data
        return lightcurve_path(
            self.output_folder,
            self.starid,
            d.sector,
            d.camera,
            d.ccd,
            int(round(d.cadence)),
            d.data_rel,
            self.version,
        )

    @property
    def plot_folder(self) -> Path:
        """The original's plot folder: ``<lc folder>/plots/<TIC:011d>``."""
        return self.output_path.parent / "plots" / f"{self.starid:011d}"

    def settings_record(self) -> dict[str, Any]:
        """Every tunable of the photometry (written into the light-curve header)."""
        return {"photometry": self.settings.to_dict(), "timing": self.timing.to_dict()}

    def aperture_image(self) -> np.ndarray:
        """The ``APERTURE`` bitmask of the stamp."""
        raise NotImplementedError

    def set_lightcurve(
        self,
        flux: np.ndarray,
        flux_err: np.ndarray,
        flux_bkg: np.ndarray,
        quality: np.ndarray,
        centroid_row: np.ndarray,
        centroid_column: np.ndarray,
        cadenceno: np.ndarray | None = None,
    ) -> None:
        """Store the light curve: the method's flux columns with the star's barycentric times,
        the pixel quality and the position correction from the jitter model."""
        star = self.catalog_row
        time, timecorr = self.data.barycentric_times(float(star["ra"]), float(star["decl"]))
        self.lightcurve = {
            "time": time,
            "timecorr": timecorr,
            "cadenceno": self.data.cadenceno if cadenceno is None else cadenceno,
            "flux": flux,
            "flux_err": flux_err,
            "flux_bkg": flux_bkg,
            "quality": quality,
            "pixel_quality": self.data.quality,
            "centroid_row": centroid_row,
            "centroid_column": centroid_column,
            "pos_corr_row": self.row_t - self.row_ref,
            "pos_corr_column": self.col_t - self.col_ref,
        }

    def save_lightcurve(self) -> Path:
        """Write the light curve (TASOC format, atomically) and record its path.

        The path stored in :attr:`details` (``filepath_lightcurve``) is relative to the input
        folder when the output is inside it, else to the output folder.
        """
        if self.status not in HAS_LIGHTCURVE:
            raise ValueError(f"TIC {self.starid}: no light curve to save (status {self.status})")
        lc = self.lightcurve
        path = write_lightcurve(
            self.output_path,
            target=self.target_info,
            observation=self.data.observation,
            method=self.method,
            version=self.version,
            time=lc["time"],
            timecorr=lc["timecorr"],
            cadenceno=lc["cadenceno"],
            flux=lc["flux"],
            flux_err=lc["flux_err"],
            flux_bkg=lc["flux_bkg"],
            quality=lc["quality"],
            pixel_quality=lc["pixel_quality"],
            centroid_row=lc["centroid_row"],
            centroid_column=lc["centroid_column"],
            pos_corr_row=lc["pos_corr_row"],
            pos_corr_column=lc["pos_corr_column"],
            sumimage=self.sumimage,
            aperture=self.data.merge_aperture(self.aperture_image(), self.stamp),
            stamp_origin=self.stamp_origin,
            wcs=self.data.wcs_header,
            method_keywords={**self.method_keywords, **self.data.time_keywords()},
            settings=self.settings_record(),
            weightmap=self.weightmap,
            compresslevel=self.settings.gzip_level,
        )
        self.lightcurve_file = path
        out = self.output_folder.resolve()
        inp = self.input_folder.resolve()
        base = inp if out == inp or inp in out.parents else out
        self.details["filepath_lightcurve"] = os.path.relpath(path.resolve(), base)
        return path
