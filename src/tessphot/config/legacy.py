"""The old flat keys of ``[photometry]`` and where they moved (one table, used everywhere).

Until tessphot 0.x every photometry setting sat in ``[photometry]``, the methods' ones with
a prefix (``linpsf_fit_radius``). They now sit in one table per method
(``[photometry.linpsf] fit_radius``). An old key is still accepted, with a warning naming
the new one (:func:`migrate`); old attribute names of
:class:`~tessphot.config.photometry.PhotometrySettings` still answer, with a DeprecationWarning.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

from tessphot.config.fields import SettingsError, Table

log = logging.getLogger(__name__)

#: Old key of ``[photometry]`` -> (its new table under ``photometry``, its new key).
PHOTOMETRY_KEYS: dict[str, tuple[str, str]] = {
    "stamp_grow": ("aperture", "stamp_grow"),
    "max_attempts": ("aperture", "max_attempts"),
    "max_attempts_bright": ("aperture", "max_attempts_bright"),
    "bright_tmag": ("aperture", "bright_tmag"),
    "optimise_aperture": ("aperture", "optimise"),
    "background_used_fraction": ("aperture", "background_used_fraction"),
    "motion_correction": ("aperture", "motion_correction"),
    "motion_correction_saturated": ("aperture", "motion_correction_saturated"),
    "motion_positions_saturated": ("aperture", "motion_positions_saturated"),
    "trim_spilling_columns": ("aperture", "trim_spilling_columns"),
    "linpsf_fit_radius": ("linpsf", "fit_radius"),
    "linpsf_fit_light": ("linpsf", "fit_light"),
    "linpsf_max_stars": ("linpsf", "max_stars"),
    "linpsf_max_inflation": ("linpsf", "max_inflation"),
    "linpsf_min_separation": ("linpsf", "min_separation"),
    "linpsf_background": ("linpsf", "background"),
    "linpsf_smooth_hours": ("linpsf", "smooth_hours"),
    "linpsf_smooth_sigma": ("linpsf", "smooth_sigma"),
    "linpsf_bleed_margin": ("linpsf", "bleed_margin"),
    "linpsf_saturated_tmag": ("linpsf", "saturated_tmag"),
    "linpsf_fit_shifts": ("linpsf", "fit_shifts"),
    "psf_positions": ("psf", "positions"),
    "psf_drift": ("psf", "drift"),
    "psf_offset_light": ("psf", "offset_light"),
    "psf_offset_coverage": ("psf", "offset_coverage"),
    "psf_max_offset_stars": ("psf", "max_offset_stars"),
    "psf_max_offset": ("psf", "max_offset"),
    "psf_max_iterations": ("psf", "max_iterations"),
    "psf_tolerance": ("psf", "tolerance"),
    "psf_fit_cadences": ("psf", "fit_cadences"),
    "halo_radius": ("halo", "radius"),
    "halo_saturation_fraction": ("halo", "saturation_fraction"),
    "halo_bleed_margin": ("halo", "bleed_margin"),
    "halo_min_snr": ("halo", "min_snr"),
    "halo_max_neighbour_light": ("halo", "max_neighbour_light"),
    "halo_split_gap": ("halo", "split_gap"),
    "halo_tv_epsilon": ("halo", "tv_epsilon"),
    "halo_max_iterations": ("halo", "max_iterations"),
    "halo_auto_tmag": ("choice", "spill_tmag"),
    "halo_edge_flux": ("choice", "edge_flux"),
    "spill_method": ("choice", "spill_method"),
}


def new_name(old: str) -> str:
    """Where an old ``[photometry]`` key is now, e.g. ``[photometry.linpsf] fit_radius``."""
    table, key = PHOTOMETRY_KEYS[old]
    return f"[photometry.{table}] {key}"


def _deprecated(old: str, *, announce: bool) -> None:
    message = f"setting [photometry] {old} is deprecated: it is now {new_name(old)}"
    warnings.warn(message, DeprecationWarning, stacklevel=4)
    if announce:
        log.warning(message)


def _plain(value: Any) -> Any:
    """A nested table as a dict of its own (a copy), other values as they are."""
    if isinstance(value, Table):
        return value.to_dict()
    return dict(value) if isinstance(value, Mapping) else value


def migrate(
    values: Mapping[str, Any], *, strict: bool = False, announce: bool = False
) -> tuple[dict[str, Any], dict[tuple[str, str], str]]:
    """A ``[photometry]`` table with its old flat keys moved into the methods' tables.

    Parameters
    ----------
    values : mapping
        The table as given (old keys, new tables, or both).
    strict : bool
        An old key whose new key is given too is an error (a settings file); otherwise
        the old key's value wins (code that overrides one value of loaded settings).
    announce : bool
        Log the warning too (for a settings file; code gets a DeprecationWarning only).

    Returns
    -------
    values : dict
        The table with new keys only (the nested tables copied).
    moved : dict
        ``(table, key)`` -> the old key it was given as (for error messages).

    Raises
    ------
    SettingsError
        With ``strict``, for a setting given under both names.
    """
    out = {k: _plain(v) for k, v in values.items()}
    moved: dict[tuple[str, str], str] = {}
    for old in [k for k in values if k in PHOTOMETRY_KEYS]:
        table, key = PHOTOMETRY_KEYS[old]
        _deprecated(old, announce=announce)
        sub = out.setdefault(table, {})
        if not isinstance(sub, dict):
            out.pop(old)
            continue  # the new table itself is not a mapping: reported when it is built
        if strict and key in sub:
            raise SettingsError(f"setting [photometry] {old} given twice: also as {new_name(old)}")
        sub[key] = out.pop(old)
        moved[(f"photometry.{table}", key)] = old
    return out, moved
