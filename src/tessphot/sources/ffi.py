"""A prepared FFI region as a pixel source: a CCD, or a TESScut cutout."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from tessphot.catalog.make import catalog_path
from tessphot.config.timing import TimingSettings
from tessphot.lightcurve import ObservationInfo
from tessphot.lightcurve.diagnostics import DEFAULT_QUALITY_BITMASK
from tessphot.prepare.cube import PreparedCube, hdf5_name
from tessphot.prf.effective import EffectivePRF
from tessphot.prf.star_halo import StarHalos
from tessphot.sources.base import PixelSource
from tessphot.sources.blocks import Box
from tessphot.sources.errors import SourceError
from tessphot.sources.stars import project_catalog
from tessphot.version import PIPELINE_NAME


class FFISource(PixelSource):
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
    SourceError
        When the prepared-data file is missing or the catalog is missing or unusable.
    tessphot.prepare.cube.PreparedDataError
        When the prepared-data file is damaged or incomplete.
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
            raise SourceError(
                f"{self.path}: prepared data not found (run 'tessphot prepare' first)"
            )
        self.cube = PreparedCube(self.path)
        cube = self.cube
        attrs = cube.attrs
        self.timing = timing or TimingSettings()
        self.sector, self.camera, self.ccd = sector, camera, ccd
        self.origin: tuple[int, int] = cube.origin
        self.shape: tuple[int, int] = cube.shape
        self.cadence = cube.cadence
        self.data_rel = cube.data_rel
        procver = str(attrs.get("procver", ""))
        self.simulated = bool(attrs.get("simulated", procver.startswith(PIPELINE_NAME)))
        self.time_offset = float(attrs.get("time_offset", 0.0))
        self.time = cube.array("time").astype(np.float64)
        self.timecorr = cube.array("timecorr").astype(np.float64)
        self.cadenceno = cube.array("cadenceno").astype(np.int32)
        self.quality = cube.array("quality").astype(np.int32)
        self.good = np.isfinite(self.time) & ((self.quality & DEFAULT_QUALITY_BITMASK) == 0)
        wcs = cube.reference_wcs
        if wcs is None:
            raise SourceError(f"{self.path}: no WCS for the reference frame")
        self.wcs = wcs
        self.motion = cube.motion()
        self.sumimage = cube.array("sumimage").astype(np.float64)
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
        self._set_catalog(
            project_catalog(catalog_path(folder, sector, camera, ccd), wcs, contaminant_tmag_max)
        )
        self.mtime = self.path.stat().st_mtime_ns

    @property
    def prepare_settings(self) -> str | None:
        """The prepare stage's settings (JSON) the PRF choice depends on."""
        return self.cube.attrs.get("settings")

    @cached_property
    def effective_prf(self) -> EffectivePRF | None:
        """The effective PRF stored with the prepared data (None: the file has none)."""
        return self.cube.effective_prf()

    @cached_property
    def star_halos(self) -> StarHalos | None:
        """The stars' halos stored with the effective PRF (None: the file has none)."""
        return self.cube.star_halos()

    @property
    def background_record(self) -> dict[str, Any]:
        """The prepare stage's background method.

        ``mesh`` or ``fit`` (:mod:`tessphot.prepare.background_small`).
        """
        return {"method": str(self.cube.attrs.get("background_method", "mesh"))}

    def read(self, name: str, t0: int, t1: int, box: Box) -> np.ndarray:
        """Cadences ``t0:t1`` of a cube over a box (science coordinates, half-open)."""
        return self.cube.block(name, t0, t1, box)

    def close(self) -> None:
        """Close the prepared-data file."""
        self.cube.close()
