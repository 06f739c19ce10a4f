"""The interface of every source of pixels: :class:`PixelSource`.

A source holds what does not depend on the target: over its ``N`` cadences the times
(BTJD, mid-exposure, time-stamp offsets corrected), the barycentric correction they
include, cadence numbers, quality and the good cadences; over its region (``origin``,
``shape``, science coordinates) the average image, the reference WCS, the motion model and
the cubes (``images``, ``images_err``, ``backgrounds``, ``pixel_flags``, read in blocks of
cadences by :meth:`PixelSource.blocks`); and the catalog stars projected onto the region.
Implementations: :class:`tessphot.sources.ffi.FFISource` (a prepared FFI region) and
:class:`tessphot.sources.tpf.TPFSource` (a target pixel file).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from astropy.wcs import WCS

from tessphot.catalog.sqlite_catalog import CatalogSettings
from tessphot.config.timing import TimingSettings
from tessphot.constants import BTJD_OFFSET
from tessphot.lightcurve import ObservationInfo
from tessphot.prepare.motion import MotionModel
from tessphot.prf.models import PRFModel
from tessphot.prf.star_halo import StarHalos
from tessphot.sources.blocks import BlockReader, Box
from tessphot.sources.stars import ProjectedCatalog, StarTable
from tessphot.timing import (
    EphemerisError,
    GeocentreEphemeris,
    ObserverState,
    barycentric_correction,
    file_correction_state,
    observer_state,
    spacecraft_ephemeris,
)

logger = logging.getLogger(__name__)

#: Time keywords astropy writes with a frame's WCS; left out of the stamp images' WCS.
WCS_TIME_KEYWORDS = (
    *("TIMESYS", "TIMEUNIT", "MJDREF", "DATE-OBS", "MJD-OBS", "TSTART", "DATE-END"),
    *("MJD-END", "TSTOP", "TELAPSE", "TIMEDEL", "TIMEPIXR", "DATE-AVG", "MJD-AVG"),
    *("DATEREF", "MJDREFI", "MJDREFF", "TIMEOFFS"),
)


class PixelSource(ABC):
    """Target-independent data of one source of pixels (see the module notes).

    Attributes
    ----------
    path : Path
        The file the pixels come from.
    sector, camera, ccd : int
    cadence : float
        Cadence [s].
    data_rel : int
        SPOC data release.
    time, timecorr : ndarray
        Times [BTJD] and the barycentric correction they include [d].
    cadenceno, quality : ndarray
    good : ndarray
        Cadences used for averages and diagnostics (no flag of the default bitmask).
    origin, shape : tuple of int
        The region (science coordinates of its pixel [0, 0]; rows, columns).
    sumimage : ndarray
        The average image of the region [e-/s].
    wcs : WCS
        The reference WCS (science coordinates).
    motion : MotionModel
        The image motion.
    read_noise : ndarray
        Read noise per CCD output [e- per pixel per frame].
    observation : ObservationInfo
        The observation's header information.
    full_stamp : bool
        The stamp of every target is the whole region (target pixel files).
    simulated : bool
        Simulated data: the observer is the geocentre (as the simulator's ``BARYCORR``).
    time_offset : float
        Correction applied to SPOC's time stamps (section 5.15 of the notes) [s].
    mtime : int
        Modification time of the file when read [ns] (the cache reads a changed file again).
    """

    full_stamp = False
    simulated = False
    time_offset = 0.0

    path: Path
    sector: int
    camera: int
    ccd: int
    cadence: float
    data_rel: int
    time: np.ndarray
    timecorr: np.ndarray
    cadenceno: np.ndarray
    quality: np.ndarray
    good: np.ndarray
    origin: tuple[int, int]
    shape: tuple[int, int]
    sumimage: np.ndarray
    wcs: WCS
    motion: MotionModel
    read_noise: np.ndarray
    observation: ObservationInfo
    timing: TimingSettings
    mtime: int

    # -- catalog -------------------------------------------------------------------------
    def _set_catalog(self, catalog: ProjectedCatalog) -> None:
        """Keep the projected catalog of the source."""
        self.catalog_file = catalog.path
        self.catalog_settings: CatalogSettings = catalog.settings
        self.catalog = catalog.records
        self.stars: StarTable = catalog.stars
        self._by_id = {int(s): i for i, s in enumerate(self.stars.starid)}

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

    # -- WCS and aperture ----------------------------------------------------------------
    @cached_property
    def wcs_header(self) -> list[tuple]:
        """The reference WCS as header cards ``(key, value, comment)``.

        The light-curve writer shifts them per stamp. The reference frame's time keywords
        are left out (they would mislabel the stamp images, which average all cadences).
        """
        header = self.wcs.to_header(relax=True)
        return [
            (card.keyword, card.value, card.comment)
            for card in header.cards
            if card.keyword not in WCS_TIME_KEYWORDS
        ]

    @property
    def prepare_settings(self) -> str | None:
        """The prepare stage's settings (JSON) the PRF choice depends on (None: not prepared)."""
        return None

    @property
    def effective_prf(self) -> PRFModel | None:
        """The PRF the prepare stage measured on the data (None: none, or not prepared)."""
        return None

    @property
    def star_halos(self) -> StarHalos | None:
        """The stars' halos measured with the effective PRF (None: none, or not prepared)."""
        return None

    @property
    def background_record(self) -> dict[str, Any]:
        """How the background of the pixels was estimated: at least its ``method``.

        Written into the light curves' headers with the settings.
        """
        return {"method": "unknown"}

    def merge_aperture(self, aperture: np.ndarray, stamp: Box) -> np.ndarray:
        """The ``APERTURE`` image written for a stamp, from the method's bits (FFI: as is)."""
        return aperture

    # -- pixels --------------------------------------------------------------------------
    @abstractmethod
    def read(self, name: str, t0: int, t1: int, box: Box) -> np.ndarray:
        """Cadences ``t0:t1`` of a cube over a box (science coordinates, half-open)."""

    def block_reader(self, box: Box, *, flags_box: Box | None = None) -> BlockReader:
        """A reader of blocks of cadences over a box (see :class:`BlockReader`)."""
        return BlockReader(self.read, self.time.size, box, flags_box=flags_box)

    def blocks(
        self, names: Iterable[str], box: Box, *, flags_box: Box | None = None
    ) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
        """Blocks ``(t0, t1, {name: cube})`` of cubes over a box, within the byte budget."""
        return self.block_reader(box, flags_box=flags_box)(names)

    @abstractmethod
    def close(self) -> None:
        """Release open files."""

    # -- time ----------------------------------------------------------------------------
    @cached_property
    def observer(self) -> ObserverState:
        """Where the observer is at every cadence (computed once per source).

        When no ephemeris of TESS covers the data, every star gets the file's own
        ``TIMECORR`` (with a WARNING; the light curves' ``BARYSRC`` says so).
        """
        spacecraft = self.time - self.timecorr + BTJD_OFFSET
        ok = np.isfinite(spacecraft)
        if self.simulated or not ok.any():
            return observer_state(spacecraft, GeocentreEphemeris())
        first, last = float(spacecraft[ok].min()), float(spacecraft[ok].max())
        try:
            ephemeris = spacecraft_ephemeris(first, last, self.timing)
        except EphemerisError as err:
            logger.warning(
                "%s: per-star times not possible, the file's own TIMECORR is used for every "
                "star (%s)",
                self.path.name,
                err,
            )
            return file_correction_state(spacecraft, self.timecorr)
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
