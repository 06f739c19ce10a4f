"""Direct FITS serialisation of a light curve.

The same file astropy writes, without its per-card machinery (which cost most of the time
of a light curve).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.io.fits.card import _format_value

from tessphot.lightcurve.format import LIGHTCURVE_COLUMNS

# --------------------------------------------------------------------------------------------
# Direct serialisation: the same file astropy writes, without its per-card machinery (which
# cost most of the time of a light curve).

#: Bytes per FITS block and per header card.
FITS_BLOCK = 2880
FITS_CARD = 80
#: gzip level when none is given (astropy's).
DEFAULT_GZIP_LEVEL = 9
#: Characters the ASCII checksum encoding must avoid (FITS checksum convention, A.7.2).
_CHECKSUM_EXCLUDE = frozenset(range(0x3A, 0x41)) | frozenset(range(0x5B, 0x61))
#: A standard keyword (no HIERARCH, no lower case) ...
_STANDARD_KEYWORD = re.compile(r"[A-Z0-9_-]{1,8}")
#: ... and printable ASCII text, as FITS allows in values and comments.
_PRINTABLE = re.compile(r"[ -~]*")
#: numpy dtypes (big-endian) of the binary-table formats used.
_TFORM_DTYPES = {"D": ">f8", "E": ">f4", "J": ">i4"}


@lru_cache(maxsize=8192, typed=True)
def _card_image(key: str, value: Any = None, comment: str | None = None) -> str:
    """The 80-character image of a card (astropy's formatting, cached: most cards repeat).

    A plain card (a standard keyword, a finite number, a boolean or a short printable
    string, a printable comment, all on one card) is put together from astropy's own value
    formatting, without building a ``Card`` (whose checks cost 0.2 ms a card); any other
    goes through ``Card``, which formats it or refuses it.
    """
    if key in ("HISTORY", "COMMENT"):
        return fits.Card(key, value).image
    comment = comment or ""
    if _plain_card(key, value, comment):
        image = f"{key:8}= {_format_value(value)}{' / ' + comment if comment else ''}"
        if len(image) <= FITS_CARD:
            return f"{image:{FITS_CARD}}"
    return fits.Card(key, value, comment).image


def _plain_card(key: str, value: Any, comment: str) -> bool:
    """Whether a card needs none of ``Card``'s checks (:func:`_card_image`)."""
    if not (_STANDARD_KEYWORD.fullmatch(key) and _PRINTABLE.fullmatch(comment)):
        return False
    if isinstance(value, str):
        return bool(_PRINTABLE.fullmatch(value))
    if isinstance(value, (bool, int, np.integer)):  # not numpy's booleans: Card converts them
        return True
    return isinstance(value, (float, np.floating)) and bool(np.isfinite(value))


def _ones_complement_sum(data: bytes, start: int = 0) -> int:
    """32-bit ones'-complement sum of big-endian words (FITS checksum convention)."""
    total = int(start) + int(np.frombuffer(data, dtype=">u4").sum(dtype=np.uint64))
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


def _encode_checksum(value: int) -> str:
    """The 16-character ASCII encoding of a checksum (FITS checksum convention, A.7.2)."""
    asc = [0] * 16
    for i in range(4):
        byte = (value >> (24 - 8 * i)) & 0xFF
        quotient, remainder = byte // 4 + ord("0"), byte % 4
        ch = [quotient + remainder, quotient, quotient, quotient]
        changed = True
        while changed:
            changed = False
            for j in (0, 2):
                if ch[j] in _CHECKSUM_EXCLUDE or ch[j + 1] in _CHECKSUM_EXCLUDE:
                    ch[j] += 1
                    ch[j + 1] -= 1
                    changed = True
        for j in range(4):
            asc[4 * j + i] = ch[j]
    text = bytes(asc).decode("ascii")
    return text[-1] + text[:-1]


def _hdu(cards: list[tuple], data: bytes, when: str) -> bytes:
    """One HDU: header (with CHECKSUM and DATASUM) and data, padded to FITS blocks."""
    return hdu_bytes([_card_image(*card) for card in cards], data, when)


def hdu_bytes(images: list[str], data: bytes, when: str) -> bytes:
    """One HDU from its header's card images (without CHECKSUM, DATASUM, END) and its data.

    The data are padded to FITS blocks; CHECKSUM and DATASUM are computed and added.
    """
    padded = data + b"\0" * (-len(data) % FITS_BLOCK)
    datasum = _ones_complement_sum(padded)
    images = list(images)
    images.append(_card_image("CHECKSUM", "0" * 16, f"HDU checksum updated {when}"))
    images.append(_card_image("DATASUM", str(datasum), f"data unit checksum updated {when}"))
    images.append("END".ljust(FITS_CARD))
    header = "".join(images)
    header += " " * (-len(header) % FITS_BLOCK)
    raw = header.encode("ascii")
    checksum = _encode_checksum(~_ones_complement_sum(raw, datasum) & 0xFFFFFFFF)
    at = raw.index(b"CHECKSUM= '") + len("CHECKSUM= '")
    raw = raw[:at] + checksum.encode("ascii") + raw[at + 16 :]
    return raw + padded


def _serialise(
    primary: list[tuple],
    columns: dict[str, np.ndarray],
    lightcurve: list[tuple],
    sumimage: np.ndarray,
    aperture: np.ndarray,
    sumimage_cards: list[tuple],
    aperture_cards: list[tuple],
) -> bytes:
    """The light-curve file (primary, LIGHTCURVE, SUMIMAGE, APERTURE) as bytes."""
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    parts = [
        _hdu(
            [
                ("SIMPLE", True, "conforms to FITS standard"),
                ("BITPIX", 8, "array data type"),
                ("NAXIS", 0, "number of array dimensions"),
                ("EXTEND", True, ""),
                *primary,
            ],
            b"",
            when,
        )
    ]
    dtype = np.dtype([(name, _TFORM_DTYPES[tform]) for name, tform, _, _ in LIGHTCURVE_COLUMNS])
    table = np.empty(len(columns["TIME"]), dtype=dtype)
    structure: list[tuple] = [
        ("XTENSION", "BINTABLE", "binary table extension"),
        ("BITPIX", 8, "array data type"),
        ("NAXIS", 2, "number of array dimensions"),
        ("NAXIS1", dtype.itemsize, "length of dimension 1"),
        ("NAXIS2", table.size, "length of dimension 2"),
        ("PCOUNT", 0, "number of group parameters"),
        ("GCOUNT", 1, "number of groups"),
        ("TFIELDS", len(LIGHTCURVE_COLUMNS), "number of table fields"),
    ]
    for k, (name, tform, tdisp, unit) in enumerate(LIGHTCURVE_COLUMNS, start=1):
        table[name] = columns[name]
        structure.append((f"TTYPE{k}", name, ""))
        structure.append((f"TFORM{k}", tform, ""))
        if unit is not None:
            structure.append((f"TUNIT{k}", unit, ""))
        structure.append((f"TDISP{k}", tdisp, ""))
    structure.append(("EXTNAME", "LIGHTCURVE", "extension name"))
    parts.append(
        _hdu(structure + [c for c in lightcurve if c[0] != "EXTNAME"], table.tobytes(), when)
    )
    for image, cards, bitpix, dtype_ in (
        (sumimage, sumimage_cards, -64, ">f8"),
        (aperture, aperture_cards, 32, ">i4"),
    ):
        rows, cols = image.shape
        parts.append(
            _hdu(
                [
                    ("XTENSION", "IMAGE", "Image extension"),
                    ("BITPIX", bitpix, "array data type"),
                    ("NAXIS", 2, "number of array dimensions"),
                    ("NAXIS1", cols, ""),
                    ("NAXIS2", rows, ""),
                    ("PCOUNT", 0, "number of parameters"),
                    ("GCOUNT", 1, "number of groups"),
                    *cards,
                ],
                np.ascontiguousarray(image, dtype=dtype_).tobytes(),
                when,
            )
        )
    return b"".join(parts)
