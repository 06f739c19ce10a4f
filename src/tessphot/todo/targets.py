"""What FFI and TPF targets share: their co-trending area, and the log of excluded targets."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tessphot.catalog.schema import CatalogSettings
from tessphot.geometry import angular_distance_deg
from tessphot.tasks.schema import cbv_area

log = logging.getLogger(__name__)

#: Half a pixel: a star belongs to the pixel whose centre is within this [px].
HALF_PIXEL = 0.5
#: Excluded TICs named in one log line at most (the count is always given).
EXCLUDED_NAMED = 20


def target_cbv_areas(
    settings: CatalogSettings, camera: int, ccd: int, ra: ArrayLike, dec: ArrayLike
) -> NDArray[np.int_]:
    """Co-trending areas of targets at ``ra``, ``dec`` [deg], FFI and TPF alike.

    The ring comes from each target's great-circle distance to the camera centre recorded in
    its catalog (:func:`tessphot.tasks.schema.cbv_area`).

    Parameters
    ----------
    settings : CatalogSettings
        The ``settings`` row of the targets' catalog (its camera centre).
    camera, ccd : int
        Where the targets are.
    ra, dec : array_like
        Positions of the targets [deg].

    Returns
    -------
    numpy.ndarray of int
        One area per target (shape of ``ra``, at least 1-D).
    """
    ra = np.atleast_1d(np.asarray(ra, dtype=float))
    dec = np.atleast_1d(np.asarray(dec, dtype=float))
    if ra.size == 0:
        return np.array([], dtype=int)
    distance = angular_distance_deg(ra, dec, settings.camera_centre_ra, settings.camera_centre_dec)
    return np.atleast_1d(cbv_area(camera, ccd, distance))


def log_excluded(where: str, starids: Sequence[int]) -> None:
    """One INFO line naming the targets of ``where`` left out by the exclude file."""
    if not starids:
        return
    named = ", ".join(str(s) for s in starids[:EXCLUDED_NAMED])
    more = f" and {len(starids) - EXCLUDED_NAMED} more" if len(starids) > EXCLUDED_NAMED else ""
    log.info(
        "%s: %d target(s) left out by the exclude list ([todo] exclude_file): TIC %s%s",
        where,
        len(starids),
        named,
        more,
    )
