"""Quality flags of target pixel files transferred to the FFI cadences they overlap.

SPOC flags spacecraft events (attitude tweaks, coarse pointing, momentum dumps, ...) on the
2-min cadences of the TPFs more completely than on the FFIs. As the original (section 5.4 of
the notes), every FFI cadence gets the flags of the FFI-relevant bits of all TPF cadences of
the same sector, camera and CCD whose spacecraft time lies strictly inside its exposure, from
up to :data:`MAX_TPFS` TPFs.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from tessphot.io.tpf import TPFError, find_tpfs, read_tpf
from tessphot.timefix import stamp_error

log = logging.getLogger(__name__)

#: SPOC quality bits that concern whole FFIs: attitude tweak (1), safe mode (2), coarse
#: pointing (4), Earth pointing (8), desaturation (32), Earth/Moon/planet in view (2048),
#: scattered light (4096). ManualExclude (128) is left out: it would remove ~20 % of FFIs.
FFI_RELEVANT_BITMASK = 1 | 2 | 4 | 8 | 32 | 2048 | 4096
#: Most TPFs read for the transfer (their flags are the same spacecraft events).
MAX_TPFS = 5
#: Seconds per day.
SECONDS_PER_DAY = 86400.0


def transfer_tpf_quality(
    folder: str | os.PathLike,
    sector: int,
    camera: int,
    ccd: int,
    start: np.ndarray,
    stop: np.ndarray,
) -> tuple[np.ndarray, int]:
    """Quality flags of the TPFs of a CCD on the FFI exposures ``[start, stop]``.

    Parameters
    ----------
    folder : path-like
        Searched for TPFs (anywhere below it).
    sector, camera, ccd : int
    start, stop : ndarray, shape (N,)
        Spacecraft start and end times of the FFI exposures (time-stamp offsets removed,
        barycentric correction removed), sorted [BTJD].

    Returns
    -------
    quality : ndarray of int32, shape (N,)
        The flags to OR into the FFIs' quality.
    n_tpfs : int
        TPFs used.
    """
    start = np.asarray(start, dtype=float)
    stop = np.asarray(stop, dtype=float)
    quality = np.zeros(start.size, dtype=np.int32)
    used = 0
    for path in find_tpfs(folder, sector=sector):
        if used >= MAX_TPFS:
            break
        try:
            tpf = read_tpf(path, pixels=False)
        except TPFError as err:
            log.warning("TPF left out of the quality transfer: %s", err)
            continue
        if (tpf.camera, tpf.ccd) != (camera, ccd):
            continue
        offset = 0.0
        if tpf.data_rel is not None:
            offset = stamp_error(tpf.data_rel, tpf.procver, camera, ccd, "mid", datatype="tpf")
        spacecraft = tpf.time - offset / SECONDS_PER_DAY - tpf.timecorr
        flags = tpf.quality & FFI_RELEVANT_BITMASK
        hit = np.isfinite(spacecraft) & (flags != 0)
        t, flags = spacecraft[hit], flags[hit]
        frame = np.searchsorted(start, t, side="right") - 1
        inside = frame >= 0
        inside[inside] &= (t[inside] > start[frame[inside]]) & (t[inside] < stop[frame[inside]])
        np.bitwise_or.at(quality, frame[inside], flags[inside])
        used += 1
    if used:
        log.info(
            "Quality of %d TPF(s) transferred: %d of %d FFI cadences flagged",
            used,
            int(np.count_nonzero(quality)),
            start.size,
        )
    else:
        log.info(
            "No TPFs of sector %d camera %d CCD %d: no quality transferred", *(sector, camera, ccd)
        )
    return quality, used
