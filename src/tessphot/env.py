"""Every environment variable tessphot reads, read here and nowhere else.

Each value is read when its function is called (not at import), so a test's
``monkeypatch.setenv`` takes effect. An empty variable counts as unset.

=============================== ===========================================================
Variable                        Meaning
=============================== ===========================================================
``TESSPHOT_SETTINGS``           The default settings file (:mod:`tessphot.config`).
``TESSPHOT_INPUT``              The input folder (:mod:`tessphot.paths`).
``TESSPHOT_OUTPUT``             The light-curve folder.
``TESSPHOT_DEMO``               The demo's data folder (default: the cache's ``demo``).
``TESSPHOT_PRF_DIR``            Folder of SPOC PRF models (CLI commands, TPF photometry).
``TESSPHOT_PRF_CACHE``          Download cache of the SPOC PRF models (cache's ``prf``).
``TESSPHOT_PRF_URL``            The archive's folder of SPOC PRF models (a mirror).
``TESSPHOT_EPHEMERIS``          Folders of ephemeris tables (``os.pathsep``-separated).
``TESSPHOT_EPHEMERIS_CACHE``    Download cache of ephemeris tables (cache's ``ephemeris``).
``TESSPHOT_SPICE_KERNELS``      Folder of SPICE kernels.
``TESSPHOT_MAST_CACHE``         Cache of MAST catalogue queries (cache's ``mast``).
``TESSPHOT_DB``                 PostgreSQL connection string of the TIC database.
``TESSPHOT_DB_<KEY>``           ... single connection keywords (HOST, PORT, ...).
``TESSPHOT_DB_TABLE``           The TIC table of the database.
``PGHOST`` ... ``PGDATABASE``   libpq's defaults (only for describing a connection).
``SLURM_JOB_ID``                Recorded with a run in the task database.
``XDG_CACHE_HOME``              Root of the user cache (default ``~/.cache``).
``TESSPHOT_TEST_KILL_*``        Test hooks of the fault handling of parallel runs.
=============================== ===========================================================
"""

from __future__ import annotations

import os
from pathlib import Path

SETTINGS = "TESSPHOT_SETTINGS"
INPUT = "TESSPHOT_INPUT"
OUTPUT = "TESSPHOT_OUTPUT"
DEMO = "TESSPHOT_DEMO"
PRF_DIR = "TESSPHOT_PRF_DIR"
PRF_CACHE = "TESSPHOT_PRF_CACHE"
PRF_URL = "TESSPHOT_PRF_URL"
EPHEMERIS = "TESSPHOT_EPHEMERIS"
EPHEMERIS_CACHE = "TESSPHOT_EPHEMERIS_CACHE"
SPICE_KERNELS = "TESSPHOT_SPICE_KERNELS"
MAST_CACHE = "TESSPHOT_MAST_CACHE"
DB = "TESSPHOT_DB"
DB_TABLE = "TESSPHOT_DB_TABLE"
SLURM_JOB_ID = "SLURM_JOB_ID"
XDG_CACHE_HOME = "XDG_CACHE_HOME"
KILL_MASTER_AFTER = "TESSPHOT_TEST_KILL_MASTER_AFTER"
KILL_STARID = "TESSPHOT_TEST_KILL_STARID"
KILL_ONCE_STARID = "TESSPHOT_TEST_KILL_ONCE_STARID"
TASK_DELAY = "TESSPHOT_TEST_TASK_DELAY"


def value(name: str) -> str | None:
    """The value of an environment variable; None when it is unset or empty.

    Parameters
    ----------
    name : str
        The variable, one of this module's constants (or ``TESSPHOT_DB_<KEY>``, ``PG*``).
    """
    return os.environ.get(name) or None


def path(name: str) -> Path | None:
    """An environment variable naming a folder or file (``~`` expanded); None when unset."""
    text = value(name)
    return Path(text).expanduser() if text else None


def paths(name: str) -> list[Path]:
    """An environment variable listing folders separated by ``os.pathsep`` (``~`` expanded)."""
    return [Path(p).expanduser() for p in (value(name) or "").split(os.pathsep) if p]


def starids(name: str) -> set[int]:
    """The TIC numbers listed in an environment variable (comma-separated)."""
    return {int(s) for s in (value(name) or "").split(",") if s.strip()}


def cache_folder(name: str, variable: str | None = None) -> Path:
    """The cache folder ``name`` of tessphot: ``$XDG_CACHE_HOME/tessphot/<name>``.

    Parameters
    ----------
    name : str
        The cache's sub-folder (``prf``, ``ephemeris``, ``mast``, ``demo``).
    variable : str, optional
        An environment variable that, when set, names the folder instead.

    Returns
    -------
    Path
        The folder (``~/.cache/tessphot/<name>`` when ``XDG_CACHE_HOME`` is unset).
    """
    own = path(variable) if variable else None
    if own is not None:
        return own
    base = value(XDG_CACHE_HOME) or Path.home() / ".cache"
    return Path(base) / "tessphot" / name
