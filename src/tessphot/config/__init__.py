"""Settings: one typed table per stage and per photometry method, every value checked at load.

:func:`read_settings` gives the typed :class:`Settings`; :func:`load_settings` the same as
plain dicts (what the stages take today). The tables (README "Settings"):

============================ ============================================================
``[photometry]``             :class:`PhotometrySettings` (common: stamp, PRF, output)
``[photometry.aperture]``    :class:`ApertureSettings`
``[photometry.k2p2]``        :class:`K2P2Settings` (aperture's mask finder)
``[photometry.linpsf]``      :class:`LinPSFSettings`
``[photometry.psf]``         :class:`PSFSettings`
``[photometry.halo]``        :class:`HaloSettings`
``[photometry.choice]``      :class:`ChoiceSettings` (the automatic choice of the method)
``[prepare]``                :class:`PrepareSettings`
``[prepare.background]``     :class:`BackgroundSettings`
``[prepare.motion]``         :class:`MotionSettings`
``[prepare.storage]``        :class:`StorageSettings`
``[timing]``                 :class:`TimingSettings`
``[correct]``                :class:`CorrectSettings` (the corrections stage)
``[correct.cbv]``            :class:`CBVSettings`
``[correct.fit]``            :class:`FitSettings`
``[catalog]``                :class:`CatalogSettings`
``[todo]``                   :class:`TodoSettings`
``[demo]``                   :class:`DemoSettings`
``[simulate]``               :class:`SimulationConfig`
``[simulate.prf]``           :class:`PRFDifferenceSettings` (simulated PRF differences)
============================ ============================================================
"""

from tessphot.config.correct import CBVSettings, CorrectSettings, FitSettings
from tessphot.config.fields import SettingsError, Table, setting
from tessphot.config.fitting import POSITION_MODELS, LinPSFSettings, PSFSettings
from tessphot.config.halo import HaloSettings
from tessphot.config.k2p2 import K2P2Settings
from tessphot.config.legacy import PHOTOMETRY_KEYS
from tessphot.config.load import DEFAULTS, SETTINGS_ENV, Settings, load_settings, read_settings
from tessphot.config.photometry import (
    K2P2_TABLE,
    SPILL_METHODS,
    ApertureSettings,
    ChoiceSettings,
    PhotometrySettings,
    default_settings,
    photometry_settings,
)
from tessphot.config.prepare import (
    BackgroundSettings,
    MotionSettings,
    PrepareSettings,
    StorageSettings,
)
from tessphot.config.simulate import PRFDifferenceSettings, SimulationConfig
from tessphot.config.stages import CatalogSettings, DemoSettings, TodoSettings
from tessphot.config.timing import TimingSettings

__all__ = [
    "DEFAULTS",
    "K2P2_TABLE",
    "PHOTOMETRY_KEYS",
    "POSITION_MODELS",
    "SETTINGS_ENV",
    "SPILL_METHODS",
    "ApertureSettings",
    "BackgroundSettings",
    "CBVSettings",
    "CatalogSettings",
    "ChoiceSettings",
    "CorrectSettings",
    "DemoSettings",
    "FitSettings",
    "HaloSettings",
    "K2P2Settings",
    "LinPSFSettings",
    "MotionSettings",
    "PRFDifferenceSettings",
    "StorageSettings",
    "PSFSettings",
    "PhotometrySettings",
    "PrepareSettings",
    "SettingsError",
    "Settings",
    "SimulationConfig",
    "Table",
    "TimingSettings",
    "TodoSettings",
    "default_settings",
    "load_settings",
    "photometry_settings",
    "read_settings",
    "setting",
]
