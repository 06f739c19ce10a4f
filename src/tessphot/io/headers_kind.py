"""What kind of TESS product a FITS file is, from its headers alone.

The product is told by its structure and keywords, not its name: a SPOC calibrated FFI has
an image extension with ``IMAGTYPE = 'cal'``; a SPOC TPF and a TESScut cutout both have a
``PIXELS`` table and an ``APERTURE`` image, the cutout made by astrocut at MAST
(``CREATOR``/``ORIGIN``), the TPF for a TIC target; a light curve has a table of ``TIME`` and
fluxes without pixels; a cotrending basis vector file has ``CBV`` extensions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tessphot.io.fits_headers import Cards, FitsHeaders
from tessphot.sectors import sector_at

__all__ = ["Identity", "identify"]

#: Seconds per day.
SECONDS_PER_DAY = 86400.0
#: Light-curve producers, told by a fragment of ORIGIN or CREATOR (upper case).
PRODUCERS = (
    ("TASOC", "TASOC"),
    ("LIGHTCURVEEXPORTER", "SPOC"),
    ("NASA/AMES", "SPOC"),
    ("QLP", "QLP"),
    ("MIT", "QLP"),
    ("TESSPHOT", "tessphot"),
)


@dataclass(frozen=True)
class Identity:
    """What the headers say a file is.

    Either ``kind`` (``'FFI'``, ``'TPF'`` or ``'CUTOUT'``) with its fields, or ``reason``
    (a category of :data:`tessphot.io.recognise.REASONS`) with ``detail``. ``what`` names
    the product in messages about damage (empty when unknown).
    """

    what: str = ""
    kind: str | None = None
    reason: str | None = None
    detail: str = ""
    sector: int = 0
    camera: int = 0
    ccd: int = 0
    cadence: int | None = None
    starid: int | None = None
    ra: float | None = None
    dec: float | None = None
    tag: str | None = None


def identify(found: FitsHeaders, *, name_sector: int | None = None) -> Identity:
    """What the headers read from a file say it is.

    Parameters
    ----------
    found : FitsHeaders
        The headers (possibly only the first ones, of a damaged file).
    name_sector : int, optional
        The sector the file's name states: used only when the headers have neither a
        ``SECTOR`` nor a time that falls in a sector.

    Returns
    -------
    Identity
    """
    if not found.headers:
        return Identity()
    primary = found.headers[0]
    telescope = _first(found.headers, "TELESCOP")
    if "TESS" not in str(telescope or "").upper():
        shown = f"TELESCOP = {str(telescope).strip()!r}" if telescope else "no TELESCOP keyword"
        return Identity(reason="not tess", detail=f"not a TESS product ({shown})")
    names = [str(h.get("EXTNAME", "")).strip().upper() for h in found.headers[1:]]
    creator = f"{primary.get('CREATOR', '')} {primary.get('ORIGIN', '')}".upper()
    other = _other_product(found, names, creator)
    if other is not None:
        return other
    if "PIXELS" in names:
        return _pixels_product(found, names, creator, name_sector)
    image = found.headers[1] if len(found.headers) > 1 else None
    if image is not None and str(image.get("XTENSION", "")).strip() == "IMAGE":
        kind = str(image.get("IMAGTYPE", "")).strip().lower()
        if kind == "cal" or names[0].endswith(" CAL"):
            return _ffi(found, image, name_sector)
        if kind == "raw" or names[0].endswith(" RAW"):
            return Identity(what="raw FFI", reason="raw ffi", detail="an uncalibrated (raw) FFI")
    listing = ", ".join(n or "(unnamed)" for n in names) or "none"
    return Identity(
        reason="unknown",
        detail=f"a TESS file of a kind tessphot does not use (extensions: {listing})",
    )


def _other_product(found: FitsHeaders, names: list[str], creator: str) -> Identity | None:
    """A cotrending, collateral or light-curve file, or None."""
    if str(found.headers[0].get("DATATYPE", "")).strip().upper() == "PRF":
        return Identity(what="PRF model", reason="prf", detail="a PRF model (give it by --prf-dir)")
    if any(n.startswith("CBV") for n in names) or "CBV" in creator:
        return Identity(
            what="CBV file", reason="cbv", detail="a cotrending basis vector (CBV) file"
        )
    if any("COLLATERAL" in n for n in names) or "COLLATERAL" in creator:
        return Identity(what="collateral file", reason="collateral", detail="a collateral file")
    if "PIXELS" in names:
        return None
    for header in found.headers[1:]:
        if str(header.get("XTENSION", "")).strip() != "BINTABLE":
            continue
        # Only the TTYPEn values are parsed: parsing every card costs ~1 ms per header.
        columns = {str(header[k]).strip().upper() for k in header.keys() if k.startswith("TTYPE")}
        if "TIME" in columns and any("FLUX" in c for c in columns):
            producer = _producer(creator, columns)
            article = "an" if producer[0] in "aeiou" else "a"
            return Identity(
                what="light curve", reason="light curve", detail=f"{article} {producer}"
            )
    return None


def _producer(creator: str, columns: set[str]) -> str:
    """``'TASOC light curve'``: who made a light curve, as far as the headers tell."""
    if {"CORR_FLUX", "PCA_FLUX"} & columns:
        return "eleanor light curve"
    for fragment, producer in PRODUCERS:
        if fragment in creator:
            return f"{producer} light curve"
    return "light curve"


def _pixels_product(
    found: FitsHeaders, names: list[str], creator: str, name_sector: int | None
) -> Identity:
    """A TPF or a TESScut cutout (both have PIXELS and APERTURE)."""
    pixels = found.extension("PIXELS")
    both = [found.headers[0], pixels]
    starid = _int(_first(both, "TICID"))
    cutout = "ASTROCUT" in creator or "MAST" in creator or starid is None
    what = "TESScut cutout" if cutout else f"target pixel file of TIC {starid}"
    if "APERTURE" not in names and found.complete:
        return Identity(what=what, reason="missing data", detail=f"a {what} without its APERTURE")
    common = _where(both, name_sector, what)
    if isinstance(common, Identity):
        return common
    sector, camera, ccd = common
    cadence = _cadence(pixels)
    if not cutout:
        return Identity(
            what=what, kind="TPF", sector=sector, camera=camera, ccd=ccd, cadence=cadence,
            starid=starid,
        )  # fmt: skip
    aperture = found.extension("APERTURE")
    ra, dec = _float(_first(both, "RA_OBJ")), _float(_first(both, "DEC_OBJ"))
    tag = None
    if aperture is not None and ra is not None and dec is not None:
        tag = f"{ra:.6f}_{dec:.6f}_{aperture.get('NAXIS1', 0)}x{aperture.get('NAXIS2', 0)}"
    return Identity(
        what=what, kind="CUTOUT", sector=sector, camera=camera, ccd=ccd, cadence=cadence,
        ra=ra, dec=dec, tag=tag,
    )  # fmt: skip


def _ffi(found: FitsHeaders, image: Cards, name_sector: int | None) -> Identity:
    """A SPOC calibrated FFI."""
    common = _where([found.headers[0], image], name_sector, "FFI")
    if isinstance(common, Identity):
        return common
    sector, camera, ccd = common
    return Identity(
        what="FFI", kind="FFI", sector=sector, camera=camera, ccd=ccd, cadence=_cadence(image)
    )


def _where(
    headers: list[Cards], name_sector: int | None, what: str
) -> tuple[int, int, int] | Identity:
    """Sector, camera and CCD (the first header that has them); missing data otherwise."""
    camera, ccd = _int(_first(headers, "CAMERA")), _int(_first(headers, "CCD"))
    if camera is None or ccd is None:
        return Identity(what=what, reason="missing data", detail=f"a {what} without CAMERA/CCD")
    sector = _int(_first(headers, "SECTOR"))
    if sector is None:
        start, stop = _float(_first(headers, "TSTART")), _float(_first(headers, "TSTOP"))
        if start is not None and stop is not None:
            sector = sector_at(0.5 * (start + stop))
    if sector is None:
        sector = name_sector
    if sector is None:
        return Identity(what=what, reason="missing data", detail=f"a {what} without a sector")
    return sector, camera, ccd


def _cadence(header: Cards | None) -> int | None:
    """The cadence [s] from TIMEDEL [d], None when absent."""
    timedel = _float(header.get("TIMEDEL")) if header is not None else None
    return int(round(timedel * SECONDS_PER_DAY)) if timedel else None


def _first(headers: list[Cards], keyword: str):
    """The first value of a keyword over the headers (None when absent everywhere)."""
    for header in headers:
        value = header.get(keyword)
        if value not in (None, ""):
            return value
    return None


def _int(value) -> int | None:
    """An integer keyword value, None when absent or not an integer."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        return None
    return int(value)


def _float(value) -> float | None:
    """A number keyword value, None when absent or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return None
    return float(value)
