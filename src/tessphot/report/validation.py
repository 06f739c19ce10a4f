"""Per-star data validation: TASOC-like bit flags (``DATAVAL``) from the run's diagnostics.

The flags are stored in ``todo.sqlite`` in the table of TASOC's data validation,
``datavalidation_raw (priority, dataval, approved)``, and as ``DATAVAL`` in the primary
header of each light curve. A star is *approved* when none of the severe flags
(``SEVERE``) is set.
"""

from __future__ import annotations

import enum
import logging
import sqlite3
from pathlib import Path

import numpy as np

from tessphot.lightcurve.writer import set_dataval
from tessphot.report.data import RunTable, noise_ratios
from tessphot.tasks import STATUS

logger = logging.getLogger(__name__)

#: Mask size [pixels] expected at the bright and faint ends of TASOC's mask table for 1800-s
#: data (noise-model.md): ~1500 px at Tmag 2, 8 px at Tmag 14.6, never below 4.
MASK_TABLE = ((2.0, 1500.0), (14.6, 8.0))
#: Smallest expected mask [pixels].
MASK_FLOOR = 4.0
#: A mask smaller than the expected size divided by this factor is flagged SMALL_MASK.
SMALL_MASK_FACTOR = 4.0
#: A mask larger than the expected size times this factor is flagged LARGE_MASK.
LARGE_MASK_FACTOR = 4.0
#: Noise below this fraction of the model is flagged LOW_NOISE / LOW_PTP [ratio]: less
#: noise than physics allows means a flux that is not the star's (or a wrong magnitude).
LOW_NOISE_RATIO = 0.5
#: Noise above this multiple of the model is flagged HIGH_NOISE / HIGH_PTP [ratio]
#: (variable stars legitimately have a high ``rms_hour``: not severe).
HIGH_NOISE_RATIO = 5.0


class DataVal(enum.IntFlag):
    """Data-validation flags of one star (the ``DATAVAL`` bit mask)."""

    #: The mean flux is not finite or not positive (all NaN, or a negative median).
    INVALID_FLUX = 1
    #: The contamination is outside 0-1.
    INVALID_CONTAMINATION = 2
    #: The mask is much smaller than usual for the magnitude.
    SMALL_MASK = 4
    #: The mask is much larger than usual for the magnitude.
    LARGE_MASK = 8
    #: ``rms_hour`` far below the noise model.
    LOW_NOISE = 16
    #: ``rms_hour`` far above the noise model.
    HIGH_NOISE = 32
    #: Point-to-point scatter far below the noise model.
    LOW_PTP = 64
    #: Point-to-point scatter far above the noise model.
    HIGH_PTP = 128


#: Flags that withhold a star's approval.
SEVERE = DataVal.INVALID_FLUX | DataVal.INVALID_CONTAMINATION | DataVal.LOW_NOISE | DataVal.LOW_PTP

#: Statuses of tasks with a light curve (the ones validated).
VALIDATED_STATUSES = (int(STATUS.OK), int(STATUS.WARNING))

#: The table of TASOC's data validation in ``todo.sqlite``.
DATAVAL_DDL = """CREATE TABLE IF NOT EXISTS datavalidation_raw (
    priority INTEGER PRIMARY KEY ASC NOT NULL,
    dataval INTEGER NOT NULL DEFAULT 0,
    approved BOOLEAN NOT NULL DEFAULT 0,
    FOREIGN KEY (priority) REFERENCES todolist(priority) ON DELETE CASCADE ON UPDATE CASCADE
)"""


def expected_mask_size(tmag) -> np.ndarray:
    """Usual mask size [pixels] for a magnitude: log-linear through ``MASK_TABLE``, floored."""
    (t0, n0), (t1, n1) = MASK_TABLE
    slope = (np.log10(n1) - np.log10(n0)) / (t1 - t0)
    size = 10.0 ** (np.log10(n0) + slope * (np.asarray(tmag, dtype=float) - t0))
    return np.maximum(size, MASK_FLOOR)


def _flag(flags: np.ndarray, condition: np.ndarray, flag: DataVal) -> None:
    """Set ``flag`` where ``condition`` (NaN comparisons are false: no flag)."""
    flags[np.asarray(condition, dtype=bool)] |= int(flag)


def dataval_flags(run: RunTable) -> np.ndarray:
    """The flags of every task of a run (0 for tasks without a light curve).

    Returns
    -------
    numpy.ndarray
        Integer bit masks of :class:`DataVal`, one per row of ``run``.
    """
    flags = np.zeros(len(run), dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        flux = run["mean_flux"]
        _flag(flags, ~(np.isfinite(flux) & (flux > 0)), DataVal.INVALID_FLUX)
        cont = run["contamination"]
        _flag(flags, (cont < 0) | (cont > 1), DataVal.INVALID_CONTAMINATION)
        expected = expected_mask_size(run["tmag"])
        size = run["mask_size"]
        _flag(flags, size < expected / SMALL_MASK_FACTOR, DataVal.SMALL_MASK)
        _flag(flags, size > expected * LARGE_MASK_FACTOR, DataVal.LARGE_MASK)
        rms, ptp = noise_ratios(run)
        _flag(flags, rms < LOW_NOISE_RATIO, DataVal.LOW_NOISE)
        _flag(flags, rms > HIGH_NOISE_RATIO, DataVal.HIGH_NOISE)
        _flag(flags, ptp < LOW_NOISE_RATIO, DataVal.LOW_PTP)
        _flag(flags, ptp > HIGH_NOISE_RATIO, DataVal.HIGH_PTP)
    flags[~np.isin(run["status"], VALIDATED_STATUSES)] = 0
    return flags


def approved(flags) -> np.ndarray:
    """Whether each star is approved: no severe flag."""
    return (np.asarray(flags, dtype=np.int64) & int(SEVERE)) == 0


def store_flags(todo_path: str | Path, run: RunTable, flags: np.ndarray) -> None:
    """Write the flags of the validated tasks into ``datavalidation_raw`` (rows replaced).

    Rows of tasks that have no light curve any more are removed.
    """
    validated = np.isin(run["status"], VALIDATED_STATUSES)
    rows = [
        (int(p), int(f), bool(a))
        for p, f, a in zip(
            run["priority"][validated], flags[validated], approved(flags[validated]), strict=True
        )
    ]
    con = sqlite3.connect(todo_path, timeout=60)
    try:
        with con:
            con.execute(DATAVAL_DDL)
            # Tasks without a light curve now (redone and failed since) lose their flags.
            con.execute(
                "DELETE FROM datavalidation_raw WHERE priority NOT IN "
                f"(SELECT priority FROM todolist WHERE status IN {VALIDATED_STATUSES})"
            )
            con.executemany(
                "INSERT OR REPLACE INTO datavalidation_raw (priority, dataval, approved) "
                "VALUES (?, ?, ?)",
                rows,
            )
    finally:
        con.close()


def update_headers(run: RunTable, flags: np.ndarray, bases: tuple[Path, ...]) -> int:
    """Write each validated light curve's flags into its ``DATAVAL`` header card.

    Parameters
    ----------
    run : RunTable
        The tasks.
    flags : numpy.ndarray
        Their flags.
    bases : tuple of pathlib.Path
        Folders the ``diagnostics.lightcurve`` paths are relative to, tried in order.

    Returns
    -------
    int
        Light curves rewritten (those whose card changed).
    """
    changed = 0
    for name, value, status in zip(run["lightcurve"], flags, run["status"], strict=True):
        if name is None or status not in VALIDATED_STATUSES:
            continue
        path = next((b / name for b in bases if (b / name).is_file()), None)
        if path is None:
            logger.warning("Data validation: light curve %s not found below %s", name, bases[0])
            continue
        changed += set_dataval(path, int(value))
    return changed
