"""Catalog source 3: the TIC at MAST, through astroquery (needs internet).

The buffered footprint of a CCD is covered with cone-shaped tiles (``tile_radius_deg``); a
footprint that fits in one tile (a TPF or cutout with its buffer) is asked for as one cone of
just the radius it needs (:func:`cones`). Each cone is one
``Catalogs.query_region(..., catalog="TIC")`` call, retried with exponential backoff when it
fails, and its answer is kept in a local cache, so an interrupted run resumes
where it stopped and a second run (another faint limit, buffer or overwrite) needs no network.
Stars returned by two overlapping tiles are kept once.

The cache lives in ``$TESSPHOT_MAST_CACHE``, else ``$XDG_CACHE_HOME/tessphot/mast``, else
``~/.cache/tessphot/mast``: one small ``.npz`` file per tile with the columns tessphot uses.
Delete the folder to force fresh queries.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from tessphot import env
from tessphot.catalog import sphere
from tessphot.catalog.errors import CatalogError
from tessphot.catalog.footprint import Footprint
from tessphot.catalog.sources.base import (
    DEFAULT_KEEP_DISPOSITIONS,
    CatalogSource,
    StarBatch,
    clean_columns,
    resolve_columns,
)
from tessphot.paths import atomic_path

log = logging.getLogger(__name__)

#: Environment variable naming the cache folder.
CACHE_ENV = env.MAST_CACHE
#: Version of the cache files (a new layout gets a new sub-folder).
CACHE_VERSION = 1
#: Default tile radius [deg]: ~0.8 deg^2 per query, ~400 queries per CCD.
DEFAULT_TILE_RADIUS = 0.5
#: Default number of attempts per tile, and the first wait between attempts [s] (doubled
#: after each failure).
DEFAULT_RETRIES = 4
DEFAULT_BACKOFF = 5.0
#: Neighbouring tiles overlap by this fraction of their spacing (against gaps from rounding).
TILE_OVERLAP = 0.05
#: Decimals of tile centres and radii (cache keys) [deg].
TILE_DECIMALS = 5
#: Log progress every this many tiles.
LOG_EVERY = 25

#: A function asking MAST for the TIC rows within ``radius`` [deg] of ``ra``, ``dec`` [deg],
#: returning an astropy Table.
QueryFunction = Callable[[float, float, float], object]


def default_cache_dir() -> Path:
    """The MAST cache folder (see the module notes)."""
    return env.cache_folder("mast", CACHE_ENV)


def astroquery_tic_region(ra: float, dec: float, radius_deg: float):
    """Query the TIC at MAST for a cone (``astroquery.mast.Catalogs.query_region``)."""
    try:
        import astropy.units as u
        from astropy.coordinates import SkyCoord
        from astroquery.mast import Catalogs
    except ImportError:
        raise CatalogError(
            "the mast catalog source needs astroquery: pip install 'tessphot[mast]'"
        ) from None
    return Catalogs.query_region(
        SkyCoord(ra, dec, unit="deg"), radius=radius_deg * u.deg, catalog="TIC"
    )


def tile_centres(
    footprint: Footprint, tile_radius_deg: float, margin_deg: float = 0.0
) -> list[tuple[float, float]]:
    """Centres (RA, Dec) [deg] of cones of ``tile_radius_deg`` covering a footprint.

    The cones sit on a square grid in the gnomonic plane of the CCD centre. A plane square
    whose circumradius is r maps onto the sphere within angle r of its centre (the gnomonic
    projection only stretches), so cones of radius r on a grid of spacing r*sqrt(2) leave no
    gaps. Cones that cannot touch the footprint are dropped.
    """
    r = float(np.radians(tile_radius_deg))
    polygon = footprint.query_polygon(margin_deg)
    centre = footprint.centre
    east, north = sphere.tangent_basis(centre)
    px, py = sphere.gnomonic(polygon, centre)
    spacing = r * np.sqrt(2.0) * (1.0 - TILE_OVERLAP)
    xs = np.arange(px.min() - spacing / 2, px.max() + spacing, spacing)
    ys = np.arange(py.min() - spacing / 2, py.max() + spacing, spacing)
    gx, gy = (g.ravel() for g in np.meshgrid(xs, ys))
    xyz = sphere.normalise(centre + gx[:, None] * east + gy[:, None] * north)
    touches = sphere.polygon_contains(xyz, polygon, centre)
    touches[~touches] = sphere.min_arc_distance(xyz[~touches], polygon) <= r
    ra, dec = sphere.xyz_to_radec(xyz[touches])
    return [
        (round(float(a), TILE_DECIMALS), round(float(d), TILE_DECIMALS))
        for a, d in zip(ra, dec, strict=True)
    ]


def cones(
    footprint: Footprint, tile_radius_deg: float, margin_deg: float = 0.0
) -> tuple[list[tuple[float, float]], float]:
    """The cones to ask MAST for a footprint: their centres (RA, Dec) [deg] and radius [deg].

    A footprint whose bounding cap (buffer and ``margin_deg`` included) is no larger than a
    tile is one cone around its centre, of the cap's radius rounded up to
    :data:`TILE_DECIMALS`; a larger one is covered by :func:`tile_centres`.
    """
    centre, radius = footprint.bounding_cap(margin_deg)
    radius_deg = math.ceil(math.degrees(radius) * 10**TILE_DECIMALS) / 10**TILE_DECIMALS
    if radius_deg > tile_radius_deg:
        return tile_centres(footprint, tile_radius_deg, margin_deg), tile_radius_deg
    ra, dec = sphere.xyz_to_radec(centre)
    return [(round(float(ra), TILE_DECIMALS), round(float(dec), TILE_DECIMALS))], radius_deg


def _table_to_batch(table, what: str) -> StarBatch:
    """Clean a MAST answer (astropy Table, masked columns, string IDs)."""
    if table is None or len(table) == 0:
        return StarBatch.empty()
    names = resolve_columns(table.colnames, what)
    columns = {name: table[name] for name in names.values()}
    return clean_columns(columns, names, what, keep_dispositions=None)


class MastSource(CatalogSource):
    """Stars from the TIC at MAST, tile by tile, through a local cache.

    Parameters
    ----------
    cache_dir : path-like, optional
        Cache folder (default :func:`default_cache_dir`).
    tile_radius_deg : float
        Radius of one query cone [deg].
    retries : int
        Attempts per tile.
    backoff_s : float
        Wait before the second attempt [s]; doubled after each failure.
    keep_dispositions : sequence of str
        TIC dispositions kept besides NULL.
    query : callable, optional
        ``query(ra, dec, radius_deg) -> Table``; default :func:`astroquery_tic_region`.
    sleep : callable
        Waits between attempts (tests pass a fake).
    """

    name = "mast"
    scan = False

    def __init__(
        self,
        cache_dir: str | os.PathLike | None = None,
        tile_radius_deg: float = DEFAULT_TILE_RADIUS,
        retries: int = DEFAULT_RETRIES,
        backoff_s: float = DEFAULT_BACKOFF,
        keep_dispositions: Sequence[str] = DEFAULT_KEEP_DISPOSITIONS,
        query: QueryFunction | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0.01 <= tile_radius_deg <= 5.0:
            raise CatalogError(f"MAST tile radius must be 0.01-5 deg, not {tile_radius_deg}")
        if retries < 1:
            raise CatalogError(f"MAST retries must be at least 1, not {retries}")
        base = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.cache_dir = base / f"tic-v{CACHE_VERSION}"
        self.tile_radius = round(float(tile_radius_deg), TILE_DECIMALS)
        self.retries = int(retries)
        self.backoff = float(backoff_s)
        self.keep_dispositions = {""} | {str(d).strip().upper() for d in keep_dispositions}
        self.query = query or astroquery_tic_region
        self.sleep = sleep
        self.n_queries = 0
        self.n_cached = 0

    def describe(self) -> str:
        """MAST's TIC, with the radius of the query tiles."""
        return f"MAST TIC (astroquery), tiles of {self.tile_radius} deg"

    def _cache_file(self, ra: float, dec: float, radius: float) -> Path:
        d = TILE_DECIMALS
        return self.cache_dir / f"tic_{ra:.{d}f}_{dec:+.{d}f}_r{radius:.{d}f}.npz"

    def _load(self, path: Path) -> StarBatch | None:
        try:
            with np.load(path, allow_pickle=False) as data:
                return StarBatch(**{name: data[name] for name in data.files})
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("Ignoring unreadable cache file %s (%s)", path, err)
            return None

    def _save(self, path: Path, batch: StarBatch) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **vars(batch))

    def tile(self, ra: float, dec: float, radius: float | None = None) -> StarBatch:
        """All TIC rows of one cone (any disposition), from the cache or from MAST.

        ``radius`` [deg] defaults to the tile radius.
        """
        radius = self.tile_radius if radius is None else radius
        path = self._cache_file(ra, dec, radius)
        if path.is_file():
            batch = self._load(path)
            if batch is not None:
                self.n_cached += 1
                return batch
        what = f"MAST TIC cone RA {ra:.5f} Dec {dec:+.5f} r {radius} deg"
        wait = self.backoff
        for attempt in range(1, self.retries + 1):
            try:
                table = self.query(ra, dec, radius)
                break
            except CatalogError:
                raise
            except Exception as err:  # network errors come in many types; retries are bounded
                reason = " ".join(str(err).split()) or type(err).__name__
                if attempt == self.retries:
                    raise CatalogError(
                        f"{what}: failed after {self.retries} attempts: {reason}"
                    ) from None
                log.warning(
                    "%s: attempt %d failed (%s); retrying in %g s", what, attempt, reason, wait
                )
                self.sleep(wait)
                wait *= 2.0
        self.n_queries += 1
        batch = _table_to_batch(table, what)
        self._save(path, batch)
        return batch

    def stream(
        self, footprints: Sequence[Footprint], margin_deg: float, faint_limit: float | None
    ) -> Iterator[tuple[int, StarBatch]]:
        """Yield the stars of the tiles covering each footprint (:meth:`CatalogSource.stream`)."""
        for index, footprint in enumerate(footprints):
            centres, radius = cones(footprint, self.tile_radius, margin_deg)
            log.info(
                "Sector %d camera %d CCD %d: %d MAST cone(s) of %g deg (cache %s)",
                footprint.sector,
                footprint.camera,
                footprint.ccd,
                len(centres),
                radius,
                self.cache_dir,
            )
            seen: set[int] = set()
            for k, (ra, dec) in enumerate(centres, start=1):
                batch = self.tile(ra, dec, radius)
                keep = np.isin(batch.disposition, list(self.keep_dispositions))
                if faint_limit is not None:
                    keep &= batch.tmag <= faint_limit
                keep &= np.fromiter(
                    (sid not in seen for sid in batch.starid.tolist()), bool, len(batch)
                )
                batch = batch[keep]
                seen.update(batch.starid.tolist())
                if k % LOG_EVERY == 0:
                    log.info("%d/%d tiles done, %d stars", k, len(centres), len(seen))
                if len(batch):
                    yield index, batch
