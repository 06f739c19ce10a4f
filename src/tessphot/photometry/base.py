"""What every photometry method shares: the target, its stamp, data access and diagnostics.

A photometry method subclasses :class:`BasePhotometry` and implements
:meth:`BasePhotometry.do_photometry`, which fills :attr:`BasePhotometry.lightcurve` and the
final masks and returns a :class:`tessphot.tasks.STATUS`. :meth:`BasePhotometry.photometry`
runs it and computes the diagnostics the task list stores (§5.8 of the notes);
:meth:`BasePhotometry.save_lightcurve` writes the TASOC-format file.

Coordinates are 0-based science-area ``(row, column)`` (pixel centres on integers). A stamp is
``(row_min, row_max, col_min, col_max)``, half-open like a numpy slice; "stamp coordinates"
are science coordinates minus ``(row_min, col_min)``.

The pixels come from a pixel source (:class:`tessphot.sources.PixelSource`): a prepared FFI
region or a target pixel file, chosen by the task's ``datasource`` (``ffi``, ``tpf``,
``tpf:<primary TIC>``), read once per process and cached, so a task costs only its own
stamp.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from tessphot.constants import OUTPUT_WIDTH
from tessphot.io.errors import TessphotError
from tessphot.lightcurve import (
    TargetInfo,
    WeightMap,
    lightcurve_diagnostics,
    lightcurve_path,
    mask_diagnostics,
    write_lightcurve,
)
from tessphot.photometry.scene import PRF_REACH, ccd_prf
from tessphot.prf import AnalyticPRF, PRFModel
from tessphot.sources import BlockReader
from tessphot.sources.select import primary_of, task_source
from tessphot.tasks.status import HAS_LIGHTCURVE, STATUS
from tessphot.timing import TimingSettings

logger = logging.getLogger(__name__)

#: The original's stamp sizes [px] as a function of Tmag: heights at Tmag 0-10 in 19 steps
#: and at 13; widths equal the heights from Tmag 4.7 on (bright stars bleed along columns).
STAMP_TMAG = (*np.linspace(0.0, 10.0, 20).tolist(), 13.0)
STAMP_HEIGHT = (832, 534, 344, 224, 147, 99, 68, 48, 36, 28, 23, 19.9, 17.8, 16.6, 15.7, 15.2,
                14.9, 14.7, 14.5, 14.5, 14.0)  # fmt: skip
STAMP_WIDTH = (158, 125, 100, 81, 66, 54, 45, 38, 33, *STAMP_HEIGHT[9:])
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

        #: The primary target of a secondary TPF target (None otherwise).
        self.primary = primary_of(starid, datasource)
        self.starid = int(starid)
        self.datasource = str(datasource)
        self.input_folder = Path(input_folder)
        self.output_folder = Path(output_folder)
        self.plot = bool(plot)
        self.version = int(version)
        self.raw_settings = dict(settings or {})
        self.settings = photometry_settings(self.raw_settings)
        self.timing = (
            timing if isinstance(timing, TimingSettings) else TimingSettings.from_mapping(timing)
        )
        self.data = task_source(
            input_folder,
            self.starid,
            sector,
            camera,
            ccd,
            cadence=cadence,
            datasource=self.datasource,
            contaminant_tmag_max=self.settings.contaminant_tmag_max,
            timing=self.timing,
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

    @property
    def target_stamp_position(self) -> tuple[float, float]:
        """The target's average position in stamp coordinates."""
        return self.row_mean - self.stamp[0], self.col_mean - self.stamp[2]

    # -- data access ----------------------------------------------------------------------
    def time_blocks(self, box: tuple[int, int, int, int]) -> BlockReader:
        """A reader of blocks of cadences of some cubes: ``reader(names)`` iterates over
        ``(t0, t1, {name: cube})``; ``pixel_flags`` covers the whole stamp, the others the
        box (stamp coordinates) (:class:`tessphot.sources.BlockReader`)."""
        r0, r1, c0, c1 = box
        sr, sc = self.stamp_origin
        return self.data.block_reader(
            (sr + r0, sr + r1, sc + c0, sc + c1), flags_box=self.stamp
        )

    @property
    def prf(self) -> PRFModel:
        """The PRF model of the target's CCD (:func:`tessphot.photometry.scene.ccd_prf`)."""
        d = self.data
        s = self.settings
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
