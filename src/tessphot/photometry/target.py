"""The target of a photometry method: the star, its stamp and the stars around it.

A :class:`Target` holds what every method needs of one star on one pixel source
(:class:`tessphot.sources.PixelSource`): where the star is (in the reference frame, at every
cadence and on average), its stamp (and its growth), the catalogued stars on and near it,
its catalog record, the PRF of its CCD (and whether it is trusted) and the read noise.
:func:`open_target` opens the pixel source of a task and places the star on it.

Coordinates are 0-based science-area ``(row, column)``; stamps are half-open boxes
(:mod:`tessphot.photometry.stamps`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np

from tessphot.config.photometry import PhotometrySettings, photometry_settings
from tessphot.constants import OUTPUT_WIDTH
from tessphot.lightcurve import TargetInfo
from tessphot.photometry.errors import PhotometryError
from tessphot.photometry.scene import PRF_REACH, ccd_prf
from tessphot.photometry.stamps import stamp_size
from tessphot.prf import AnalyticPRF, PRFModel
from tessphot.prf.effective import EffectivePRF
from tessphot.prf.star_halo import StarHalos
from tessphot.sources import BlockReader, PixelSource
from tessphot.sources.select import primary_of, task_source
from tessphot.sources.tpf_background import TPFBackground
from tessphot.timing import TimingSettings

#: A stamp ``(row_min, row_max, col_min, col_max)`` (science coordinates, half-open).
Stamp = tuple[int, int, int, int]


class Target:
    """A star on a pixel source (see the module notes).

    Parameters
    ----------
    source : PixelSource
        The pixels.
    starid : int
        TIC number.
    settings : PhotometrySettings
        The ``[photometry]`` settings (stamp size, PRF).
    target_limit : float, optional
        The task list's faint limit [Tmag] (:attr:`target_limit`).

    Raises
    ------
    PhotometryError
        For a star not in the catalog or not on the data.
    """

    def __init__(
        self,
        source: PixelSource,
        starid: int,
        settings: PhotometrySettings,
        *,
        target_limit: float | None = None,
    ) -> None:
        self.source = source
        self.starid = int(starid)
        self.settings = settings
        #: The task list's faint limit [Tmag]: fainter catalogued stars are no targets of
        #: their own (None: unknown, any star may be one).
        self.target_limit = target_limit
        index = source.star(self.starid)
        if index is None:
            raise PhotometryError(
                f"TIC {starid}: star could not be found in the catalog {source.catalog_file}"
            )
        stars = source.stars
        #: Index of the star in ``source.stars``.
        self.index = index
        self.tmag = float(stars.tmag[index])
        self.row_ref = float(stars.row[index])
        self.col_ref = float(stars.col[index])
        self._check_on_data(self.row_ref, self.col_ref, "", ".1f")
        # Where the star is in every frame, and on average over the good frames (where it
        # sits in the average image).
        self.row_t, self.col_t = (
            v[:, 0] for v in source.motion.positions([self.row_ref], [self.col_ref], source.time)
        )
        good = source.good & np.isfinite(self.row_t)
        if not good.any():
            good = np.isfinite(self.row_t)
        self.row_mean = float(np.mean(self.row_t[good])) if good.any() else self.row_ref
        self.col_mean = float(np.mean(self.col_t[good])) if good.any() else self.col_ref
        self._check_on_data(self.row_mean, self.col_mean, " on average", ".2f")
        if source.full_stamp:
            self.stamp = self.max_stamp
        else:
            height, width = stamp_size(self.tmag, settings.stamp_min_size)
            self.stamp = self.centred_stamp(height, width)
        #: How often the stamp was resized.
        self.stamp_resizes = 0

    def _check_on_data(self, row: float, col: float, how: str, fmt: str) -> None:
        (r0, c0), (ny, nx) = self.source.origin, self.source.shape
        if not (r0 - 0.5 <= row < r0 + ny - 0.5 and c0 - 0.5 <= col < c0 + nx - 0.5):
            raise PhotometryError(
                f"TIC {self.starid}: star{how} at science pixel (row {row:{fmt}}, column "
                f"{col:{fmt}}) is not on the data of {self.source.path.name} (rows "
                f"{r0}-{r0 + ny - 1}, columns {c0}-{c0 + nx - 1})"
            )

    # -- the star --------------------------------------------------------------------------
    @cached_property
    def catalog_row(self) -> np.void:
        """The target's catalog record."""
        return self.source.catalog[self.source.stars.index[self.index]]

    @property
    def info(self) -> TargetInfo:
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
            ticver=self.source.catalog_settings.ticver,
        )

    def barycentric_times(self) -> tuple[np.ndarray, np.ndarray]:
        """The star's barycentric times and the correction they include [BTJD, d]."""
        star = self.catalog_row
        return self.source.barycentric_times(float(star["ra"]), float(star["decl"]))

    # -- stamp -------------------------------------------------------------------------------
    @property
    def max_stamp(self) -> Stamp:
        """The region covered by the data (science coordinates, half-open)."""
        r0, c0 = self.source.origin
        return r0, r0 + self.source.shape[0], c0, c0 + self.source.shape[1]

    def _clip(self, stamp: Stamp) -> Stamp:
        lo_r, hi_r, lo_c, hi_c = self.max_stamp
        r0, r1, c0, c1 = stamp
        clipped = (max(r0, lo_r), min(r1, hi_r), max(c0, lo_c), min(c1, hi_c))
        if clipped[1] <= clipped[0] or clipped[3] <= clipped[2]:
            raise PhotometryError(f"TIC {self.starid}: invalid stamp {stamp}")
        return clipped

    def centred_stamp(self, height: int, width: int) -> Stamp:
        """A stamp of a size centred on the star's mean position, clipped to the data."""
        row = int(round(self.row_mean))
        col = int(round(self.col_mean))
        return self._clip(
            (row - height // 2, row + height // 2 + 1, col - width // 2, col + width // 2 + 1)
        )

    def set_stamp(self, stamp: Stamp) -> None:
        """Use another stamp (not counted as a resize)."""
        self.stamp = stamp
        for name in ("sumimage", "catalog"):
            self.__dict__.pop(name, None)

    def resize_stamp(self, down: int = 0, up: int = 0, left: int = 0, right: int = 0) -> bool:
        """Grow (or shrink) the stamp, clipped to the data.

        ``down`` rows before ``row_min``, ``up`` after ``row_max``, ``left``/``right``
        columns. Returns whether the stamp changed (counted in :attr:`stamp_resizes`).
        """
        r0, r1, c0, c1 = self.stamp
        new = self._clip((r0 - down, r1 + up, c0 - left, c1 + right))
        if new == self.stamp:
            return False
        self.set_stamp(new)
        self.stamp_resizes += 1
        return True

    @property
    def stamp_shape(self) -> tuple[int, int]:
        """(rows, columns) of the stamp."""
        r0, r1, c0, c1 = self.stamp
        return r1 - r0, c1 - c0

    @property
    def stamp_origin(self) -> tuple[int, int]:
        """Science coordinates of the stamp's pixel [0, 0]."""
        return self.stamp[0], self.stamp[2]

    @cached_property
    def sumimage(self) -> np.ndarray:
        """Average image of the stamp [e-/s] (NaN where no data)."""
        r0, r1, c0, c1 = self.stamp
        o = self.source.origin
        return self.source.sumimage[r0 - o[0] : r1 - o[0], c0 - o[1] : c1 - o[1]]

    @property
    def stamp_position(self) -> tuple[float, float]:
        """The target's average position in stamp coordinates."""
        return self.row_mean - self.stamp[0], self.col_mean - self.stamp[2]

    def block_reader(self, box: Stamp) -> BlockReader:
        """A reader of blocks of cadences over a box of the stamp (stamp coordinates).

        ``reader(names)`` iterates over ``(t0, t1, {name: cube})``; ``pixel_flags`` covers
        the whole stamp, the other cubes the box (:class:`tessphot.sources.BlockReader`).
        """
        r0, r1, c0, c1 = box
        sr, sc = self.stamp_origin
        return self.source.block_reader((sr + r0, sr + r1, sc + c0, sc + c1), flags_box=self.stamp)

    # -- stars -------------------------------------------------------------------------------
    @cached_property
    def catalog(self) -> dict[str, np.ndarray]:
        """Catalog stars on the stamp, sorted by Tmag.

        ``starid``, ``tmag``, ``row``, ``column`` (stamp coordinates at their average
        position in the data, where they are in :attr:`sumimage`), ``row_ref``,
        ``column_ref`` (science coordinates in the reference frame).
        """
        idx = self.source.stars_in(*self.stamp)
        stars = self.source.stars
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
        """Indices into ``source.stars`` of the stars whose light can reach a box of pixels.

        The box is given by the science-area ``origin`` of its pixel ``[0, 0]`` and its
        ``shape``; the target comes first.
        """
        r0, c0 = origin
        h, w = shape
        idx = self.source.stars_in(
            r0 - PRF_REACH, r0 + h + PRF_REACH, c0 - PRF_REACH, c0 + w + PRF_REACH
        )
        return np.r_[self.index, idx[idx != self.index]]

    # -- PRF and noise -----------------------------------------------------------------------
    @property
    def prf(self) -> PRFModel:
        """The PRF of the target's CCD.

        The effective PRF measured by the prepare stage when there is one, ``[photometry]
        effective_prf`` is true and ``prf_dir`` empty (with its change with time, a
        :class:`~tessphot.prf.focus.FocusedPRF`, unless ``effective_prf_focus`` is false);
        else the model (:func:`tessphot.photometry.scene.ccd_prf`).
        """
        d = self.source
        s = self.settings
        if s.effective_prf and not s.prf_dir:
            measured = d.effective_prf
            if measured is not None:
                if not s.effective_prf_focus:
                    return getattr(measured, "static", measured)
                return measured
        return ccd_prf(
            d.prepare_settings,
            s.prf_dir,
            d.sector,
            d.camera,
            d.ccd,
            prf_cache=s.prf_cache,
            prf_url=s.prf_url,
        )

    @property
    def halos(self) -> StarHalos | None:
        """The stars' halos relative to the effective PRF (``effective_prf_halos``).

        None when the PRF used is not the one they were measured with, or there are none.
        """
        if not (self.settings.effective_prf_halos and isinstance(self.prf, EffectivePRF)):
            return None
        return self.source.star_halos

    def halo_shares(self, idx: np.ndarray) -> np.ndarray | None:
        """The halo share ``h`` of each of the source's stars ``idx`` (None: no halos)."""
        halos = self.halos
        if halos is None:
            return None
        stars = self.source.stars
        return halos.of(stars.starid[idx], stars.tmag[idx])

    @property
    def prf_trusted(self) -> bool:
        """Whether the PRF describes the stars' wings well enough to build on.

        What is built on them: the motion correction, a fit of a saturated star's wings.
        A SPOC model is trusted, and the analytic PRF on data simulated with it (on real
        stars it is too crude); an effective PRF as the model it corrects (its wings
        beyond the stars' boxes are the model's).
        """
        prf = self.prf
        analytic = isinstance(prf, AnalyticPRF) or getattr(prf, "base_analytic", False)
        return not (analytic and not self.source.simulated)

    @property
    def read_noise(self) -> float:
        """Read noise of the CCD output the target is on [e- per pixel per frame]."""
        noise = self.source.read_noise
        output = int(np.clip(round(self.col_mean) // OUTPUT_WIDTH, 0, noise.size - 1))
        return float(noise[output])


def open_target(
    starid: int,
    input_folder: str | os.PathLike,
    sector: int,
    camera: int,
    ccd: int,
    *,
    cadence: int | None = None,
    datasource: str = "ffi",
    settings: Mapping[str, Any] | PhotometrySettings | None = None,
    timing: Mapping[str, Any] | TimingSettings | None = None,
    target_limit: float | None = None,
) -> Target:
    """The target of a task on its (cached) pixel source.

    Parameters
    ----------
    starid : int
        TIC number.
    input_folder : path-like
        Folder with the prepared data and catalogs.
    sector, camera, ccd : int
    cadence : int, optional
        Cadence of the task [s]; must match the data.
    datasource : str
        ``'ffi'`` (prepared FFI data: the CCD's, or a TESScut cutout holding the star),
        ``'tpf'`` (the star's own target pixel file) or ``'tpf:<TIC>'`` (a secondary target
        on the target pixel file of TIC ``<TIC>``).
    settings : mapping or PhotometrySettings, optional
        The ``[photometry]`` settings.
    timing : mapping or TimingSettings, optional
        The ``[timing]`` settings: where the spacecraft's position comes from.
    target_limit : float, optional
        The task list's faint limit [Tmag]: catalogued stars fainter than it have no task
        of their own (None: unknown).

    Returns
    -------
    Target

    Raises
    ------
    tessphot.io.errors.TessphotError
        For an unsupported data source, missing data, a star not in the catalog or not on
        the data.
    """
    primary_of(starid, datasource)
    settings = photometry_settings(settings)
    if not isinstance(timing, TimingSettings):
        timing = TimingSettings.from_mapping(timing)
    source = task_source(
        input_folder,
        int(starid),
        sector,
        camera,
        ccd,
        cadence=cadence,
        datasource=str(datasource),
        contaminant_tmag_max=settings.contaminant_tmag_max,
        timing=timing,
        tpf_background=TPFBackground(
            method=settings.tpf_background,
            prf_dir=settings.prf_dir or None,
            prf_cache=settings.prf_cache or None,
            prf_url=settings.prf_url or None,
        ),
    )
    return Target(source, starid, settings, target_limit=target_limit)
