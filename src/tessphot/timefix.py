"""The time-stamp offset of early SPOC data releases (original notes, section 5.15).

SPOC's early products stamped times about 2 s late; full-frame images were in addition read
out in a staggered order (per camera and CCD) that the time stamps ignored. The rules here
say, for a product's DATA_REL and PROCVER, how far its time stamps are off, so that the
pipeline can correct them and the simulator can reproduce them. SPOC records the readout
delay of each camera and CCD in its headers (``TMOFST<camera><ccd>``); the header value is
used when present (:func:`readout_delay`). The prepared data record the correction applied
(``time_offset``, ``readout_delay``) and the light curves the offset removed (``TOFFSET``).
"""

from __future__ import annotations

#: Offset of SPOC's exposure start, mid and end stamps in affected releases [s]
#: (stamp - true time, before the staggered-readout term).
STAMP_OFFSET = {"start": 2.000 - 0.031, "mid": 2.000 - 0.021, "end": 2.000 - 0.011}
#: Staggered FFI readout delay per camera and per CCD [s].
STAGGER_CAMERA = {1: 0.0, 2: 1.5, 3: 0.5, 4: 1.0}
STAGGER_CCD = {1: 0.0, 2: 0.02, 3: 0.04, 4: 0.06}
#: Last data release affected in full.
LAST_AFFECTED_RELEASE = 26
#: Releases 27 and 29 were affected only for these first processing versions.
PARTIALLY_AFFECTED = {
    27: {"spoc-4.0.14-20200108", "spoc-4.0.15-20200114", "spoc-4.0.17-20200130"},
    29: {"spoc-4.0.17-20200130", "spoc-4.0.20-20200220", "spoc-4.0.21-20200227"},
}


def time_offset_applies(data_rel: int, procver: str | None) -> bool:
    """Whether products of this data release and processing version carry the offset.

    Raises
    ------
    ValueError
        For release 27 or 29 without a processing version (it cannot be decided).
    """
    if data_rel <= LAST_AFFECTED_RELEASE:
        return True
    if data_rel in PARTIALLY_AFFECTED:
        if not procver:
            raise ValueError(f"DATA_REL {data_rel} needs PROCVER to decide the time offset")
        return procver.strip() in PARTIALLY_AFFECTED[data_rel]
    return False


def readout_delay(header, camera: int, ccd: int) -> float:
    """The staggered-readout delay of a camera and CCD [s].

    SPOC's header keyword ``TMOFST<camera><ccd>`` when present (it records the delay), else
    the table.
    """
    value = header.get(f"TMOFST{camera}{ccd}") if header is not None else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return STAGGER_CAMERA[camera] + STAGGER_CCD[ccd]


def stamp_error(
    data_rel: int,
    procver: str | None,
    camera: int,
    ccd: int,
    timepos: str,
    datatype: str = "ffi",
    readout: float | None = None,
) -> float:
    """How late SPOC's time stamp is [s] (stamp minus true time; 0 when unaffected).

    Parameters
    ----------
    data_rel, procver :
        DATA_REL and PROCVER of the product.
    camera, ccd : int
        Where the pixels were read out.
    timepos : {'start', 'mid', 'end'}
        Which stamp of the exposure.
    datatype : {'ffi', 'tpf'}
        Full-frame images also carry the staggered-readout term (releases up to 26 and the
        first release 27).
    readout : float, optional
        The staggered-readout delay [s] recorded in the product's header
        (:func:`readout_delay`); default the table's.
    """
    if timepos not in STAMP_OFFSET:
        raise ValueError(f"timepos must be start, mid or end, not {timepos!r}")
    if not time_offset_applies(data_rel, procver):
        return 0.0
    error = STAMP_OFFSET[timepos]
    if datatype == "ffi" and (data_rel <= LAST_AFFECTED_RELEASE or data_rel == 27):
        error -= STAGGER_CAMERA[camera] + STAGGER_CCD[ccd] if readout is None else readout
    return error
