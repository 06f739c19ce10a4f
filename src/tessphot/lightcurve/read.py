"""Our light curves read back as lightkurve objects (lightkurve loaded only when called).

lightkurve recognises the TASOC format by TASOC's own ``ORIGIN`` only; ours names tessphot,
so ``lightkurve.read(path)`` does not know it. :func:`read_lightcurve` reads it with
lightkurve's TASOC reader and the flux column asked for.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from astropy.io import fits
from astropy.units import UnitsWarning

from tessphot.io.errors import FileProblem

if TYPE_CHECKING:
    from lightkurve import TessLightCurve

log = logging.getLogger(__name__)

#: The flux columns by the name ``read_lightcurve`` takes: corrected [ppm], raw [e-/s].
FLUX_COLUMNS = {"corr": "FLUX_CORR", "raw": "FLUX_RAW"}
#: Extension holding the light curve.
LIGHTCURVE_EXTENSION = "LIGHTCURVE"


def _all_nan(path: Path, column: str) -> bool:
    """Whether a light curve's column holds no finite value.

    Raises
    ------
    FileProblem
        When the file is not a light curve with that column.
    """
    try:
        with fits.open(path, memmap=False) as hdus:
            values = np.asarray(hdus[LIGHTCURVE_EXTENSION].data[column], dtype=float)
    except FileNotFoundError:
        raise FileProblem(path, "no such file") from None
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise FileProblem(
            path,
            f"not a TASOC-format light curve (no {LIGHTCURVE_EXTENSION} table with "
            f"{column}: {err})",
        ) from None
    return not np.isfinite(values).any()


def read_lightcurve(path: str | os.PathLike, flux: str = "corr") -> TessLightCurve:
    """A tessphot (or TASOC) light-curve file as a lightkurve ``TessLightCurve``.

    Parameters
    ----------
    path : path-like
        The light-curve file (``.fits`` or ``.fits.gz``).
    flux : {"corr", "raw"}
        The flux given as ``flux``/``flux_err``: ``FLUX_CORR`` (the corrected light curve
        [ppm], ``meta["NORMALIZED"]`` true) or ``FLUX_RAW`` (the photometry [e-/s]). When
        ``FLUX_CORR`` holds no value (the corrections are not made yet) ``FLUX_RAW`` is
        given instead, with a warning saying so.

    Returns
    -------
    lightkurve.TessLightCurve
        Time in BTJD (TDB), flux, flux_err, quality, cadenceno and the centroids;
        ``meta["FLUX_ORIGIN"]`` names the column read.

    Raises
    ------
    ValueError
        When ``flux`` is not one of :data:`FLUX_COLUMNS`.
    FileProblem
        When the file is not a light curve.
    """
    if flux not in FLUX_COLUMNS:
        raise ValueError(f"flux must be one of {sorted(FLUX_COLUMNS)}: {flux!r}")
    path = Path(path)
    column = FLUX_COLUMNS[flux]
    if _all_nan(path, column) and column == FLUX_COLUMNS["corr"]:
        log.warning(
            "%s: FLUX_CORR holds no value (the light curve is not corrected yet): "
            "FLUX_RAW [e-/s] read instead",
            path,
        )
        column = FLUX_COLUMNS["raw"]
    # lightkurve is optional and slow to import: loaded by the one function that needs it.
    try:
        from lightkurve.io.tasoc import read_tasoc_lightcurve
    except ImportError:
        raise ImportError(
            "tessphot.read_lightcurve needs lightkurve: pip install lightkurve "
            '(or pip install "tessphot[lightkurve]")'
        ) from None

    with warnings.catch_warnings():
        # TASOC's units ("ppm", "BJD - 2457000, days") are not FITS units: astropy says so.
        warnings.simplefilter("ignore", UnitsWarning)
        lc = read_tasoc_lightcurve(os.fspath(path), flux_column=column)
    lc.meta["FLUX_ORIGIN"] = column.lower()
    lc.meta["NORMALIZED"] = column == FLUX_COLUMNS["corr"]
    return lc
