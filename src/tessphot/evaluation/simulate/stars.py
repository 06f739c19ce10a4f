"""A synthetic but realistic star population: TIC-like IDs, magnitudes, motions, colours."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.table import Table
from astropy.time import Time

from tessphot.config.simulate import SimulationConfig
from tessphot.paths import atomic_path

#: Magnitude range of the power-law population [Tmag].
TMAG_MIN, TMAG_MAX = 6.0, 17.0
#: Slope of the cumulative star counts, N(<T) proportional to 10^(slope T).
COUNT_SLOPE = 0.3
#: Magnitude range of the extra bright (saturating) stars [Tmag].
BRIGHT_TMAG_RANGE = (2.0, 6.0)
#: Scale of the proper-motion distribution (Student-t, 3 dof) [mas/yr].
PM_SCALE = 6.0
#: Effective temperatures drawn from this range [K].
TEFF_RANGE = (3200.0, 7500.0)
#: Range of synthetic TIC IDs.
TIC_ID_RANGE = (10_000_000, 470_000_000)
#: Catalogue epoch of the TIC positions (Julian year).
CATALOG_EPOCH = 2000.0
#: The demo star of the original pipeline's quick start.
DEMO_STAR_TIC = 182092046
DEMO_STAR_TMAG = 10.2
#: Stars this far outside the region [px] are simulated and catalogued: their light spills in.
CATALOG_MARGIN = 10
#: Bright stars are placed at least this far inside the region [px].
BRIGHT_EDGE_DISTANCE = 20


@dataclass
class StarField:
    """Stars of a simulated field (one entry per star)."""

    starid: np.ndarray
    tmag: np.ndarray
    teff: np.ndarray
    #: Reference-frame positions (no jitter) at the sector epoch [science-area pixels].
    row: np.ndarray
    col: np.ndarray
    #: Positions at the sector epoch and at J2000 [deg]; proper motions [mas/yr]
    #: (pmra includes cos(dec)).
    ra: np.ndarray
    dec: np.ndarray
    ra_j2000: np.ndarray
    dec_j2000: np.ndarray
    pmra: np.ndarray
    pmdec: np.ndarray

    def __len__(self) -> int:
        return self.starid.size


def draw_tmag(rng: np.random.Generator, n: int) -> np.ndarray:
    """Magnitudes with cumulative counts rising as 10^(0.3 Tmag) between Tmag 6 and 17."""
    lo, hi = 10 ** (COUNT_SLOPE * TMAG_MIN), 10 ** (COUNT_SLOPE * TMAG_MAX)
    return np.log10(lo + rng.uniform(size=n) * (hi - lo)) / COUNT_SLOPE


def _unique_ids(rng: np.random.Generator, n: int, exclude: set[int]) -> np.ndarray:
    """``n`` distinct TIC-like IDs, none of them in ``exclude``, in random order."""
    ids = np.empty(0, dtype=np.int64)
    while ids.size < n:
        new = rng.integers(*TIC_ID_RANGE, size=n - ids.size)
        ids = np.unique(np.concatenate([ids, new[~np.isin(new, list(exclude))]]))
    return rng.permutation(ids)


def make_star_field(
    rng: np.random.Generator,
    wcs,
    region: tuple[int, int, int, int],
    n_stars: int,
    n_bright: int,
    epoch_tjd: float,
    include: list[tuple[int, float, float, float]] | None = None,
) -> StarField:
    """Draw stars uniformly over a pixel region and give them sky coordinates.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random generator (the simulation's seed decides everything).
    wcs : astropy.wcs.WCS
        Science-area WCS of the reference frame.
    region : tuple of int
        ``(row_min, row_max, col_min, col_max)`` (half-open) to fill with stars; may reach
        beyond the CCD (those stars are catalogued and can shine onto it).
    n_stars : int
        Number of stars of the power-law population.
    n_bright : int
        Number of extra bright stars (Tmag 2-6) that saturate.
    epoch_tjd : float
        The sector epoch at which positions are exact [TJD].
    include : list of (starid, tmag, row, col), optional
        Stars to place at given positions (e.g. the demo star).
    """
    r0, r1, c0, c1 = region
    tmag = np.concatenate([draw_tmag(rng, n_stars), rng.uniform(*BRIGHT_TMAG_RANGE, n_bright)])
    rows = rng.uniform(r0 - 0.5, r1 - 0.5, tmag.size)
    cols = rng.uniform(c0 - 0.5, c1 - 0.5, tmag.size)
    include = include or []
    for _, t, r, c in include:
        tmag, rows, cols = np.append(tmag, t), np.append(rows, r), np.append(cols, c)
    n = tmag.size
    starid = _unique_ids(rng, n - len(include), exclude={sid for sid, *_ in include})
    starid = np.concatenate([starid, [sid for sid, *_ in include]]).astype(np.int64)
    teff = rng.uniform(*TEFF_RANGE, n).round(0)
    pmra = PM_SCALE * rng.standard_t(3, n)
    pmdec = PM_SCALE * rng.standard_t(3, n)
    ra, dec = wcs.all_pix2world(cols, rows, 0)
    ra = np.mod(ra, 360.0)
    # Move back to the catalogue epoch along the proper motion (linear, as the TIC is used).
    years = Time(epoch_tjd + 2457000.0, format="jd", scale="tdb").jyear - CATALOG_EPOCH
    mas_to_deg = 1.0 / 3.6e6
    dec_j2000 = dec - pmdec * years * mas_to_deg
    ra_j2000 = np.mod(ra - pmra * years * mas_to_deg / np.cos(np.radians(dec)), 360.0)
    order = np.argsort(tmag)
    return StarField(
        starid=starid[order].astype(np.int64),
        tmag=tmag[order],
        teff=teff[order],
        row=rows[order],
        col=cols[order],
        ra=ra[order],
        dec=dec[order],
        ra_j2000=ra_j2000[order],
        dec_j2000=dec_j2000[order],
        pmra=pmra[order],
        pmdec=pmdec[order],
    )


def default_star_count(region: tuple[int, int, int, int]) -> int:
    """Default star count of a region: ~0.06 stars per pixel brighter than Tmag 17.

    That is a moderately crowded field, ~250 000 stars per CCD.
    """
    r0, r1, c0, c1 = region
    return int(round(0.06 * (r1 - r0) * (c1 - c0)))


def merge_fields(a: StarField, b: StarField) -> StarField:
    """Two star fields in one, sorted by magnitude; IDs of ``b`` that collide are renumbered."""
    merged = {k: np.concatenate([getattr(a, k), getattr(b, k)]) for k in a.__dataclass_fields__}
    # The bright stars' IDs must not collide with the others.
    ids = merged["starid"]
    _, first = np.unique(ids, return_index=True)
    dup = np.setdiff1d(np.arange(ids.size), first)
    ids[dup] = ids.max() + 1 + np.arange(dup.size)
    order = np.argsort(merged["tmag"])
    return type(a)(**{k: v[order] for k, v in merged.items()})


def simulation_stars(
    config: SimulationConfig, rng: np.random.Generator, wcs, epoch_tjd: float
) -> StarField:
    """The stars of a simulation: the population, the extra and demo stars, the bright ones.

    Parameters
    ----------
    config : SimulationConfig
        The simulation's settings (region, star counts, extra stars, demo star).
    rng : numpy.random.Generator
        The simulation's random generator.
    wcs : astropy.wcs.WCS
        Science-area WCS of the reference frame.
    epoch_tjd : float
        The sector epoch [TJD].

    Returns
    -------
    StarField
        Stars on the region and up to :data:`CATALOG_MARGIN` px off it, by magnitude.
    """
    r0, r1, c0, c1 = region = config.region()
    m = CATALOG_MARGIN
    n_region = config.stars if config.stars is not None else default_star_count(region)
    grown = ((r1 - r0 + 2 * m) * (c1 - c0 + 2 * m)) / ((r1 - r0) * (c1 - c0))
    include = [tuple(star[:4]) for star in config.extra_stars]
    if config.demo_star:
        include.append((DEMO_STAR_TIC, DEMO_STAR_TMAG, (r0 + r1) / 2 - 0.3, (c0 + c1) / 2 + 0.2))
    field_ = make_star_field(
        rng,
        wcs,
        (r0 - m, r1 + m, c0 - m, c1 + m),
        n_stars=int(round(n_region * grown)),
        n_bright=0,
        epoch_tjd=epoch_tjd,
        include=include,
    )
    if config.bright:
        lo, hi = BRIGHT_EDGE_DISTANCE, BRIGHT_EDGE_DISTANCE
        inner = (r0 + lo, max(r1 - hi, r0 + lo + 1), c0 + lo, max(c1 - hi, c0 + lo + 1))
        bright = make_star_field(rng, wcs, inner, 0, config.bright, epoch_tjd)
        field_ = merge_fields(field_, bright)
    return field_


def write_catalog(field_: StarField, path: Path) -> None:
    """Write a TIC-like catalogue (TIC column names, J2000 positions) atomically.

    Parameters
    ----------
    field_ : StarField
        The simulated stars.
    path : pathlib.Path
        The CSV file to write.
    """
    table = Table(
        {
            "ID": field_.starid,
            "ra": np.round(field_.ra_j2000, 9),
            "dec": np.round(field_.dec_j2000, 9),
            "pmRA": np.round(field_.pmra, 4),
            "pmDEC": np.round(field_.pmdec, 4),
            "Tmag": np.round(field_.tmag, 4),
            "Teff": field_.teff,
        }
    )
    with atomic_path(path) as tmp:
        table.write(tmp, format="ascii.csv", overwrite=True)
