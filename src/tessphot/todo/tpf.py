"""Tasks of target pixel files (section 5.7 of the notes).

Each TPF gives its primary target (data source ``tpf``) and the catalog stars brighter than
the faint limit that fall on its collected pixels, as secondary targets (data source
``tpf:<primary TIC>``) with their distance to the edge of the collected pixels. A star that
sits in several TPFs of one sector, camera, CCD and cadence keeps only the copy farthest
from the edge; a star that is itself the primary target of a TPF is no secondary target.

The catalog is searched over the TPF's whole footprint (its pixel corners through its WCS, plus
:data:`SEARCH_MARGIN_PX`), whatever its shape: SPOC's TPFs of the brightest stars are hundreds
to over a thousand rows tall, to hold the bleed columns.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from tessphot.catalog.make import catalog_path
from tessphot.catalog.sqlite_catalog import CatalogDB
from tessphot.constants import PIXEL_SCALE_ARCSEC
from tessphot.geometry import angular_distance_deg
from tessphot.io.tpf import TargetPixelFile, TPFError, read_tpf
from tessphot.todo.targets import HALF_PIXEL, log_excluded, target_cbv_areas

log = logging.getLogger(__name__)

#: Data source of primary TPF targets, and the prefix of secondary ones.
TPF = "tpf"
#: Catalog stars this far outside the corners of a TPF's pixels are still considered [px]
#: (against the difference between catalog positions and the TPF's WCS).
SEARCH_MARGIN_PX = 2.0


class TPFTodoError(Exception):
    """A TPF that gives no task (logged; the others go on)."""


def edge_distance(row: float, col: float, collected: np.ndarray) -> float:
    """Distance of a position to the edge of the collected pixels [px].

    In pixel coordinates (centres on integers): the smaller of the distance to the outer edge
    of the stamp and the distance to the nearest pixel not collected less half a pixel
    (bilinearly interpolated).
    """
    ny, nx = collected.shape
    outer = min(row + HALF_PIXEL, ny - HALF_PIXEL - row, col + HALF_PIXEL, nx - HALF_PIXEL - col)
    if collected.all():
        return float(outer)
    inner = ndimage.distance_transform_edt(collected) - HALF_PIXEL
    at = ndimage.map_coordinates(inner, [[row], [col]], order=1, mode="nearest")[0]
    return float(min(outer, at))


def tpf_targets(
    path: str | os.PathLike,
    input_folder: str | os.PathLike,
    *,
    faint_limit: float,
    methods: Mapping[tuple[int, int, str], str],
    exclusions: set[tuple[int, int, str, int]],
    cameras: Sequence[int] | None = None,
    ccds: Sequence[int] | None = None,
    find_secondary_targets: bool = True,
) -> list[dict[str, Any]]:
    """The tasks of one TPF: its primary target and the secondary targets on its pixels.

    Rows carry ``edge_dist`` (NaN for the primary) for :func:`resolve_secondaries`.

    Raises
    ------
    TPFTodoError
        For an unreadable TPF, a missing catalog, or a primary target not in the catalog.
    """
    path = Path(path)
    try:
        tpf = read_tpf(path, pixels=False)
    except TPFError as err:
        raise TPFTodoError(str(err)) from None
    if (cameras and tpf.camera not in cameras) or (ccds and tpf.ccd not in ccds):
        return []
    stars, settings = _stars_near(path, tpf, input_folder)
    primary = stars[stars["starid"] == tpf.starid][0]
    data_rel = tpf.data_rel if tpf.data_rel is not None else 0
    base = {
        "sector": tpf.sector,
        "camera": tpf.camera,
        "ccd": tpf.ccd,
        "cadence": tpf.cadence,
    }
    rows = []
    excluded = []
    if (tpf.starid, tpf.sector, TPF, data_rel) in exclusions:
        excluded.append(tpf.starid)
    else:
        rows.append(
            {
                **base,
                "starid": tpf.starid,
                "datasource": TPF,
                "method": methods.get((tpf.starid, tpf.sector, TPF)),
                "tmag": float(primary["tmag"]),
                "cbv_area": _area(settings, tpf, primary),
                "edge_dist": math.nan,
            }
        )
    if find_secondary_targets:
        candidates = stars[(stars["tmag"] < faint_limit) & (stars["starid"] != tpf.starid)]
        datasource = f"{TPF}:{tpf.starid}"
        for star, r, c in _on_collected_pixels(tpf, candidates):
            starid = int(star["starid"])
            if (starid, tpf.sector, TPF, data_rel) in exclusions:
                excluded.append(starid)
                continue
            rows.append(
                {
                    **base,
                    "starid": starid,
                    "datasource": datasource,
                    "method": methods.get((starid, tpf.sector, datasource)),
                    "tmag": float(star["tmag"]),
                    "cbv_area": _area(settings, tpf, star),
                    "edge_dist": edge_distance(r, c, tpf.collected),
                }
            )
    log_excluded(path.name, excluded)
    return rows


def _area(settings: Any, tpf: TargetPixelFile, star: np.void) -> int:
    """Co-trending area of a star of a TPF (the same formula as for FFI targets)."""
    return int(target_cbv_areas(settings, tpf.camera, tpf.ccd, star["ra"], star["decl"])[0])


def search_cap(tpf: TargetPixelFile) -> tuple[float, float, float]:
    """A cap (RA, Dec, radius [deg]) holding every pixel of a TPF of any shape.

    Centred on the middle of the pixels; the radius reaches the farthest pixel corner (through
    the WCS) plus :data:`SEARCH_MARGIN_PX`.
    """
    ny, nx = tpf.shape
    corners = [[-HALF_PIXEL, -HALF_PIXEL], [nx - HALF_PIXEL, -HALF_PIXEL]]
    corners += [[nx - HALF_PIXEL, ny - HALF_PIXEL], [-HALF_PIXEL, ny - HALF_PIXEL]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        centre_ra, centre_dec = tpf.wcs.all_pix2world([[(nx - 1) / 2, (ny - 1) / 2]], 0)[0]
        ra, dec = tpf.wcs.all_pix2world(corners, 0).T
    reach = float(np.max(angular_distance_deg(ra, dec, centre_ra, centre_dec)))
    return float(centre_ra), float(centre_dec), reach + SEARCH_MARGIN_PX * PIXEL_SCALE_ARCSEC / 3600


def _stars_near(path: Path, tpf: TargetPixelFile, input_folder) -> tuple[np.ndarray, Any]:
    """The primary target and the catalog stars near the TPF's pixels (:func:`search_cap`).

    Returns the stars and the catalog's settings.

    Raises
    ------
    TPFTodoError
        For a missing catalog, or a primary target not in the catalog.
    """
    catalog = catalog_path(input_folder, tpf.sector, tpf.camera, tpf.ccd)
    if not catalog.is_file():
        raise TPFTodoError(f"{path.name}: no catalog {catalog.name}: run 'tessphot catalog' first")
    with CatalogDB(catalog) as db:
        settings = db.settings
        stars = db.stars()
    # The primary target is known by its TIC, wherever the catalog puts it.
    primary = stars["starid"] == tpf.starid
    if not np.any(primary):
        raise TPFTodoError(
            f"{path.name}: primary target TIC {tpf.starid} is not in {catalog.name} (a "
            "catalog of other files? rebuild it with 'tessphot catalog -o')"
        )
    centre_ra, centre_dec, radius = search_cap(tpf)
    distance = angular_distance_deg(stars["ra"], stars["decl"], centre_ra, centre_dec)
    return stars[primary | (distance <= radius)], settings


def _on_collected_pixels(
    tpf: TargetPixelFile, candidates: np.ndarray
) -> list[tuple[np.void, float, float]]:
    """The candidate stars on the TPF's collected pixels, with their row and column [px]."""
    ny, nx = tpf.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        col, row = tpf.wcs.all_world2pix(candidates["ra"], candidates["decl"], 0, quiet=True)
    on = (
        np.isfinite(row)
        & np.isfinite(col)
        & (row >= -HALF_PIXEL)
        & (row < ny - HALF_PIXEL)
        & (col >= -HALF_PIXEL)
        & (col < nx - HALF_PIXEL)
    )
    return [
        (star, float(r), float(c))
        for star, r, c in zip(candidates[on], row[on], col[on], strict=True)
        if tpf.collected[int(math.floor(r + HALF_PIXEL)), int(math.floor(c + HALF_PIXEL))]
    ]


def resolve_secondaries(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop secondary targets that are primary TPF targets, and copies of secondary targets.

    Of a secondary target in several TPFs of the same sector, camera, CCD and cadence, the
    copy farthest from the edge is kept.
    """
    primaries = {r["starid"] for r in rows if r["datasource"] == TPF}
    best: dict[tuple, dict[str, Any]] = {}
    out = []
    for row in rows:
        if row["datasource"] == TPF:
            out.append(row)
            continue
        if row["starid"] in primaries:
            continue
        key = (row["starid"], row["sector"], row["camera"], row["ccd"], row["cadence"])
        if key not in best or row["edge_dist"] > best[key]["edge_dist"]:
            best[key] = row
    return out + list(best.values())
