"""Time stamps: the spacecraft's position and per-star barycentric corrections."""

from tessphot.timing.barycentric import (
    ObserverState,
    barycentric_correction,
    file_correction_state,
    observer_state,
)
from tessphot.timing.ephemeris import TimingSettings, spacecraft_ephemeris
from tessphot.timing.horizons import download_horizons
from tessphot.timing.source import Ephemeris, EphemerisError, GeocentreEphemeris
from tessphot.timing.spice import SpiceEphemeris
from tessphot.timing.tables import TableEphemeris, find_tables, read_horizons_table

__all__ = [
    "Ephemeris",
    "EphemerisError",
    "GeocentreEphemeris",
    "ObserverState",
    "SpiceEphemeris",
    "TableEphemeris",
    "TimingSettings",
    "barycentric_correction",
    "download_horizons",
    "file_correction_state",
    "find_tables",
    "observer_state",
    "read_horizons_table",
    "spacecraft_ephemeris",
]
