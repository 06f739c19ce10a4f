"""Where TESS is: its barycentric position versus time.

Three sources, all giving the position of the observer relative to the solar-system
barycentre in the ICRF [km] at barycentric dynamical times (TDB, as Julian dates):

:class:`~tessphot.timing.tables.TableEphemeris`
    JPL Horizons vector tables of TESS (target -95, centre the solar-system barycentre,
    ``X, Y, Z`` in AU or km, CSV), as MAST and Horizons publish them
    (``YYYYMMDD_tess_ephem.csv[.gz]``), interpolated with a cubic spline. Tables sampled
    every 30-60 min reproduce TESS's 13.7-d orbit to better than a metre.
:class:`~tessphot.timing.spice.SpiceEphemeris`
    SPICE kernels (optional: needs ``spiceypy``), for users who have TESS's SPK kernels
    (and a planetary ephemeris when they are relative to the Earth).
:class:`~tessphot.timing.source.GeocentreEphemeris`
    The Earth's centre (astropy's built-in ephemeris): the observer of simulated data,
    whose ``BARYCORR`` is computed for the geocentre.

:func:`spacecraft_ephemeris` picks the first source that covers the requested times:
SPICE kernels when configured, then tables in the configured folders and the cache (the
user's, newer), then those together with the tables shipped with tessphot for the mission so
far (:mod:`~tessphot.timing.shipped`), then (when allowed) a table downloaded from JPL
Horizons into the cache (:func:`~tessphot.timing.horizons.download_horizons`).
:class:`TimingSettings` says where to look. This module chooses the source; each source
has its own module.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from tessphot import env
from tessphot.config.timing import TimingSettings
from tessphot.timing.horizons import download_horizons
from tessphot.timing.shipped import shipped_tables
from tessphot.timing.source import SECONDS_PER_DAY, Ephemeris, EphemerisError
from tessphot.timing.spice import SpiceEphemeris
from tessphot.timing.tables import TableEphemeris, find_tables, read_horizons_table

log = logging.getLogger(__name__)

#: Environment variables: folders of ephemeris tables (``os.pathsep``-separated), the folder
#: of SPICE kernels (the original pipeline's variable), the download cache.
EPHEMERIS_ENV = env.EPHEMERIS
SPICE_ENV = env.SPICE_KERNELS
CACHE_ENV = env.EPHEMERIS_CACHE


def _table_ephemeris(paths: Sequence[Path], jd_min: float, jd_max: float) -> TableEphemeris | None:
    """The tables overlapping the interval, merged; None when none does."""
    tables = []
    for path in paths:
        try:
            table = read_horizons_table(str(path))
        except EphemerisError as err:
            log.warning("Ephemeris table left out: %s", err)
            continue
        if table.stop >= jd_min and table.start <= jd_max:
            tables.append(table)
    return TableEphemeris(tables) if tables else None


def _with_shipped(user: TableEphemeris | None) -> TableEphemeris | None:
    """The tables shipped with tessphot and the user's (which win where both cover)."""
    tables = [*shipped_tables(), *(user.tables if user is not None else ())]
    return TableEphemeris(tables) if tables else None


def spacecraft_ephemeris(
    jd_min: float, jd_max: float, settings: TimingSettings | None = None
) -> Ephemeris:
    """An ephemeris of TESS covering ``[jd_min, jd_max]`` [JD, TDB].

    Tried in order: the SPICE kernels (when configured), the tables in the configured
    folders and the cache, those with the tables shipped with tessphot
    (:mod:`tessphot.timing.shipped`; the user's win where both cover a time), a table
    downloaded from JPL Horizons into the cache (when ``settings.download``).

    Raises
    ------
    EphemerisError
        When no source covers the interval (the message says how to provide one).
    """
    settings = settings or TimingSettings()
    problems = []
    kernels = settings.kernels()
    if kernels is not None:
        try:
            spice = _spice_ephemeris(str(kernels))
            if spice.covers(jd_min, jd_max):
                return spice
            problems.append(f"{spice.name} cover JD {spice.start:.2f}-{spice.stop:.2f}")
        except EphemerisError as err:
            problems.append(str(err))
    dirs = settings.table_dirs()
    user = _table_ephemeris(find_tables(dirs), jd_min, jd_max)
    for tables in (user, _with_shipped(user)):
        if tables is not None and tables.covers(jd_min, jd_max):
            return tables
    problems.append(
        "no ephemeris table covering the interval in "
        + ", ".join(str(d) for d in dirs)
        + " or the tables shipped with tessphot"
    )
    if settings.download:
        try:
            path = download_horizons(jd_min, jd_max, settings.cache())
            return TableEphemeris([read_horizons_table(str(path))])
        except EphemerisError as err:
            problems.append(str(err))
    raise EphemerisError(
        f"no position of TESS for JD {jd_min:.3f}-{jd_max:.3f}: "
        + "; ".join(problems)
        + f". Put TESS ephemeris tables (*_tess_ephem.csv[.gz]) in a folder named by "
        f"${EPHEMERIS_ENV} or [timing] ephemeris_dirs, set ${SPICE_ENV} to a folder of "
        "SPICE kernels, or allow the download from JPL Horizons ([timing] download = true; "
        "'tessphot ephemeris SECTOR' or 'tessphot ephemeris --update' downloads ahead of a "
        "run)"
    )


#: :func:`update_tables`: days downloaded before the end of the tables found (the newer table
#: replaces the end of the older one, a prediction), and days back from now when none is found.
UPDATE_OVERLAP_DAYS = 30.0
UPDATE_DAYS_WITHOUT_TABLES = 400.0
#: Julian date of the Unix epoch (1970-01-01 UTC; "now" needs no better than a minute).
UNIX_EPOCH_JD = 2440587.5


@lru_cache(maxsize=4)
def _spice_ephemeris(folder: str) -> SpiceEphemeris:
    return SpiceEphemeris(folder)


@dataclass
class CoverageReport:
    """What :func:`describe_sources` found (for messages and the CLI)."""

    tables: list[tuple[Path, float, float]] = field(default_factory=list)
    spice: str | None = None
    shipped: tuple[Path, float, float] | None = None


def describe_sources(settings: TimingSettings | None = None) -> CoverageReport:
    """The tables (path, first and last JD) and SPICE kernels the settings point at.

    Also the tables shipped with tessphot.
    """
    settings = settings or TimingSettings()
    report = CoverageReport()
    shipped = _with_shipped(None)
    if shipped is not None:
        report.shipped = (shipped.paths[0], shipped.start, shipped.stop)
    for path in find_tables(settings.table_dirs()):
        try:
            table = read_horizons_table(str(path))
        except EphemerisError:
            continue
        report.tables.append((path, table.start, table.stop))
    kernels = settings.kernels()
    if kernels is not None:
        try:
            spice = _spice_ephemeris(str(kernels))
            report.spice = f"{spice.name}: JD {spice.start:.2f}-{spice.stop:.2f}"
        except EphemerisError as err:
            report.spice = str(err)
    return report


def update_tables(
    settings: TimingSettings | None = None, *, until_jd: float | None = None
) -> Path | None:
    """Download TESS's positions after the end of the tables found, up to now, into the cache.

    Parameters
    ----------
    settings : TimingSettings, optional
    until_jd : float, optional
        The last time needed [JD, TDB]; default now.

    Returns
    -------
    Path or None
        The table downloaded; None when the tables already reach ``until_jd``.

    Raises
    ------
    EphemerisError
        When the download fails.
    """
    settings = settings or TimingSettings()
    until = time.time() / SECONDS_PER_DAY + UNIX_EPOCH_JD if until_jd is None else until_jd
    report = describe_sources(settings)
    stops = [stop for _, _, stop in report.tables]
    if report.shipped is not None:
        stops.append(report.shipped[2])
    last = max(stops, default=until - UPDATE_DAYS_WITHOUT_TABLES)
    if last >= until:
        return None
    return download_horizons(last - UPDATE_OVERLAP_DAYS, until, settings.cache())
