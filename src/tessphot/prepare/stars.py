"""The catalogued stars of a region to prepare: the starlight model and the reference stars."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tessphot.catalog.make import catalog_path
from tessphot.catalog.sqlite_catalog import CatalogDB
from tessphot.config.prepare import BackgroundSettings, MotionSettings
from tessphot.constants import tmag_to_flux
from tessphot.prepare import background_small as small
from tessphot.prepare.motion import select_reference_stars, wcs_from_string
from tessphot.prepare.worker import science_wcs_string
from tessphot.prf import load_prf

log = logging.getLogger(__name__)

#: Catalogued stars fainter than this are left out of the starlight model [Tmag].
STARLIGHT_TMAG_LIMIT = 19.0


def load_catalog(path: Path, tmag_limit: float = STARLIGHT_TMAG_LIMIT) -> np.ndarray | None:
    """Stars of a catalog file (positions at the sector epoch); None when there is none."""
    if not path.is_file():
        return None
    with CatalogDB(path) as db:
        return db.stars(tmag_max=tmag_limit)


@dataclass(frozen=True)
class RegionStars:
    """The catalogued stars of a region: the starlight model and the reference stars."""

    starlight: np.ndarray | None
    ref_rows: np.ndarray
    ref_cols: np.ndarray
    #: The stars of the background fit (None: the mesh estimate).
    model: small.StarModel | None = None
    #: Catalogue fluxes of the reference stars [e-/s].
    ref_flux: np.ndarray | None = None
    #: The catalogued stars on and near the region: rows, columns [science px], fluxes
    #: [e-/s] (their light in the reference stars' centroid boxes is calibrated out).
    catalogued: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    #: Their TIC numbers.
    starid: np.ndarray | None = None


def region_stars(
    folder: Path,
    sector: int,
    camera: int,
    ccd: int,
    first,
    prf_dir,
    mos: MotionSettings,
    bgs: BackgroundSettings,
) -> RegionStars:
    """The stars of a region: for the background and as reference stars for the jitter.

    The starlight model (or the background fit's stars) and the reference stars. Without a
    catalog file: no starlight model and no reference stars (logged).
    """
    shape, origin = first.data.shape, first.origin
    catalog = load_catalog(catalog_path(folder, sector, camera, ccd))
    reference_wcs = wcs_from_string(science_wcs_string(first))
    if catalog is None:
        log.warning(
            "No catalog for sector %d camera %d CCD %d: sources are masked from the "
            "images alone, and the jitter comes from the per-frame WCS",
            sector,
            camera,
            ccd,
        )
        return RegionStars(None, np.empty(0), np.empty(0))
    cols, rows = reference_wcs.all_world2pix(catalog["ra"], catalog["decl"], 0, quiet=True)
    prf = load_prf(prf_dir, sector, camera, ccd)
    near = (
        (rows > origin[0] - 10)
        & (rows < origin[0] + shape[0] + 10)
        & (cols > origin[1] - 10)
        & (cols < origin[1] + shape[1] + 10)
    )
    flux = tmag_to_flux(catalog["tmag"][near])
    starlight = prf.render(rows[near], cols[near], flux, shape, origin).astype(np.float32)
    model = None
    if small.choose_method(bgs, first.data, first.uncertainty, starlight) == small.FIT:
        model = small.star_model(
            prf, rows[near], cols[near], flux, shape, origin, bgs.fit_max_stars
        )
    chosen = select_reference_stars(
        rows[near], cols[near], catalog["tmag"][near], shape, origin, mos
    )
    ref_rows, ref_cols = rows[near][chosen], cols[near][chosen]
    catalogued = (rows[near], cols[near], flux)
    log.info(
        "Catalog: %d stars on the region, %d reference stars for the jitter",
        int(near.sum()),
        ref_rows.size,
    )
    return RegionStars(
        starlight,
        ref_rows,
        ref_cols,
        model,
        ref_flux=flux[chosen],
        catalogued=catalogued,
        starid=np.asarray(catalog["starid"][near]),
    )


def background_method(path: Path, first, stars: RegionStars, bgs: BackgroundSettings) -> str:
    """The background method of the region, logged; checks the region is large enough.

    Raises
    ------
    BackgroundError
        When the fit is chosen and the first frame has too few usable pixels even for a
        sky alone.
    """
    if stars.model is None:
        if bgs.method == small.FIT:
            log.warning("%s: no catalog, so no stars to fit: the mesh background", path.name)
        return small.MESH
    usable = small.usable_pixels(first.data, bgs)
    if usable < bgs.fit_pixels_per_parameter:
        shape = first.data.shape
        raise small.BackgroundError(
            path,
            f"{shape[0]}x{shape[1]} px with {usable} usable (unsaturated) pixel(s): too small "
            f"to estimate the sky background (at least {bgs.fit_pixels_per_parameter:g} "
            "needed, [prepare.background] fit_pixels_per_parameter)",
        )
    log.info(
        "Background: sky fitted per frame with the PRFs of %d star(s) (%dx%d px region, %d "
        "usable pixels)",
        stars.model.n_free,
        *first.data.shape,
        usable,
    )
    return small.FIT
