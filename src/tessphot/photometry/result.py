"""What a photometry method gives back: :class:`MethodResult`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tessphot.lightcurve import LightCurveColumns, StampImages
from tessphot.photometry.errors import PhotometryError
from tessphot.tasks.status import STATUS


class SpilledError(PhotometryError):
    """A target whose light spills off the stamp or the data so that the method fails.

    The automatic choice of method then switches bright targets to the ``choice.spill_method``.
    """

    def __init__(self, message: str, spill_reason: str) -> None:
        super().__init__(message)
        #: Why the light spills (short; logged with the switch).
        self.spill_reason = spill_reason


@dataclass
class MethodResult:
    """The result of a photometry method on one target, for the writer and the task list.

    Attributes
    ----------
    method : str
        Name of the method (``PHOTMET``).
    status : STATUS
    columns : LightCurveColumns or None
        The light curve (None when the status has none).
    images : StampImages or None
        The stamp's images (None when the status has no light curve).
    header_cards : dict
        The method's primary-header keywords ``{key: (value, comment)}``.
    settings : dict
        Every tunable used (written into the header).
    diagnostics : dict
        What was measured for the task list: the stamp and its resizes, the light-curve and
        mask diagnostics (the fields below add contamination, skip targets and errors).
    skip_targets : list of int
        Stars whose own light curves this one makes redundant.
    contamination : float
        Fraction of the light from other stars.
    spill_reason : str or None
        Why the target's light spills off the stamp or the data (None: it does not).
    switch_reason : str or None
        Why the automatic choice switched to this method (None: it did not).
    errors : list of str
        Warnings and errors logged during the method (``"LEVEL: message"``).
    prf_chi2 : float
        The PRF fit's reduced chi-square (``PRFCHI2``, :mod:`tessphot.photometry.goodness`);
        NaN for a method that fits no PRF.
    """

    method: str
    status: STATUS
    columns: LightCurveColumns | None = None
    images: StampImages | None = None
    header_cards: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    skip_targets: list[int] = field(default_factory=list)
    contamination: float = math.nan
    spill_reason: str | None = None
    switch_reason: str | None = None
    errors: list[str] = field(default_factory=list)
    prf_chi2: float = math.nan
