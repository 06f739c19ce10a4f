"""Pixel flags per frame and the manual exclusions known for real SPOC data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class PixelFlags:
    """Bits of the ``pixel_flags`` cube (the original's PixelQualityFlags)."""

    NotUsedForBackground = 1
    ManualExclude = 2
    BackgroundShenanigans = 4


#: SPOC DQUALITY bit set on cadences whose frame is unreadable or wholly excluded
#: (ManualExclude).
EXCLUDED_FRAME_QUALITY = 128
#: SPOC quality bits that make a frame unsuitable for the average image and as reference.
BAD_QUALITY_BITS = 1 | 2 | 4 | 8 | 32 | 128 | 4096


@dataclass(frozen=True)
class ExclusionRule:
    """Pixels of real FFIs known to be bad (original notes, section 5.3)."""

    reason: str
    camera: int
    ccd: int | None
    ffiindex: tuple[int, int] | None
    tstart_max: float | None
    time_range: tuple[float, float] | None
    #: First excluded science column (None: the whole frame).
    first_column: int | None


EXCLUSION_RULES = (
    ExclusionRule(
        "Mars saturating output D at the start of sector 1",
        1,
        4,
        (0, 4724),
        1325.881282301840,
        None,
        1536,
    ),
    ExclusionRule(
        "excessive Earthshine", 1, None, (11354, 11366), None, (1464.0158778, 1464.265871), None
    ),
)


def manual_exclude(
    image: np.ndarray,
    camera: int,
    ccd: int,
    ffiindex: int | None,
    tstart: float,
    time: float,
    origin: tuple[int, int],
    simulated: bool,
) -> tuple[np.ndarray, list[str]]:
    """Pixels to exclude from one frame and why.

    The rules describe real spacecraft events, so they are not applied to simulated data;
    a frame that is all zero (or all non-finite) is excluded whatever its origin.
    """
    mask = np.zeros(image.shape, dtype=bool)
    reasons = []
    if not np.any(np.isfinite(image) & (image != 0)):
        mask[:] = True
        reasons.append("frame is empty (all zero or NaN)")
        return mask, reasons
    if simulated:
        return mask, reasons
    for rule in EXCLUSION_RULES:
        if rule.camera != camera or (rule.ccd is not None and rule.ccd != ccd):
            continue
        hit = False
        if rule.ffiindex is not None and ffiindex is not None:
            hit |= rule.ffiindex[0] <= ffiindex <= rule.ffiindex[1]
        if rule.tstart_max is not None:
            hit |= tstart <= rule.tstart_max
        if rule.time_range is not None:
            hit |= rule.time_range[0] <= time <= rule.time_range[1]
        if not hit:
            continue
        if rule.first_column is None:
            mask[:] = True
        else:
            mask[:, max(rule.first_column - origin[1], 0) :] = True
        reasons.append(rule.reason)
    return mask, reasons
