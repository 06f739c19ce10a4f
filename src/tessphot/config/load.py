"""All the settings: defaults in code, optionally overridden by a TOML file.

A settings file has one table per stage (and per photometry method), e.g.::

    [simulate]
    stars = 2000
    variable_fraction = 0.5

    [todo]
    faint_limit = 14.0

    [photometry.linpsf]
    fit_radius = 3.0

Unknown tables or keys are errors, so a typo never passes silently, and every value is
checked when the file is read (type, range, allowed choices): one error names the file, the
table and the key. Every setting a stage uses is written into its outputs (headers or
attributes).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tessphot import env
from tessphot.config.correct import CorrectSettings
from tessphot.config.fields import SettingsError, Table
from tessphot.config.photometry import PhotometrySettings
from tessphot.config.prepare import PrepareSettings
from tessphot.config.simulate import NOT_SETTINGS, SimulationConfig
from tessphot.config.stages import CatalogSettings, DemoSettings, TodoSettings
from tessphot.config.timing import TimingSettings

#: Environment variable naming a default settings file.
SETTINGS_ENV = env.SETTINGS


def _simulate_defaults() -> dict[str, Any]:
    values = SimulationConfig().to_dict()
    return {k: v for k, v in values.items() if k not in NOT_SETTINGS}


def _simulate_checked(values: Mapping[str, Any]) -> dict[str, Any]:
    """A ``[simulate]`` table checked (its keys and values), as plain values."""
    unknown = sorted(set(values) - set(SimulationConfig.settings_keys()))
    if unknown:
        raise SettingsError(f"unknown setting {unknown[0]!r} in [simulate]")
    config = SimulationConfig.from_mapping(values)
    return {k: v for k, v in config.to_dict().items() if k not in NOT_SETTINGS}


@dataclass(frozen=True)
class Settings:
    """All the settings, one typed table per stage.

    Attributes
    ----------
    photometry : PhotometrySettings
        ``[photometry]`` and its tables per method.
    prepare : PrepareSettings
        ``[prepare]``, ``[prepare.background]``, ``[prepare.motion]``, ``[prepare.storage]``.
    timing : TimingSettings
        ``[timing]``.
    correct : CorrectSettings
        ``[correct]``, ``[correct.cbv]``, ``[correct.fit]``.
    catalog : CatalogSettings
        ``[catalog]``.
    todo : TodoSettings
        ``[todo]``.
    demo : DemoSettings
        ``[demo]``.
    simulate : dict
        ``[simulate]``: the settings fields of :class:`SimulationConfig` (checked), as plain
        values (a simulation also needs per-run fields).
    """

    photometry: PhotometrySettings = dataclasses.field(default_factory=PhotometrySettings)
    prepare: PrepareSettings = dataclasses.field(default_factory=PrepareSettings)
    timing: TimingSettings = dataclasses.field(default_factory=TimingSettings)
    correct: CorrectSettings = dataclasses.field(default_factory=CorrectSettings)
    catalog: CatalogSettings = dataclasses.field(default_factory=CatalogSettings)
    todo: TodoSettings = dataclasses.field(default_factory=TodoSettings)
    demo: DemoSettings = dataclasses.field(default_factory=DemoSettings)
    simulate: dict[str, Any] = dataclasses.field(default_factory=_simulate_defaults)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """The settings of a parsed settings file (tables as mappings; old keys warned).

        Raises
        ------
        SettingsError
            For an unknown table or key, a setting given twice or an invalid value.
        """
        tables: dict[str, Any] = {}
        names = {f.name: f for f in dataclasses.fields(cls)}
        for table, given in values.items():
            if table not in names or not isinstance(given, Mapping):
                raise SettingsError(f"unknown settings table [{table}]")
            if table == "simulate":
                tables[table] = _simulate_checked(given)
            elif table == "photometry":
                tables[table] = PhotometrySettings.from_mapping(given, strict=True)
            else:
                tables[table] = _TABLES[table].from_mapping(given)
        return cls(**tables)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Every table as plain values (nested tables as dicts), as :data:`DEFAULTS`."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, Table) else dict(value)
        return out


#: The typed table of each top-level table but ``[simulate]``.
_TABLES: dict[str, type[Table]] = {
    "photometry": PhotometrySettings,
    "prepare": PrepareSettings,
    "timing": TimingSettings,
    "correct": CorrectSettings,
    "catalog": CatalogSettings,
    "todo": TodoSettings,
    "demo": DemoSettings,
}

#: The defaults, per stage, as plain values.
DEFAULTS: dict[str, dict[str, Any]] = Settings().to_dict()


def read_settings(path: str | os.PathLike | None = None) -> Settings:
    """The settings: defaults overridden by a TOML file (``path``, else ``$TESSPHOT_SETTINGS``).

    Raises
    ------
    SettingsError
        For a missing or malformed file, unknown tables or keys, or an invalid value (the
        message names the file).
    """
    path = path if path is not None else env.value(SETTINGS_ENV)
    if not path:
        return Settings()
    path = Path(path)
    try:
        with open(path, "rb") as f:
            user = tomllib.load(f)
    except FileNotFoundError:
        raise SettingsError(f"{path}: settings file not found") from None
    except tomllib.TOMLDecodeError as err:
        raise SettingsError(f"{path}: not valid TOML ({err})") from None
    try:
        return Settings.from_mapping(user)
    except SettingsError as err:
        raise SettingsError(f"{path}: {err}") from None


def load_settings(path: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """The settings of :func:`read_settings` as plain values, one dict per table.

    Every value is checked at load; the dicts are what the stages take today (e.g.
    ``load_settings()["photometry"]`` for :class:`tessphot.photometry.base.BasePhotometry`).

    Raises
    ------
    SettingsError
        See :func:`read_settings`.
    """
    return read_settings(path).to_dict()
