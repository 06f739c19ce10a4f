"""The catalog stars of a CCD projected onto the pixels of a source."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.wcs import WCS

from tessphot.catalog.errors import CatalogError
from tessphot.catalog.sqlite_catalog import CatalogDB, CatalogSettings
from tessphot.geometry import angular_distance_deg
from tessphot.sources.errors import SourceError


@dataclass(frozen=True)
class StarTable:
    """Catalog stars projected onto the pixels of the reference frame, sorted by row."""

    starid: np.ndarray
    tmag: np.ndarray
    row: np.ndarray
    col: np.ndarray
    #: Index into the catalog array (for the other columns).
    index: np.ndarray

    def __len__(self) -> int:
        return int(self.starid.size)


@dataclass(frozen=True)
class ProjectedCatalog:
    """A catalog read for a source: its records, settings and projected stars."""

    #: The catalog file.
    path: Path
    #: The catalog's settings (sector, reference time, TIC version, ...).
    settings: CatalogSettings
    #: The catalog's records (all columns), in catalog order.
    records: np.ndarray
    #: The stars projected through the source's WCS.
    stars: StarTable


def project_catalog(
    catalog_file: Path,
    wcs: WCS,
    contaminant_tmag_max: float,
    near: tuple[float, float, float] | None = None,
) -> ProjectedCatalog:
    """Read a catalog and project its stars through a WCS.

    Parameters
    ----------
    catalog_file : Path
        The catalog of the CCD.
    wcs : WCS
        The WCS of science coordinates.
    contaminant_tmag_max : float
        Stars fainter than this are left out.
    near : tuple of float, optional
        ``(ra, dec, radius)`` [deg]: keep only the stars within ``radius`` (small regions
        with a local WCS: a TPF's).

    Returns
    -------
    ProjectedCatalog

    Raises
    ------
    SourceError
        When the catalog cannot be read.
    """
    try:
        with CatalogDB(catalog_file) as db:
            settings = db.settings
            stars = db.stars(tmag_max=contaminant_tmag_max)
    except CatalogError as err:
        raise SourceError(f"{err} (run 'tessphot catalog' first)") from None
    if near is not None:
        stars = stars[angular_distance_deg(stars["ra"], stars["decl"], near[0], near[1]) <= near[2]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        col, row = wcs.all_world2pix(stars["ra"], stars["decl"], 0, quiet=True)
    order = np.argsort(row, kind="stable")
    table = StarTable(
        starid=stars["starid"][order],
        tmag=stars["tmag"][order],
        row=np.asarray(row, dtype=float)[order],
        col=np.asarray(col, dtype=float)[order],
        index=order,
    )
    return ProjectedCatalog(Path(catalog_file), settings, stars, table)
