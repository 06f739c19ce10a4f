"""Settings: defaults in code, optionally overridden by a TOML file.

A settings file has one table per stage, e.g.::

    [simulate]
    stars = 2000
    variable_fraction = 0.5

    [todo]
    faint_limit = 14.0

Unknown tables or keys are errors, so a typo never passes silently. Every setting a stage
uses is written into its outputs (headers or attributes).
"""

from __future__ import annotations

import copy
import os
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from tessphot.evaluation.simulate.config import SimulationConfig
from tessphot.photometry.config import default_settings

#: Environment variable naming a default settings file.
SETTINGS_ENV = "TESSPHOT_SETTINGS"

#: Simulation fields that are not settings (given per run).
_NOT_SETTINGS = {"origin", "demo_star", "extra_stars"}

#: The defaults, per stage.
DEFAULTS: dict[str, dict[str, Any]] = {
    "simulate": {
        f.name: f.default for f in fields(SimulationConfig) if f.name not in _NOT_SETTINGS
    },
    "demo": {
        "sector": 1,
        "camera": 1,
        "ccd": 4,
        "size": 200,
        "cadences": 150,
        "stars": 300,
        "bright": 1,
        "seed": 182092046,
    },
    # tessphot.todo (README "The stages"): targets brighter than the faint limit [Tmag];
    # FFI targets at least as bright as halo_tmag_limit get method 'halo' (the original's
    # rule); override files in the original's format (None: the ones shipped with tessphot).
    "todo": {
        "faint_limit": 15.0,
        "halo_tmag_limit": 2.0,
        "methods_file": None,
        "exclude_file": None,
    },
    # tessphot.photometry (tessphot.photometry.base.PhotometrySettings): table [photometry]
    # overrides single fields; [photometry.k2p2] overrides fields of K2P2Settings.
    "photometry": default_settings(),
    # tessphot.timing (tessphot.timing.TimingSettings): where TESS's position comes from for
    # the per-star barycentric times: folders of Horizons tables (plus $TESSPHOT_EPHEMERIS
    # and the cache), a folder of SPICE kernels (or $TESSPHOT_SPICE_KERNELS), whether a
    # missing table is downloaded from JPL Horizons, and the cache (None: ~/.cache/tessphot).
    "timing": {"ephemeris_dirs": [], "spice_kernels": None, "download": True, "cache_dir": None},
    # tessphot.prepare: tables [prepare.background] and [prepare.motion] override single
    # fields of tessphot.prepare.background.BackgroundSettings / motion.MotionSettings.
    "prepare": {"background": {}, "motion": {}, "workers": None},
    # tessphot.catalog (docs/catalog.md); the library defaults are the same.
    "catalog": {
        "source": "file",  # file, postgres or mast
        "buffer": 0.2,  # footprint buffer [deg]
        "faint_limit": 19.0,  # leave out fainter stars [Tmag]; inf keeps all
        "ticver": "8.2",  # written into settings.ticver
        "keep_dispositions": ["SPLIT", "3"],  # TIC dispositions kept besides NULL
        "db_table": "tic",  # PostgreSQL table, TABLE or SCHEMA.TABLE
        "db_connect_timeout": 10.0,  # [s]
        "mast_tile_radius": 0.5,  # radius of one MAST query [deg]
        "mast_retries": 4,  # attempts per MAST query
        "mast_backoff": 5.0,  # first wait between attempts [s], doubled after each
    },
}


class SettingsError(ValueError):
    """A settings file that cannot be used (the message names the file and the problem)."""


def load_settings(path: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """Defaults merged with a TOML settings file (``path``, else ``$TESSPHOT_SETTINGS``).

    Raises
    ------
    SettingsError
        For a missing or malformed file, or unknown tables or keys.
    """
    settings = copy.deepcopy(DEFAULTS)
    path = path if path is not None else os.environ.get(SETTINGS_ENV)
    if not path:
        return settings
    path = Path(path)
    try:
        with open(path, "rb") as f:
            user = tomllib.load(f)
    except FileNotFoundError:
        raise SettingsError(f"{path}: settings file not found") from None
    except tomllib.TOMLDecodeError as err:
        raise SettingsError(f"{path}: not valid TOML ({err})") from None
    for table, values in user.items():
        if table not in settings or not isinstance(values, dict):
            raise SettingsError(f"{path}: unknown settings table [{table}]")
        for key, value in values.items():
            if key not in settings[table]:
                raise SettingsError(f"{path}: unknown setting {key!r} in [{table}]")
            settings[table][key] = value
    return settings
