"""Settings of the photometry stage (moved to :mod:`tessphot.config.photometry`)."""

from tessphot.config.photometry import (
    K2P2_TABLE,
    PhotometrySettings,
    default_settings,
    photometry_settings,
)

__all__ = ["K2P2_TABLE", "PhotometrySettings", "default_settings", "photometry_settings"]
