"""Downloading TESS's position table from JPL Horizons into the cache."""

from __future__ import annotations

import logging
import os
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

from tessphot.paths import atomic_path
from tessphot.timing.source import TESS_NAIF_ID, EphemerisError
from tessphot.timing.tables import read_horizons_table

log = logging.getLogger(__name__)

#: Horizons' code of the solar-system barycentre as centre.
HORIZONS_CENTRE = "500@0"
#: Sampling of downloaded tables (Horizons' step).
HORIZONS_STEP = "30 m"
#: Horizons API endpoint (the documented public interface of JPL's Horizons system).
HORIZONS_URL = "https://ssd.jpl.nasa.gov/api/horizons.api"
#: Seconds to wait for Horizons.
HORIZONS_TIMEOUT = 120.0
#: Margin added on both sides of a downloaded table [d].
DOWNLOAD_MARGIN_DAYS = 2.0


def horizons_query(start_jd: float, stop_jd: float, step: str = HORIZONS_STEP) -> str:
    """The Horizons API URL of TESS's barycentric vector table between two dates (TDB)."""
    params = {
        "format": "text",
        "COMMAND": f"'{TESS_NAIF_ID}'",
        "OBJ_DATA": "'NO'",
        "MAKE_EPHEM": "'YES'",
        "EPHEM_TYPE": "'VECTORS'",
        "CENTER": f"'{HORIZONS_CENTRE}'",
        "START_TIME": f"'JD{start_jd:.6f}'",
        "STOP_TIME": f"'JD{stop_jd:.6f}'",
        "STEP_SIZE": f"'{step}'",
        "VEC_TABLE": "'1'",
        "REF_SYSTEM": "'ICRF'",
        "REF_PLANE": "'FRAME'",
        "OUT_UNITS": "'AU-D'",
        "TIME_TYPE": "'TDB'",
        "CSV_FORMAT": "'YES'",
        "VEC_LABELS": "'NO'",
    }
    return f"{HORIZONS_URL}?{urllib.parse.urlencode(params)}"


def download_horizons(
    jd_min: float,
    jd_max: float,
    cache_dir: str | os.PathLike,
    *,
    timeout: float = HORIZONS_TIMEOUT,
) -> Path:
    """Download TESS's barycentric position table from JPL Horizons into a cache folder.

    The table spans the interval plus :data:`DOWNLOAD_MARGIN_DAYS` on both sides (whole
    days), sampled every 30 min, and is written atomically as
    ``horizons_tess_<start>_<stop>.csv`` (JD), where :func:`spacecraft_ephemeris` finds it
    next time. A table already in the cache is reused.

    Raises
    ------
    EphemerisError
        When the download fails or the answer is not a usable table.
    """
    start = float(np.floor(jd_min - DOWNLOAD_MARGIN_DAYS)) + 0.5
    stop = float(np.ceil(jd_max + DOWNLOAD_MARGIN_DAYS)) + 0.5
    cache = Path(cache_dir)
    target = cache / f"horizons_tess_{start:.1f}_{stop:.1f}.csv"
    if target.is_file():
        return target
    url = horizons_query(start, stop)
    log.info("Downloading TESS's ephemeris JD %.1f-%.1f from JPL Horizons", start, stop)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (https)
            content = response.read()
    except OSError as err:
        raise EphemerisError(f"download from JPL Horizons failed ({err})") from None
    try:
        with atomic_path(target, suffix="") as tmp:
            tmp.write_bytes(content)
            table = read_horizons_table(tmp)
            if table.start > jd_min or table.stop < jd_max:
                raise EphemerisError(
                    f"JPL Horizons returned JD {table.start:.2f}-{table.stop:.2f}, not the "
                    f"requested {jd_min:.2f}-{jd_max:.2f}"
                )
    finally:
        read_horizons_table.cache_clear()
    log.info("Wrote %s", target)
    return target
