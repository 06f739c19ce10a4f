"""The headers of every HDU of a FITS file, read without its data, and the file's integrity.

The file is walked block by block as the FITS standard lays it out: each header is a run of
2880-byte blocks of 80-character text cards ending with ``END``, followed by the data, whose
size the header's ``BITPIX``, ``NAXISn``, ``PCOUNT`` and ``GCOUNT`` give. The data are
skipped (a seek for plain files; decompressed and dropped for gzipped ones), so reading the
headers of a large file costs a few reads. The walk notices what astropy only warns about (or
silently drops HDUs for): a file that ends inside a header or inside the data (truncated), a
header that is not text or has no readable structure keywords (corrupt header), bytes that
are all zero where a header should be (zeroed), and a file that is not FITS at all.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

try:  # ISA-L decompresses gzip about twice as fast as zlib
    from isal.igzip import decompress as gunzip  # noqa: F401 (used by the readers)
    from isal.igzip import open as gzip_open
    from isal.igzip_lib import IsalError
except ImportError:  # pragma: no cover - isal is a dependency; gzip is the fallback
    from gzip import open as gzip_open

    IsalError = zlib.error

__all__ = [
    "BLOCK_SIZE",
    "Cards",
    "FitsHeaders",
    "looks_like_fits",
    "read_gzipped",
    "read_headers",
]

#: A header as keyword -> value.
Cards = dict[str, str | bool | int | float | None]

#: Size of a FITS block [bytes].
BLOCK_SIZE = 2880
#: Size of a header card [bytes].
CARD_SIZE = 80
#: First byte pair of a gzip stream.
GZIP_MAGIC = b"\x1f\x8b"
#: How a FITS file starts.
FITS_MAGIC = b"SIMPLE  ="
#: How an extension's header starts.
EXTENSION_MAGIC = b"XTENSION="
#: The card that ends a header.
END_CARD = b"END" + b" " * (CARD_SIZE - 3)
#: A header longer than this is taken as damage (SPOC headers have a few blocks) [blocks].
MAX_HEADER_BLOCKS = 200
#: More HDUs than this are not read (TESS products have at most a few) [HDUs].
MAX_HDUS = 64
#: Size of the pieces in which gzipped data are skipped [bytes].
SKIP_CHUNK = 1 << 22
#: Largest ratio of decompressed to compressed size whose trailer size is trusted for
#: reading a gzipped file into one buffer (FITS images compress 1-3 times).
MAX_GZIP_RATIO = 16
#: Shortest gzip stream: its header and trailer [bytes].
GZIP_MIN_SIZE = 18
#: The bytes a header may hold (printable ASCII).
_TEXT_BYTES = bytes(range(0x20, 0x7F))
#: A card's string value: quoted, with ``''`` for a quote.
_STRING_VALUE = re.compile(r"'((?:[^']|'')*)'")
#: Errors of reading a damaged gzip stream (ISA-L raises its own on a corrupt one).
GZIP_ERRORS = (OSError, EOFError, zlib.error, gzip.BadGzipFile, IsalError)


@dataclass
class FitsHeaders:
    """The headers read from a FITS file and what is wrong with the file, if anything.

    Attributes
    ----------
    headers : list of Cards
        The headers of the HDUs read (primary first), up to the damage if there is one.
    problem : str or None
        None for an intact file, else ``"truncated"``, ``"corrupt header"``, ``"zeroed"``,
        ``"not FITS"`` or ``"empty"``.
    detail : str
        What exactly is wrong (empty for an intact file).
    gzipped : bool
        Whether the file is gzip-compressed.
    complete : bool
        Whether every HDU was read (False after damage or when stopped at ``max_hdus``).
    """

    headers: list[Cards] = field(default_factory=list)
    problem: str | None = None
    detail: str = ""
    gzipped: bool = False
    complete: bool = False

    def extension(self, name: str) -> Cards | None:
        """The header of the first extension called ``name`` (case-insensitive), or None."""
        for header in self.headers[1:]:
            if str(header.get("EXTNAME", "")).strip().upper() == name.upper():
                return header
        return None


class _Damage(Exception):
    """The walk met damage: the problem category and its description."""

    def __init__(self, problem: str, detail: str) -> None:
        super().__init__(detail)
        self.problem = problem
        self.detail = detail


def looks_like_fits(path: str | os.PathLike[str]) -> bool:
    """Whether a file starts like a FITS file (plain or gzipped): its first bytes only."""
    try:
        with open(path, "rb") as f:
            start = f.read(len(FITS_MAGIC))
        if start[: len(GZIP_MAGIC)] == GZIP_MAGIC:
            with gzip_open(path, "rb") as f:
                start = f.read(len(FITS_MAGIC))
    except GZIP_ERRORS:
        return False
    return start == FITS_MAGIC


def read_gzipped(path: str | os.PathLike[str]) -> bytes | bytearray:
    """The decompressed content of a gzipped file, read in one streaming pass.

    The output is allocated once at the size the gzip trailer gives, so memory holds the
    content only: neither the compressed bytes nor a growing buffer's copies. A size beyond
    :data:`MAX_GZIP_RATIO` times the compressed size (a damaged trailer, or a stream of
    4 GiB or more) is not trusted: the content is then read piece by piece. Raises one of
    :data:`GZIP_ERRORS` for a truncated or corrupt stream.
    """
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        compressed = f.tell()
        if compressed < GZIP_MIN_SIZE:
            raise EOFError("the file is too short for a gzip stream")
        f.seek(-4, os.SEEK_END)
        size = int.from_bytes(f.read(4), "little")
    with gzip_open(path, "rb") as stream:
        if size > MAX_GZIP_RATIO * compressed:
            return b"".join(iter(lambda: stream.read(SKIP_CHUNK), b""))
        content = bytearray(size)
        # In pieces: the gzip reader decompresses a whole request into a new buffer first.
        n = 0
        with memoryview(content) as view:
            while n < size:
                got = stream.readinto(view[n : n + SKIP_CHUNK])
                if not got:
                    raise EOFError(f"the gzip stream ended after {n} of {size} bytes")
                n += got
        rest = stream.read()
    if rest:  # several members: the trailer gave the last one's size
        content += rest
    return content


def read_headers(path: str | os.PathLike[str], max_hdus: int | None = None) -> FitsHeaders:
    """Every HDU's header of a FITS file, and whether the file is intact.

    Parameters
    ----------
    path : str or os.PathLike
        The file, plain or gzipped.
    max_hdus : int, optional
        Read only the first headers (the data after the last one read are not checked).

    Returns
    -------
    FitsHeaders
        The headers, and the problem found (never raises for a damaged file).

    Raises
    ------
    OSError
        When the file cannot be opened at all (missing, no permission).
    """
    path = Path(path)
    with open(path, "rb") as f:
        gzipped = f.read(len(GZIP_MAGIC)) == GZIP_MAGIC
    result = FitsHeaders(gzipped=gzipped)
    size = None if gzipped else path.stat().st_size
    opener = gzip_open if gzipped else open
    with opener(path, "rb") as stream:
        try:
            result.complete = _walk(stream, size, result.headers, max_hdus or MAX_HDUS)
        except _Damage as damage:
            result.problem, result.detail = damage.problem, damage.detail
        except GZIP_ERRORS as err:
            result.problem = "truncated"
            result.detail = f"the gzip stream is cut short or corrupt ({_one_line(err)})"
    return result


def _walk(stream: BinaryIO, size: int | None, headers: list[Cards], max_hdus: int) -> bool:
    """Read header after header, skipping the data; whether the end of the file was reached."""
    position = 0
    while len(headers) < max_hdus:
        first = stream.read(BLOCK_SIZE)
        if not first and headers:
            return True  # the end of the file, just after an HDU
        _check_start(first, len(headers), position)
        text, blocks = _header_text(stream, first, len(headers))
        header = _parse(text)
        headers.append(header)
        if len(headers) == max_hdus:
            return False
        position += blocks * BLOCK_SIZE
        data = _data_size(header, len(headers) - 1)
        padded = -(-data // BLOCK_SIZE) * BLOCK_SIZE
        _skip(stream, size, position, data, padded, _label(header, len(headers) - 1))
        position += padded
    return False


def _check_start(block: bytes, index: int, position: int) -> None:
    """Raise _Damage unless ``block`` starts a header (``SIMPLE`` first, then ``XTENSION``)."""
    if index == 0 and not block:
        raise _Damage("empty", "the file is empty")
    if not block.strip(b"\0"):
        where = "" if index == 0 else f" from byte {position:,} on (where HDU {index} should start)"
        raise _Damage("zeroed", f"its bytes are all zero{where}")
    magic = FITS_MAGIC if index == 0 else EXTENSION_MAGIC
    if block[: len(magic)] != magic:
        if index == 0:
            raise _Damage("not FITS", "not a FITS file (it does not start with SIMPLE)")
        raise _Damage("corrupt header", f"no extension header at byte {position:,} (HDU {index})")
    if len(block) < BLOCK_SIZE:
        raise _Damage("truncated", f"the file ends inside the header of HDU {index}")


def _header_text(stream: BinaryIO, first: bytes, index: int) -> tuple[str, int]:
    """The header's cards up to END (as text) and the number of blocks it takes."""
    blocks = [first]
    while True:
        block = blocks[-1]
        if block.translate(None, _TEXT_BYTES):
            raise _Damage("corrupt header", f"the header of HDU {index} holds non-text bytes")
        for start in range(0, BLOCK_SIZE, CARD_SIZE):
            if block[start : start + CARD_SIZE] == END_CARD:
                text = b"".join(blocks).decode("ascii")
                return text[: (len(blocks) - 1) * BLOCK_SIZE + start], len(blocks)
        if len(blocks) >= MAX_HEADER_BLOCKS:
            raise _Damage("corrupt header", f"the header of HDU {index} has no END card")
        block = stream.read(BLOCK_SIZE)
        if len(block) < BLOCK_SIZE:
            raise _Damage("truncated", f"the file ends inside the header of HDU {index}")
        blocks.append(block)


def _parse(text: str) -> Cards:
    """The keyword values of a header's cards (the first of each keyword; commentary left out).

    A small parser of fixed-format cards instead of astropy's ``Header``, which parses and
    verifies every card (about ten times slower, and it warns about each odd card).
    A value that is not a string, logical, integer or real is None.
    """
    cards: Cards = {}
    for start in range(0, len(text), CARD_SIZE):
        card = text[start : start + CARD_SIZE]
        keyword = card[:8].rstrip()
        if keyword and card[8:10] == "= " and keyword not in cards:
            cards[keyword] = _value(card[10:])
    return cards


def _value(field: str) -> str | bool | int | float | None:
    """The value of a card's value field (after ``= ``)."""
    field = field.strip()
    if field.startswith("'"):
        match = _STRING_VALUE.match(field)
        return match.group(1).replace("''", "'").rstrip() if match else None
    field = field.split("/", 1)[0].strip()
    if field in ("T", "F"):
        return field == "T"
    for kind in (int, float):
        try:
            return kind(field.replace("D", "E") if kind is float else field)
        except ValueError:
            continue
    return None


def _data_size(header: Cards, index: int) -> int:
    """Size of the HDU's data [bytes] from its structure keywords (unpadded)."""
    try:
        bitpix = int(header["BITPIX"])
        naxis = int(header["NAXIS"])
        axes = [int(header[f"NAXIS{k}"]) for k in range(1, naxis + 1)]
        pcount = int(header.get("PCOUNT", 0))
        gcount = int(header.get("GCOUNT", 1))
    except (KeyError, ValueError, TypeError):
        raise _Damage(
            "corrupt header", f"the header of HDU {index} has no readable BITPIX/NAXISn"
        ) from None
    if bitpix not in (8, 16, 32, 64, -32, -64) or naxis < 0 or min(axes, default=0) < 0:
        raise _Damage("corrupt header", f"the header of HDU {index} has an invalid BITPIX/NAXISn")
    if naxis == 0:
        return 0
    count = 1
    for n in axes:
        count *= n
    return abs(bitpix) // 8 * gcount * (pcount + count)


def _skip(
    stream: BinaryIO, size: int | None, position: int, data: int, padded: int, label: str
) -> None:
    """Skip an HDU's data; a file that ends inside them is truncated (padding may be short)."""
    if size is not None:
        if position + data > size:
            raise _Damage(
                "truncated",
                f"{label} needs {data:,} bytes of data, the file ends after "
                f"{max(size - position, 0):,} of them",
            )
        stream.seek(min(position + padded, size))
        return
    left = padded
    while left > 0:
        chunk = stream.read(min(SKIP_CHUNK, left))
        if not chunk:
            if padded - left < data:
                raise _Damage(
                    "truncated",
                    f"{label} needs {data:,} bytes of data, the file ends after "
                    f"{padded - left:,} of them",
                )
            return
        left -= len(chunk)


def _label(header: Cards, index: int) -> str:
    """``HDU 1 (PIXELS)``: how an HDU is named in messages."""
    name = str(header.get("EXTNAME", "")).strip()
    return f"HDU {index} ({name})" if name else f"HDU {index}"


def _one_line(err: BaseException) -> str:
    """An exception's message on one line."""
    return " ".join(str(err).split()) or type(err).__name__
