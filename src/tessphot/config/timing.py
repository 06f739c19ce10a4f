"""Settings of the time stamps (table ``[timing]``): where TESS's position comes from."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tessphot import env
from tessphot.config.fields import Table, setting


@dataclass(frozen=True)
class TimingSettings(Table):
    """Where the spacecraft's position comes from (table ``[timing]`` of the settings).

    Attributes
    ----------
    ephemeris_dirs : tuple of str
        Folders (or files) of ephemeris tables; ``$TESSPHOT_EPHEMERIS`` adds more.
    spice_kernels : str or None
        Folder of SPICE kernels (all ``*.bsp``, ``*.tls``, ... in it are loaded; needs
        ``spiceypy``); default ``$TESSPHOT_SPICE_KERNELS``.
    download : bool
        Download a missing table from JPL Horizons into the cache.
    cache_dir : str or None
        The download cache; default ``$TESSPHOT_EPHEMERIS_CACHE``, else
        ``~/.cache/tessphot/ephemeris``.
    """

    TABLE = "timing"
    LABEL = "timing"

    ephemeris_dirs: tuple[str, ...] = setting(())
    spice_kernels: str | None = setting(None, path=True)
    download: bool = setting(True)
    cache_dir: str | None = setting(None, path=True)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None) -> TimingSettings:
        """Settings from a ``[timing]`` table (unknown keys are errors).

        ``ephemeris_dirs`` may be one folder (a string or path) or a list of them.
        """
        if isinstance(values, TimingSettings):
            return values
        values = dict(values or {})
        dirs = values.get("ephemeris_dirs") or ()
        if isinstance(dirs, str | os.PathLike):
            dirs = (dirs,)
        if "ephemeris_dirs" in values:
            values["ephemeris_dirs"] = tuple(str(d) for d in dirs)
        return super().from_mapping(values)

    def table_dirs(self) -> list[Path]:
        """Folders searched for tables: the settings', ``$TESSPHOT_EPHEMERIS``', the cache."""
        dirs = [Path(d).expanduser() for d in self.ephemeris_dirs]
        return dirs + env.paths(env.EPHEMERIS) + [self.cache()]

    def kernels(self) -> Path | None:
        """The folder of SPICE kernels, if any is configured."""
        if self.spice_kernels:
            return Path(self.spice_kernels).expanduser()
        return env.path(env.SPICE_KERNELS)

    def cache(self) -> Path:
        """The download cache folder."""
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        return env.cache_folder("ephemeris", env.EPHEMERIS_CACHE)
