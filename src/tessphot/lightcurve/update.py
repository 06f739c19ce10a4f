"""Fast reads and updates of a light-curve file's table and primary header.

The corrections read every light curve's raw flux and write back ``FLUX_CORR``: through
astropy's table and checksum machinery that costs ~30 ms a file, most of it formatting
cards that do not change. Here astropy only locates the HDUs and parses their headers; the
table is a numpy view of the file's bytes (its FITS layout, big-endian), the HDUs that do
not change are copied byte for byte (their checksums stay valid), and the changed ones are
serialised with fresh checksums (:func:`tessphot.lightcurve.serialise.hdu_bytes`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from tessphot.io.errors import FileProblem
from tessphot.io.fits_headers import GZIP_ERRORS, gunzip
from tessphot.lightcurve.serialise import _card_image, hdu_bytes

#: numpy dtypes (big-endian) of the binary-table formats (a repeat count of 1).
TFORM_DTYPES = {"L": "i1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
#: Header cards recomputed on every write.
CHECKSUM_CARDS = ("CHECKSUM", "DATASUM")
#: The extension holding the light curve.
TABLE_EXTENSION = "LIGHTCURVE"


@dataclass
class LightCurveFile:
    """A light-curve file in memory: its bytes, HDU layout and table."""

    path: Path
    #: The (decompressed) FITS bytes.
    raw: bytes
    #: Per HDU: header start, data start, data length (padded) [bytes], and its header.
    layout: list[tuple[int, int, int]]
    headers: list[fits.Header]
    #: Index of the table HDU and the table as a structured array (a copy of the file's).
    table_index: int
    table: np.ndarray

    def column(self, name: str, dtype: Any = np.float64) -> np.ndarray:
        """A column of the table in native byte order."""
        return self.table[name].astype(dtype)


def _table_dtype(header: fits.Header) -> np.dtype:
    """The record layout of a binary table from its header (single-element columns only).

    Raises
    ------
    ValueError
        For a column this reader does not handle (arrays, scaled columns, strings).
    """
    fields = []
    for k in range(1, int(header["TFIELDS"]) + 1):
        form = str(header[f"TFORM{k}"]).strip()
        code = form.lstrip("1")
        if code not in TFORM_DTYPES or f"TSCAL{k}" in header or f"TZERO{k}" in header:
            raise ValueError(f"column {header[f'TTYPE{k}']} of format {form} not supported")
        fields.append((str(header[f"TTYPE{k}"]), TFORM_DTYPES[code]))
    dtype = np.dtype(fields)
    if dtype.itemsize != int(header["NAXIS1"]):
        raise ValueError(f"row of {dtype.itemsize} bytes, NAXIS1 {header['NAXIS1']}")
    return dtype


def read_lightcurve_file(path: str | Path) -> LightCurveFile:
    """Read a light-curve file (``.fits`` or ``.fits.gz``).

    Raises
    ------
    FileProblem
        When it is missing, damaged, or not a light curve of the TASOC format.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gunzip(raw)
        layout, headers = [], []
        with fits.open(io.BytesIO(raw), lazy_load_hdus=False) as hdus:
            for hdu in hdus:
                info = hdu.fileinfo()
                layout.append((int(info["hdrLoc"]), int(info["datLoc"]), int(info["datSpan"])))
                headers.append(hdu.header)
        names = [str(h.get("EXTNAME", "")).strip() for h in headers]
        index = names.index(TABLE_EXTENSION)
        header = headers[index]
        dtype = _table_dtype(header)
        start = layout[index][1]
        table = np.frombuffer(raw, dtype=dtype, count=int(header["NAXIS2"]), offset=start).copy()
    except FileNotFoundError:
        raise FileProblem(path, "no such file") from None
    except (*GZIP_ERRORS, KeyError, TypeError) as err:
        raise FileProblem(path, f"not a readable light curve ({err})") from None
    except ValueError as err:
        raise FileProblem(path, f"not a light curve of the TASOC format ({err})") from None
    return LightCurveFile(path, raw, layout, headers, index, table)


def _images(header: fits.Header, skip: set[str]) -> list[str]:
    """The card images of a header but the checksums and the keywords in ``skip``."""
    return [
        card.image
        for card in header.cards
        if card.keyword not in CHECKSUM_CARDS and card.keyword not in skip
    ]


def updated_bytes(
    lc: LightCurveFile,
    columns: Mapping[str, np.ndarray],
    cards: Sequence[tuple[str, Any, str]] = (),
    *,
    remove: Sequence[str] = (),
) -> bytes:
    """The file's bytes with table columns replaced and primary-header cards set.

    Parameters
    ----------
    lc : LightCurveFile
    columns : mapping of str to ndarray
        New values of table columns (one per row).
    cards : sequence of (key, value, comment)
        Primary-header cards set (replacing cards of the same keyword, else appended before
        the HISTORY and COMMENT cards).
    remove : sequence of str
        Primary-header keywords removed.

    Raises
    ------
    ValueError
        For a column that the table lacks or a value array of the wrong length.
    """
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    table = lc.table.copy()
    for name, values in columns.items():
        if name not in table.dtype.names:
            raise ValueError(f"the light curve has no column {name}")
        values = np.asarray(values)
        if values.shape != table.shape:
            raise ValueError(f"{name} has shape {values.shape}, the light curve {table.size} rows")
        table[name] = values
    parts = []
    for k, (header_start, data_start, span) in enumerate(lc.layout):
        header = lc.headers[k]
        if k == 0:
            given = {key for key, _, _ in cards}
            images = _images(header, given | set(remove))
            # New cards go before the first HISTORY or COMMENT card (the settings).
            at = next(
                (i for i, image in enumerate(images) if image[:8] in ("HISTORY ", "COMMENT ")),
                len(images),
            )
            images[at:at] = [_card_image(key, value, comment) for key, value, comment in cards]
            data = lc.raw[data_start : data_start + span]
            parts.append(hdu_bytes(images, data, when))
        elif k == lc.table_index:
            parts.append(hdu_bytes(_images(header, set()), table.tobytes(), when))
        else:
            parts.append(lc.raw[header_start : data_start + span])
    return b"".join(parts)
