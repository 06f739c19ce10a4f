"""Settings (moved to :mod:`tessphot.config`; this module re-exports its names)."""

from tessphot.config import DEFAULTS, SETTINGS_ENV, SettingsError, load_settings

__all__ = ["DEFAULTS", "SETTINGS_ENV", "SettingsError", "load_settings"]
