"""Recognising input files by their content: SPOC FFIs, SPOC TPFs and TESScut cutouts.

A FITS file is recognised from its headers alone (:mod:`tessphot.io.fits_headers`: primary
and extension headers, no data), whatever its name: a browser's ``download.fits``, an
astroquery cache name, ``cutout(1).fits`` or no suffix at all, gzipped or not. The result is
an :class:`InputFile` (kind, sector, camera, CCD, cadence, and the TIC of a TPF or the
position and size of a cutout), or a :class:`LeftOut` saying why the file is not used: not a
TESS product, a cotrending (CBV) or collateral file, a raw FFI, a light curve (SPOC, TASOC,
eleanor, QLP, ...), or damaged (truncated, corrupt header, zeroed, missing data).

An FFI whose headers are intact but whose data are cut short is still an FFI: it is one
cadence of many, and the prepare stage keeps its time slot and flags the frame.

Names are a fast path only. A SPOC FFI name (FFIs are many) is trusted after a cheap check
(the file starts like FITS and, unless gzipped, its size is whole FITS blocks); a gzipped TPF
or cutout whose name agrees with its first headers is not decompressed to the end (its reader
checks the whole stream). Every other file is walked header by header. Results are cached
per process by path, size and modification time, so the finders cost one ``stat`` per file
on later calls.

:func:`scan` walks a folder and logs one line per FITS file it leaves out (once per process);
:meth:`Inventory.left_out_counts` gives the count a stage prints at its end.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tessphot.io.errors import FileProblem
from tessphot.io.files import parse_ffi_name, walk_files
from tessphot.io.fits_headers import (
    BLOCK_SIZE,
    FITS_MAGIC,
    GZIP_MAGIC,
    FitsHeaders,
    looks_like_fits,
    read_headers,
)
from tessphot.io.headers_kind import Identity, identify
from tessphot.io.names import (
    TASOC_LIGHTCURVE_PATTERN,
    CutoutName,
    parse_cutout_name,
    parse_tpf_name,
)

log = logging.getLogger(__name__)

__all__ = [
    "Inventory",
    "InputFile",
    "Kind",
    "LeftOut",
    "find_cutouts",
    "find_ffis",
    "find_inputs",
    "find_tpfs",
    "recognise",
    "require",
    "scan",
]

#: File names that announce a FITS file (anywhere in the name: ``x.fits (1)``, ``.fits.part``).
FITS_NAME = re.compile(r"\.(fits?|fts)\b", re.IGNORECASE)


class Kind(enum.Enum):
    """The kinds of input file the pipeline uses."""

    FFI = "FFI"
    TPF = "target pixel file"
    CUTOUT = "TESScut cutout"


@dataclass(frozen=True)
class InputFile:
    """A file recognised as input, with what its headers say.

    Attributes
    ----------
    path : pathlib.Path
    kind : Kind
    sector, camera, ccd : int
    cadence : int or None
        Cadence [s] (``TIMEDEL``); None for an FFI recognised by its name.
    starid : int or None
        TIC of a TPF's target.
    ra, dec : float or None
        A cutout's requested position (``RA_OBJ``, ``DEC_OBJ``) [deg].
    tag : str or None
        A cutout's ``<RA>_<Dec>_<W>x<H>`` (from its name when the name agrees with the
        headers): names its prepared-data file.
    by_name : bool
        Whether the name was trusted for what the headers were not read for.
    """

    path: Path
    kind: Kind
    sector: int
    camera: int
    ccd: int
    cadence: int | None = None
    starid: int | None = None
    ra: float | None = None
    dec: float | None = None
    tag: str | None = None
    by_name: bool = False

    @property
    def cutout_name(self) -> CutoutName:
        """What a cutout's name would say (sector, camera, CCD, position, tag)."""
        return CutoutName(
            self.sector, self.camera, self.ccd, self.ra or 0.0, self.dec or 0.0, self.tag or ""
        )


@dataclass(frozen=True)
class LeftOut:
    """A file that is not used, and why.

    Attributes
    ----------
    path : pathlib.Path
    reason : str
        The category counted in summaries (a key of :data:`REASONS`).
    detail : str
        The one line that explains it.
    damaged : bool
        Whether the file is damaged (logged as a warning) rather than another product.
    quiet : bool
        Logged at debug level only (tessphot's own light curves, PRF models).
    """

    path: Path
    reason: str
    detail: str
    damaged: bool = False
    quiet: bool = False

    @property
    def line(self) -> str:
        """The log line: the file, then why it is left out."""
        return f"{self.path}: left out: {self.detail}"


#: Reasons for leaving a file out: singular and plural nouns for summaries.
REASONS = {
    "light curve": ("light curve", "light curves"),
    "cbv": ("cotrending (CBV) file", "cotrending (CBV) files"),
    "prf": ("PRF model", "PRF models"),
    "collateral": ("collateral file", "collateral files"),
    "raw ffi": ("raw FFI", "raw FFIs"),
    "not tess": ("non-TESS file", "non-TESS files"),
    "unknown": ("unknown TESS file", "unknown TESS files"),
    "truncated": ("truncated file", "truncated files"),
    "corrupt header": ("file with a corrupt header", "files with a corrupt header"),
    "zeroed": ("zeroed file", "zeroed files"),
    "not FITS": ("non-FITS file named .fits", "non-FITS files named .fits"),
    "empty": ("empty file", "empty files"),
    "missing data": ("file with missing data", "files with missing data"),
    "unreadable": ("unreadable file", "unreadable files"),
}
#: Reasons that mean damage.
DAMAGE = frozenset(
    {"truncated", "corrupt header", "zeroed", "not FITS", "empty", "missing data", "unreadable"}
)

#: Damage named before its details in messages (``truncated: HDU 1 (PIXELS) needs ...``).
DAMAGE_PREFIXED = frozenset({"truncated", "corrupt header", "zeroed"})
#: Reasons logged at debug level only: files of the pipeline's own (models, outputs).
QUIET = frozenset({"prf"})

Recognition = InputFile | LeftOut

_CACHE: dict[tuple[str, int, int], Recognition] = {}
_REPORTED: set[str] = set()


def recognise(path: str | os.PathLike[str]) -> Recognition:
    """What a file is, from its headers (cached per path, size and modification time).

    Parameters
    ----------
    path : str or os.PathLike
        Any file.

    Returns
    -------
    InputFile or LeftOut
        Never raises for a damaged or unreadable file.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as err:
        return LeftOut(path, "unreadable", f"cannot be read ({err.strerror})", damaged=True)
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    found = _CACHE.get(key)
    if found is None:
        found = _recognise(path, stat.st_size)
        _CACHE[key] = found
    return found


def _recognise(path: Path, size: int) -> Recognition:
    """:func:`recognise` without the cache."""
    named = _by_name(path, size)
    if named is not None:
        return named
    name = path.name
    shallow = name.endswith(".gz") and (parse_tpf_name(name) or parse_cutout_name(name))
    try:
        if shallow:
            result = _from_headers(path, read_headers(path, max_hdus=2))
            if _name_agrees(result):
                return _with_name(result, by_name=True)
        # No name to trust, or the name misled: every header, to the end of the file.
        return _with_name(_from_headers(path, read_headers(path)), by_name=False)
    except OSError as err:
        return LeftOut(path, "unreadable", f"cannot be read ({err.strerror or err})", damaged=True)


def _name_agrees(result: Recognition) -> bool:
    """Whether a TPF's or cutout's name says what its first headers say."""
    if not isinstance(result, InputFile):
        return False
    if result.kind is Kind.TPF:
        parsed = parse_tpf_name(result.path.name)
        return parsed is not None and parsed[:2] == (result.starid, result.sector)
    parsed = parse_cutout_name(result.path.name)
    return parsed is not None and parsed[:3] == (result.sector, result.camera, result.ccd)


def _by_name(path: Path, size: int) -> Recognition | None:
    """The fast path: an FFI or a TASOC light curve by name (after a cheap check)."""
    name = path.name
    if TASOC_LIGHTCURVE_PATTERN.fullmatch(name):
        return LeftOut(path, "light curve", "a TASOC-format light curve (an output)", quiet=True)
    parsed = parse_ffi_name(name)
    if parsed is None:
        return None
    try:
        with open(path, "rb") as f:
            start = f.read(len(FITS_MAGIC))
    except OSError:
        return None
    plain_ok = start == FITS_MAGIC and size % BLOCK_SIZE == 0
    if not (plain_ok or start[: len(GZIP_MAGIC)] == GZIP_MAGIC):
        return None  # something is wrong: the headers say what
    return InputFile(path, Kind.FFI, parsed.sector, parsed.camera, parsed.ccd, by_name=True)


def _from_headers(path: Path, headers: FitsHeaders) -> Recognition:
    """The recognition from the headers read (and the damage found)."""
    identity = identify(headers, name_sector=_name_sector(path.name))
    if headers.problem == "truncated" and identity.kind == "FFI":
        # One cadence of many: the prepare stage keeps its place and flags it as damaged.
        return _input(path, identity)
    if headers.problem is not None:
        reason = _damage_reason(headers.problem)
        what = f" (a {identity.what})" if identity.what else ""
        prefix = f"{reason}: " if reason in DAMAGE_PREFIXED else ""
        return LeftOut(path, reason, prefix + headers.detail + what, damaged=True)
    if identity.reason is not None:
        damaged = identity.reason in DAMAGE
        quiet = identity.reason in QUIET
        return LeftOut(path, identity.reason, identity.detail, damaged=damaged, quiet=quiet)
    return _input(path, identity)


def _damage_reason(problem: str) -> str:
    """The summary category of a problem found by the header walk."""
    return problem if problem in REASONS else "corrupt header"


def _input(path: Path, identity: Identity) -> InputFile:
    """The input file from a complete identity."""
    return InputFile(
        path=path,
        kind=Kind[identity.kind],
        sector=identity.sector,
        camera=identity.camera,
        ccd=identity.ccd,
        cadence=identity.cadence,
        starid=identity.starid,
        ra=identity.ra,
        dec=identity.dec,
        tag=identity.tag,
    )


def _name_sector(name: str) -> int | None:
    """The sector a file's name states, if it is a SPOC or TESScut name."""
    for parse in (parse_ffi_name, parse_tpf_name, parse_cutout_name):
        parsed = parse(name)
        if parsed is not None:
            return parsed.sector
    return None


def _with_name(result: Recognition, *, by_name: bool) -> Recognition:
    """A cutout's tag from its name when the name agrees with the headers; ``by_name`` set."""
    if not isinstance(result, InputFile):
        return result
    tag = result.tag
    if result.kind is Kind.CUTOUT and tag is None:
        tag = re.sub(r"[^A-Za-z0-9.+-]+", "_", result.path.name.split(".fits")[0])
    if result.kind is Kind.CUTOUT:
        parsed = parse_cutout_name(result.path.name)
        if parsed is not None and parsed[:3] == (result.sector, result.camera, result.ccd):
            tag = parsed.tag
    return dataclasses.replace(result, tag=tag, by_name=by_name)


def require(path: str | os.PathLike[str], kind: Kind, error: type[FileProblem]) -> InputFile:
    """The recognised input file, or ``error`` naming the file and what it is instead.

    Readers call this first, so that a damaged file is reported as what it is (truncated,
    corrupt header, ...) rather than by the first thing a reader misses in it.

    Raises
    ------
    FileProblem
        ``error(path, problem)``: damage as found, or ``"not a <kind>: <what it is>"``.
    """
    found = recognise(path)
    if isinstance(found, LeftOut):
        problem = found.detail if found.damaged else f"not a {kind.value}: {found.detail}"
        raise error(path, problem)
    if found.kind is not kind:
        raise error(path, f"not a {kind.value}: a {found.kind.value}")
    return found


@dataclass
class Inventory:
    """What a folder holds: the input files recognised and the FITS files left out."""

    found: list[InputFile] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)

    def of_kind(self, kind: Kind) -> list[InputFile]:
        """The input files of one kind."""
        return [f for f in self.found if f.kind is kind]

    def left_out_counts(self) -> str:
        """``"2 light curves, 1 truncated file"``: the files left out, counted by reason."""
        counts = Counter(item.reason for item in self.left_out)
        parts = []
        for reason, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            singular, plural = REASONS.get(reason, (reason, reason))
            parts.append(f"{n} {singular if n == 1 else plural}")
        return ", ".join(parts)


def scan(folder: str | os.PathLike[str], what: str = "input") -> Inventory:
    """Recognise every FITS file anywhere below a folder (links followed).

    Each FITS file left out is logged once per process: a warning when it is damaged, an
    information line otherwise (tessphot's own light curves and PRF models at debug level).
    Files that are neither named like FITS nor start like FITS (prepared data, catalogs,
    notes) are passed over silently.

    Parameters
    ----------
    folder : str or os.PathLike
        Folder to search.
    what : str
        What is searched for (in the error messages).

    Returns
    -------
    Inventory
        Input files sorted by file name, then full path; the files left out.

    Raises
    ------
    FileNotFoundError
        If ``folder`` does not exist.
    NotADirectoryError
        If ``folder`` is not a folder.
    """
    inventory = Inventory()
    for path in walk_files(folder, what):
        if not (FITS_NAME.search(path.name) or parse_ffi_name(path.name) or looks_like_fits(path)):
            continue
        result = recognise(path)
        if isinstance(result, InputFile):
            inventory.found.append(result)
        else:
            inventory.left_out.append(result)
            _report(result)
    inventory.found.sort(key=lambda f: (f.path.name, str(f.path)))
    return inventory


def _report(item: LeftOut) -> None:
    """Log a left-out file once per process."""
    key = str(item.path)
    if key in _REPORTED:
        return
    _REPORTED.add(key)
    level = logging.DEBUG if item.quiet else logging.WARNING if item.damaged else logging.INFO
    log.log(level, "%s", item.line)


def find_inputs(folder: str | os.PathLike[str], kind: Kind, **wanted) -> list[InputFile]:
    """Input files of one kind anywhere below a folder, recognised by content.

    Parameters
    ----------
    folder : str or os.PathLike
        Folder to search (links followed).
    kind : Kind
        The kind wanted.
    **wanted
        Attribute values the files must have (``sector``, ``camera``, ``ccd``, ``starid``,
        ``cadence``); None accepts any value.

    Returns
    -------
    list of InputFile
        Sorted by file name, then full path.
    """
    wanted = {key: value for key, value in wanted.items() if value is not None}
    return [
        found
        for found in scan(folder, kind.value).of_kind(kind)
        if all(getattr(found, key) == value for key, value in wanted.items())
    ]


def find_ffis(
    folder: str | os.PathLike[str],
    sector: int | None = None,
    camera: int | None = None,
    ccd: int | None = None,
) -> list[Path]:
    """SPOC calibrated FFIs anywhere below a folder, whatever their names.

    ``sector``, ``camera``, ``ccd``: keep only the files of these (None: any). Links are
    followed, each real folder visited once (:func:`scan`).

    Returns
    -------
    list of pathlib.Path
        Sorted by file name, then full path.
    """
    found = find_inputs(folder, Kind.FFI, sector=sector, camera=camera, ccd=ccd)
    return [f.path for f in found]


def find_tpfs(
    folder: str | os.PathLike[str],
    sector: int | None = None,
    starid: int | None = None,
    cadence: int | None = None,
) -> list[Path]:
    """SPOC target pixel files anywhere below a folder, whatever their names.

    Returns
    -------
    list of pathlib.Path
        Sorted by file name, then full path.
    """
    found = find_inputs(folder, Kind.TPF, sector=sector, starid=starid, cadence=cadence)
    return [f.path for f in found]


def find_cutouts(
    folder: str | os.PathLike[str],
    sector: int | None = None,
    camera: int | None = None,
    ccd: int | None = None,
) -> list[Path]:
    """TESScut cutouts anywhere below a folder, whatever their names.

    Returns
    -------
    list of pathlib.Path
        Sorted by file name, then full path.
    """
    found = find_inputs(folder, Kind.CUTOUT, sector=sector, camera=camera, ccd=ccd)
    return [f.path for f in found]
