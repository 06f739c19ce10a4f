"""The header cards of a light curve: primary header, table and stamp images."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS

from tessphot.constants import (
    FIRST_SCIENCE_CCD_COLUMN,
    FIRST_SCIENCE_CCD_ROW,
    FRAME_TIME,
    INTEGRATION_TIME,
    READOUT_TIME,
)
from tessphot.geometry import shift_wcs
from tessphot.lightcurve.format import (
    _HISTORY_LENGTH,
    BJDREFI,
    FILEVER,
    LIGHTCURVE_COLUMNS,
    MJD_OFFSET,
    ORIGIN,
    PROCVER,
    SECONDS_PER_DAY,
    SETTINGS_CONTINUATION_PREFIX,
    SETTINGS_HISTORY_PREFIX,
    ObservationInfo,
    TargetInfo,
)
from tessphot.lightcurve.products import TableExtension

#: Characters of a FITS header card.
CARD_LENGTH = 80
#: Column by which a number's or a short string's value ends (the fixed format).
VALUE_END = 30
#: Longest string value that ends by :data:`VALUE_END` (its quotes, and each quote in it
#: doubled).
SHORT_STRING = 18


def stamp_wcs(wcs: WCS, stamp_origin: tuple[int, int], shape: tuple[int, int]) -> WCS:
    """The WCS of a stamp cut from the science area.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        WCS of the science area (0-based science pixel coordinates).
    stamp_origin : (int, int)
        Science (row, column) of the stamp's first pixel.
    shape : (int, int)
        (rows, columns) of the stamp.
    """
    out = shift_wcs(wcs, -stamp_origin[0], -stamp_origin[1])
    out.pixel_shape = (shape[1], shape[0])
    return out


def _value(value: Any) -> Any:
    """A header value: numpy scalars to Python, None and NaN to an undefined value."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


def _primary_header(*args: Any, **kwargs: Any) -> fits.Header:
    """The primary header (see :func:`_primary_cards`)."""
    return fits.Header([fits.Card(*card) for card in _primary_cards(*args, **kwargs)])


def _primary_cards(
    target: TargetInfo,
    obs: ObservationInfo,
    method: str,
    version: int,
    method_keywords: Mapping[str, Any] | None,
    settings: Mapping[str, Any] | None,
    nextend: int,
) -> list[tuple]:
    """The cards of the primary header after the mandatory ones, as (key, value[, comment])."""
    pm_ra, pm_dec = _value(target.pm_ra), _value(target.pm_dec)
    pm_total = None if pm_ra is None or pm_dec is None else math.hypot(pm_ra, pm_dec)
    cards = [
        ("NEXTEND", nextend, "number of standard extensions"),
        ("EXTNAME", "PRIMARY", "name of extension"),
        ("ORIGIN", ORIGIN, "institution responsible for creating this file"),
        ("DATE", datetime.now(UTC).strftime("%Y-%m-%d"), "date the file was created"),
        ("TELESCOP", "TESS", "telescope"),
        ("INSTRUME", "TESS Photometer", "detector type"),
        ("FILTER", "TESS", "Photometric bandpass filter"),
        ("OBJECT", f"TIC {int(target.starid)}", "string version of TICID"),
        ("TICID", int(target.starid), "unique TESS target identifier"),
        ("CAMERA", int(obs.camera), "Camera number"),
        ("CCD", int(obs.ccd), "CCD number"),
        ("SECTOR", int(obs.sector), "Observing sector"),
        ("PROCVER", PROCVER, "Version of photometry pipeline"),
        ("FILEVER", FILEVER, "File format version"),
        ("DATA_REL", int(obs.data_rel), "Data release number"),
        ("VERSION", int(version), "Version of the processing"),
        ("PHOTMET", str(method), "Photometric method used"),
        ("RADESYS", "ICRS", "reference frame of celestial coordinates"),
        ("EQUINOX", 2000.0, "equinox of celestial coordinate system"),
        ("RA_OBJ", _value(target.ra), "[deg] Right ascension"),
        ("DEC_OBJ", _value(target.dec), "[deg] Declination"),
        ("PMRA", pm_ra, "[mas/yr] RA proper motion"),
        ("PMDEC", pm_dec, "[mas/yr] Dec proper motion"),
        ("PMTOTAL", pm_total, "[mas/yr] total proper motion"),
        ("TESSMAG", _value(target.tmag), "[mag] TESS magnitude"),
        ("TEFF", _value(target.teff), "[K] Effective temperature"),
        ("TICVER", _value(target.ticver), "TESS Input Catalog version"),
        ("CRMITEN", bool(obs.crmiten), "spacecraft cosmic ray mitigation enabled"),
        ("CRBLKSZ", int(obs.crblksz), "[exposures] s/c cosmic ray mitigation block siz"),
        ("CRSPOC", bool(obs.crspoc), "SPOC cosmic ray cleaning enabled"),
    ]
    # The header is built from a list of cards in one go: assigning keywords one by one
    # costs astropy a re-index per card (most of the time of writing a light curve).
    keys = {key for key, _, _ in cards}
    for key, entry in (method_keywords or {}).items():
        value, comment = entry if isinstance(entry, tuple) else (entry, "")
        key = str(key).upper()
        if len(key) > 8 or not key.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"invalid method keyword {key!r}: at most 8 letters, digits, _ or -")
        if key in keys or key == "DATAVAL":
            raise ValueError(f"method keyword {key!r} clashes with a standard keyword")
        keys.add(key)
        cards.append((key, _value(value), _fitting_comment(key, _value(value), comment)))
    cards.append(("DATAVAL", 0, "Data validation flags"))
    history: list[str] = []
    for key, value in _flatten(settings or {}).items():
        _add_setting(history, f"{key} = {json.dumps(value)}")
    return cards + [("HISTORY", text) for text in history]


def _fitting_comment(key: str, value: Any, comment: str) -> str:
    """The comment, cut to what the 80-character card leaves beside its value."""
    short_value = not isinstance(value, str) or len(value) + value.count("'") <= SHORT_STRING
    if len(comment) <= CARD_LENGTH - VALUE_END - len(" / ") and short_value:
        return comment  # fits beside any value that ends by column 30 (no card built)
    room = CARD_LENGTH - _value_end(key, value) - len(" / ")
    return comment[: max(room, 0)]


@lru_cache(maxsize=1024, typed=True)
def _value_end(key: str, value: Any) -> int:
    """The column by which a card's value ends.

    Cached: the long values repeat from one light curve to the next (the PRF's name, the
    barycentric correction's source).
    """
    return len(fits.Card(key, value).image.rstrip())


def _add_setting(history: list[str], text: str) -> None:
    """Record one setting as HISTORY texts, split over continuation cards if long.

    FITS pads cards with spaces, so no card may end in a space: the text is split before
    spaces.
    """
    prefix = SETTINGS_HISTORY_PREFIX
    while text:
        room = _HISTORY_LENGTH - len(prefix)
        cut = len(text) if len(text) <= room else room
        while cut < len(text) and cut > 1 and text[cut - 1] == " ":
            cut -= 1
        history.append(prefix + text[:cut])
        text = text[cut:]
        prefix = SETTINGS_CONTINUATION_PREFIX


def _flatten(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            if isinstance(value, np.generic):
                value = value.item()
            elif isinstance(value, tuple | np.ndarray):
                value = np.asarray(value).tolist()
            flat[name] = value
    return flat


def _lightcurve_hdu(columns: dict[str, np.ndarray], obs: ObservationInfo) -> fits.BinTableHDU:
    cols = [
        fits.Column(name=name, format=tform, disp=tdisp, unit=unit, array=columns[name])
        for name, tform, tdisp, unit in LIGHTCURVE_COLUMNS
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="LIGHTCURVE")
    hdu.header["EXTNAME"] = ("LIGHTCURVE", "extension name")
    cards = _lightcurve_cards(columns, obs)
    hdu.header.extend([fits.Card(*card) for card in cards if card[0] != "EXTNAME"])
    return hdu


def _lightcurve_cards(columns: dict[str, np.ndarray], obs: ObservationInfo) -> list[tuple]:
    """The LIGHTCURVE header cards after the table structure (time and exposure)."""
    time = columns["TIME"]
    half = obs.cadence / SECONDS_PER_DAY / 2
    tstart = float(np.min(time) - half)
    tstop = float(np.max(time) + half)
    # Both ends in one conversion (astropy converts element by element: the same dates).
    date_obs, date_end = (
        str(date) for date in Time(BJDREFI, [tstart, tstop], format="jd", scale="tdb").utc.isot
    )
    telapse = tstop - tstart
    deadc = obs.deadc
    cards = [
        ("INHERIT", True, "inherit the primary header"),
        ("EXTNAME", "LIGHTCURVE", "extension name"),
        ("TIMEREF", "SOLARSYSTEM", "barycentric correction applied to times"),
        ("TIMESYS", "TDB", "time system is Barycentric Dynamical Time (TDB)"),
        ("BJDREFI", BJDREFI, "integer part of BTJD reference date"),
        ("BJDREFF", 0.0, "fraction of the day in BTJD reference date"),
        ("TIMEUNIT", "d", "time unit for TIME, TSTART and TSTOP"),
        ("TSTART", tstart, "observation start time in BTJD"),
        ("TSTOP", tstop, "observation stop time in BTJD"),
        ("DATE-OBS", date_obs, "TSTART as UTC calendar date"),
        ("DATE-END", date_end, "TSTOP as UTC calendar date"),
        ("MJD-BEG", tstart + BJDREFI - MJD_OFFSET, "observation start time in MJD"),
        ("MJD-END", tstop + BJDREFI - MJD_OFFSET, "observation stop time in MJD"),
        ("TELAPSE", telapse, "[d] TSTOP - TSTART"),
        ("LIVETIME", telapse * deadc, "[d] TELAPSE multiplied by DEADC"),
        ("DEADC", deadc, "deadtime correction"),
        ("EXPOSURE", telapse * deadc, "[d] time on source"),
        ("XPOSURE", FRAME_TIME * deadc * obs.frames, "[s] Duration of exposure"),
        ("TIMEPIXR", 0.5, "bin time beginning=0 middle=0.5 end=1"),
        ("TIMEDEL", obs.cadence / SECONDS_PER_DAY, "[d] time resolution of data"),
        ("INT_TIME", INTEGRATION_TIME, "[s] photon accumulation time per frame"),
        ("READTIME", READOUT_TIME, "[s] readout time per frame"),
        ("FRAMETIM", FRAME_TIME, "[s] frame time (INT_TIME + READTIME)"),
        ("NUM_FRM", obs.frames, "number of frames per time stamp"),
        ("NREADOUT", obs.readouts, "number of read per cadence"),
    ]
    return cards


def _stamp_wcs_header(
    wcs: WCS | fits.Header | Sequence[tuple], stamp_origin: tuple[int, int], shape
) -> list[tuple]:
    """The WCS cards ``(key, value, comment)`` of a stamp.

    The input is a science-area WCS, its header, or that header's cards as tuples.

    A header (``WCS.to_header(relax=True)`` of the science area, e.g. computed once per
    CCD) is shifted by changing ``CRPIX1``/``CRPIX2`` only, which is exact (SIP
    distortions are relative to CRPIX) and much faster than building a WCS per stamp.
    """
    if isinstance(wcs, WCS):
        header = stamp_wcs(wcs, stamp_origin, shape).to_header(relax=True)
        return [(card.keyword, card.value, card.comment) for card in header.cards]
    if isinstance(wcs, fits.Header):
        wcs = [(card.keyword, card.value, card.comment) for card in wcs.cards]
    shift = {"CRPIX1": int(stamp_origin[1]), "CRPIX2": int(stamp_origin[0])}
    return [
        (key, float(value) - shift[key], comment) if key in shift else (key, value, comment)
        for key, value, comment in wcs
    ]


def _stamp_header(name: str, wcs: list | None, stamp_origin: tuple[int, int]) -> fits.Header:
    return fits.Header([fits.Card(*card) for card in _stamp_cards(name, wcs, stamp_origin)])


def _stamp_cards(name: str, wcs: list | None, stamp_origin: tuple[int, int]) -> list:
    """The cards of a stamp image (WCS cards, SPOC's physical WCS, EXTNAME)."""
    cards: list[tuple] = [("INHERIT", True, "inherit the primary header")]
    if wcs is not None:
        cards.extend(card for card in wcs if card[0] not in ("INHERIT", "EXTNAME"))
    # SPOC's physical WCS: 1-based CCD column/row of the stamp pixels.
    physical = [
        ("WCSNAMEP", "PHYSICAL", "name of world coordinate system alt. P"),
        ("WCSAXESP", 2, "number of WCS physical axes"),
        ("CTYPE1P", "RAWX", "physical WCS axis 1 type CCD col"),
        ("CUNIT1P", "PIXEL", "physical WCS axis 1 unit"),
        ("CRPIX1P", 1, "reference CCD column"),
        (
            "CRVAL1P",
            int(stamp_origin[1]) + FIRST_SCIENCE_CCD_COLUMN,
            "value at reference CCD column",
        ),
        ("CDELT1P", 1.0, "physical WCS axis 1 step"),
        ("CTYPE2P", "RAWY", "physical WCS axis 2 type CCD row"),
        ("CUNIT2P", "PIXEL", "physical WCS axis 2 units"),
        ("CRPIX2P", 1, "reference CCD row"),
        ("CRVAL2P", int(stamp_origin[0]) + FIRST_SCIENCE_CCD_ROW, "value at reference CCD row"),
        ("CDELT2P", 1.0, "physical WCS axis 2 step"),
    ]
    cards.extend(physical)
    cards.append(("EXTNAME", name, "extension name"))
    return cards


def _image_hdu(
    name: str, data: np.ndarray, wcs: list | None, stamp_origin: tuple[int, int]
) -> fits.ImageHDU:
    return fits.ImageHDU(data=data, header=_stamp_header(name, wcs, stamp_origin), name=name)


def _table_hdu(
    extension: TableExtension, wcs: list | None, stamp_origin: tuple[int, int]
) -> fits.BinTableHDU:
    header = _stamp_header(extension.name, wcs, stamp_origin)
    return fits.BinTableHDU.from_columns(
        list(extension.columns), header=header, name=extension.name
    )
